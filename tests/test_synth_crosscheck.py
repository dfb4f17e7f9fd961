"""A second timer: ABC's stime and OpenSTA on one mapped netlist agree on the critical path."""

import pytest

from finescale.synth import crosscheck, sta
from sta_lib import liberty
from synth_toy import Products

needs_both = pytest.mark.skipif(not (sta.available() and crosscheck.available()),
                                reason="apt-get install opensta berkeley-abc")

BLIF = """.model m
.inputs a b c
.outputs y k w
.names $false
.gate inv_1 A=a Y=n1
.gate nand2_1 A=n1 B=b Y=y
.names c w
1 1
.names $false k
1 1
.end
"""


def test_gates_only_drops_the_names_and_the_outputs_they_drive():
    blif, inputs, outputs = crosscheck.gates_only(BLIF)
    assert ".names" not in blif and blif.count(".gate") == 2
    assert inputs == ["a", "b", "c"] and outputs == ["y"]
    with pytest.raises(ValueError, match="no .gate"):
        crosscheck.gates_only(".model m\n.inputs a\n.outputs y\n.names a y\n1 1\n.end\n")


def test_stime_report_names_its_ends_by_port():
    text = ("WireLoad = \"none\"  \x1b[1;33mGates =   3\x1b[0m ( 1.0 %)   \x1b[1;36mArea =  "
            "   12.50\x1b[0m (100.0 %)   \x1b[1;35mDelay =  101.25 ps\x1b[0m  ( 9.9 %)\n"
            "Start-point = pi1.  End-point = po0.\n")
    got = crosscheck.parse_stime(text, ["a", "b"], ["y"])
    assert got == {"delay_ps": 101.25, "um2": 12.5, "startpoint": "b", "endpoint": "y"}
    with pytest.raises(RuntimeError, match="no delay"):
        crosscheck.parse_stime("Reading network from file has failed.\n", ["a"], ["y"])


@needs_both
def test_abc_and_opensta_time_one_netlist_alike():
    from finescale.synth.designs import from_component
    design = from_component("products_l1", Products(lanes=1), unit="toy", params={})
    got = crosscheck.cross_check(design, liberty())
    assert got["opensta_ps"] > 100.0
    assert got["abc_ps"] == pytest.approx(got["opensta_ps"], abs=0.05)  # ABC prints 0.01 ps
    # a x b is symmetric: a[i] and b[i] start equally long paths, either timer may name either
    assert {got["abc_start"], got["opensta_start"]} <= {"a[1]", "b[1]", "a[2]", "b[2]", "a[0]",
                                                      "b[0]"}
    assert got["abc_end"] == got["opensta_end"]

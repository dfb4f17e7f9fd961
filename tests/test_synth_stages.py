"""Per-stage area and delay (synth/stages.py): the critical path charged to the instances it
crosses, and FormatScope's published stages each charged to exactly one of our DP32 stages."""

import pytest

from finescale.synth import sta, stages
from sta_lib import FLOP, liberty
from synth_toy import toy_design

needs_sta = pytest.mark.skipif(not sta.available(), reason="apt-get install opensta")


def test_pins_belong_to_their_top_level_instance():
    assert stages.instance_of("products/_12_/Y") == "products"
    assert stages.instance_of("normalise/round/_7_/X") == "normalise"
    assert stages.instance_of("_316_/Y") == "(top)" and stages.instance_of("a[3]") == "(top)"


def test_every_published_stage_is_charged_once():
    charged = sum(stages.formatscope_area(share) for _, _, share, _ in stages.DP32_STAGES)
    assert charged == pytest.approx(sum(stages.FORMATSCOPE_STAGES.values()), abs=1e-9)
    named = {s for _, _, share, _ in stages.DP32_STAGES for s in share}
    assert named == set(stages.FORMATSCOPE_STAGES)


def test_an_instance_no_stage_holds_is_an_error():
    part = {"um2": {"products": 1.0, "mystery": 2.0}, "path_ps": {}, "startpoint": "a",
            "endpoint": "b"}
    with pytest.raises(ValueError, match="mystery"):
        stages.dp32_rows({"area": part, "clock": part, "clock_ns": 36.6})


@needs_sta
def test_stage_delays_add_up_to_the_critical_path():
    """The toy: a ``products`` submodule, the adder in the top module, a result register; the
    path runs from an input port through both into the register."""
    text = liberty()
    got = stages.measure(toy_design(2), text, clock_ns=50.0)
    for name in ("area", "clock"):
        m = got[name]
        assert set(m["um2"]) == {"products", "(top)"} and m["um2"]["products"] > 0
        assert m["startpoint"].startswith(("a[", "b[")) and "flip-flop" in m["endpoint"]
        assert m["path_ps"]["products"] > 0
        # every pin's increment was read: they sum to the arrival, setup makes the delay
        assert sum(m["path_ps"].values()) == pytest.approx(m["delay_ps"], abs=0.01)  # 1e-3 ps digits
        assert m["path_ps"]["(top)"] > FLOP["setup"] * 1e3

"""k-candidate selector RTL (hw/selector.py) against the golden ``rule=`` (Amaranth simulator)."""

import numpy as np
import pytest

from finescale import golden
from finescale.hw.selector import check_rule
from finescale.hw.simulate import simulate
from finescale.hw.units import spec
from finescale.sim.references import decode_x

SEED = 20261129


def run(s, n, seed=SEED):
    print(f"{s.name}: {n} random blocks, seed {seed}")
    inputs = s.random_inputs(np.random.default_rng(seed), n)
    got = simulate(s.build(), inputs, latency=s.latency)
    want = s.reference(inputs)
    for port in want:
        np.testing.assert_array_equal(got[port], want[port], err_msg=f"{s.name}: port {port}")
    return inputs, want


@pytest.mark.parametrize("rule,fmt,params", [
    ("kc-m6_4-up", "e4m3", {}),
    ("kc-m6_4_3-up", "e4m3", {"pipelined": True}),
    ("kc-m6_4_3-up", "e8m0", {"block_size": 16}),
    ("kc-m8_6_4_3-mae-f6", "ue5m3", {"prevent_zero": True}),
])
def test_selector_bit_exact(rule, fmt, params):
    s = spec("selector", rule=rule, scale_format=fmt, **dict(dict(block_size=4), **params))
    inputs, want = run(s, 200)
    assert len(np.unique(want["choice"])) >= 2  # more than one candidate wins
    if rule.endswith("-up") and fmt == "e4m3":
        # the directed path: RoundSF(amax/4) == RoundSF(amax/6), so candidate 1 is raised one code
        x = decode_x(inputs["x"], s.params["input_format"]).reshape(len(want["scale"]), -1)
        amax = np.abs(x).max(axis=1)
        sfmt = golden.formats.get(fmt)
        c6, c4 = sfmt.encode(amax, divisor=6.0), sfmt.encode(amax, divisor=4.0)
        raised = (c6 == c4) & (c6 < 0x7E) & (want["choice"] == 1)
        assert raised.any() and np.all(want["scale"][raised] == c6[raised] + 1)


def test_two_candidates_are_the_4o6_unit():
    """kc-m6_4 and the FourOverSix unit: the same outputs on the same blocks."""
    a, b = spec("selector", rule="kc-m6_4", block_size=8), spec("4o6", block_size=8)
    inputs = a.random_inputs(np.random.default_rng(SEED), 150)
    got = [simulate(s.build(), inputs) for s in (a, b)]
    for port in ("scale", "codes", "choice"):
        np.testing.assert_array_equal(got[0][port], got[1][port], err_msg=port)


@pytest.mark.parametrize("rule,words", [
    ("kc-o0_1", "by M"), ("pg1-m6_4", "by M"), ("kc-m6_4-fp16", "fixed-point"),
    ("kc-m6_4-maxabs", "fixed-point"), ("kc-m6_4-seq", "fixed-point"), ("kc-m6_5", "M must be"),
    ("abs-max", "unknown rule")])
def test_selector_refuses(rule, words):
    with pytest.raises(ValueError, match=words):
        check_rule(rule)  # what CandidateSearch runs first

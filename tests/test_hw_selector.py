"""Selector RTL (hw/selector.py k-candidate searches, hw/predictor.py gap predictors) against the
golden ``rule=`` (Amaranth simulator)."""

import numpy as np
import pytest

from finescale import golden
from finescale.hw.predictor import check_predictor
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
    ("kc-m6_4-maxabs", "e4m3", {"block_size": 16}),
    ("kc-m6_4-maxabs-f4", "e4m3", {"block_size": 3}),
    ("kc-o0_1_2_3", "e4m3", {}),
    ("kc-on1_0_2", "ue5m3", {"prevent_zero": True, "block_size": 8}),
])
def test_selector_bit_exact(rule, fmt, params):
    s = spec("selector", rule=rule, scale_format=fmt, **dict(dict(block_size=4), **params))
    inputs, want = run(s, 200)
    if "choice" in want:
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
    ("pg1-m6_4", "k-candidate searches"), ("kc-m6_4-fp16", "fixed-point"),
    ("kc-m6_4-float", "fixed-point"), ("kc-m6_4-seq", "fixed-point"), ("kc-m6_5", "M must be"),
    ("abs-max", "unknown rule")])
def test_selector_refuses(rule, words):
    with pytest.raises(ValueError, match=words):
        check_rule(rule)  # what CandidateSearch runs first


@pytest.mark.parametrize("rule,fmt,params", [
    ("pg1-m6_4-up", "e4m3", {}),
    ("pg1-m6_4", "e4m3", {"pipelined": True, "block_size": 16}),
    ("pg2-m6_4-up", "ue5m3", {"prevent_zero": True, "block_size": 8}),
    ("pg1-m6_4-up", "e8m0", {"block_size": 32}),
])
def test_predictor_bit_exact(rule, fmt, params):
    s = spec("selector", rule=rule, scale_format=fmt, **dict(dict(block_size=4), **params))
    _, want = run(s, 300)
    assert len(np.unique(want["choice"])) == 2  # both candidates taken


def test_predictor_directed():
    """The gap's edges: |x| = 4 S0 is outside (strict), the next BF16 above it inside; an element
    equal to amax is outside; a zero S0 (RoundSF(amax/6) = 0) counts every nonzero element
    below amax."""
    s = spec("selector", rule="pg1-m6_4-up", block_size=4)
    sfmt = golden.formats.get("e4m3")
    s0 = sfmt.table[sfmt.encode(np.float64(5.5), divisor=6.0)]
    assert s0 == 0.9375 and 4 * s0 == 3.75
    tiny = 2.0 ** -12
    assert sfmt.encode(np.float64(tiny), divisor=6.0) == 0
    blocks = {(5.5, 3.75, 0, -1): 0, (5.5, -3.765625, 0, 1): 1, (5.5, -5.5, 3.75, 0): 0,
              (tiny, 0, 0, 0): 0, (tiny, 0, -tiny / 2, 0): 1}
    x = np.array(list(blocks), np.float32)
    xb = ml_dtypes_bits(x)
    got = simulate(s.build(), {"x": xb})
    want = s.reference({"x": xb})
    np.testing.assert_array_equal(want["choice"], list(blocks.values()))
    for port in want:
        np.testing.assert_array_equal(got[port], want[port], err_msg=port)


def ml_dtypes_bits(x):
    """BF16 bit patterns of float32 values that BF16 holds exactly."""
    ftype, itype = golden.formats.get_input("bf16").dtypes
    b = x.astype(ftype)
    assert np.array_equal(b.astype(np.float32), x)
    return b.view(itype)


@pytest.mark.parametrize("rule,words", [
    ("ps67_1-m6_4", "gap predictors"), ("pg1-o0_1", "by M"), ("pg1-m6_4_3", "two candidates"),
    ("pg1-m6_5", "M must be"), ("kc-m6_4", "gap predictors")])
def test_predictor_refuses(rule, words):
    with pytest.raises(ValueError, match=words):
        check_predictor(rule)  # what GapPredictor runs first


def test_every_front_selector_has_rtl():
    """golden.selectors.FRONT: each one builds, and the default matrix holds it (E4M3)."""
    from finescale.hw.units import matrix
    rules = {s.params["rule"] for s in matrix() if s.unit == "selector"}
    assert rules == set(golden.selectors.FRONT)
    for name in golden.selectors.FRONT:
        assert "choice" in {port["name"] for port in spec("selector", rule=name,
                                                          block_size=4).ports()}

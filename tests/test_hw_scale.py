"""Scale-selection unit and element quantizer against the golden model (Amaranth simulator)."""

import ml_dtypes
import numpy as np
import pytest

from finescale import golden
from finescale.hw.simulate import simulate
from finescale.hw.units import spec
from finescale.sim.references import finite_scale_codes

SCALE_CASES = [("e4m3", "abs-max", False), ("e4m3", "abs-max", True), ("ue5m3", "abs-max", False),
               ("ue5m3", "abs-max", True), ("ue5m3-ptx", "abs-max", False),
               ("e8m0", "mx", False), ("e8m0", "abs-max", False), ("e4m3", "mx", False)]


def amax_sweep(scale_format, stride):
    """Positive finite BF16 amax values from zero through the format's subnormal, normal and
    saturating ranges (every ``stride``-th code, all codes near the ends of the format)."""
    sfmt = golden.formats.get(scale_format)
    codes = np.arange(0, 0x7F80, dtype=np.uint16)
    x = codes.view(ml_dtypes.bfloat16).astype(np.float64)
    near = ((x > sfmt.min_subnormal) & (x < sfmt.min_subnormal * 64)) | \
           ((x > sfmt.max * 2) & (x < sfmt.max * 16))
    keep = (codes % stride == 0) | near | (codes < 256)
    return codes[keep]


@pytest.mark.parametrize("fmt,rule,pz", SCALE_CASES)
def test_scale_amax_sweep(fmt, rule, pz):
    s = spec("scale", scale_format=fmt, block_size=2, rule=rule, prevent_zero=pz)
    amax = amax_sweep(fmt, 61)
    rng = np.random.default_rng(1)
    # the second lane is a smaller magnitude, sometimes negative: amax is of |x|
    other = (amax.astype(np.int64) * rng.uniform(0, 1, amax.size)).astype(np.uint16)
    x = np.stack([amax | (rng.integers(0, 2, amax.size) << 15).astype(np.uint16), other], 1)
    x = np.where(rng.random(x.shape) < 0.5, x, x[:, ::-1])
    want = s.reference({"x": x})["scale"]
    got = simulate(s.build(), {"x": x})["scale"]
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} mismatches, first amax bits {x[bad[0]]}: "
                           f"got {got[bad[0]]:#x} want {want[bad[0]]:#x}")
    # the sweep really reaches zero, subnormal, normal and saturated scales
    sfmt = golden.formats.get(fmt)
    vals = sfmt.table[want]
    assert (vals == sfmt.min_subnormal).any()
    assert (vals == sfmt.max).any() or sfmt.max > 2.0 ** 125  # E8M0's max is out of BF16 reach
    if sfmt.zero_code is not None:
        assert (vals == 0).any() != pz
        assert (vals < sfmt.min_normal).any()


@pytest.mark.slow
@pytest.mark.parametrize("fmt,rule,pz", SCALE_CASES)
def test_scale_every_bf16_amax(fmt, rule, pz):
    s = spec("scale", scale_format=fmt, block_size=1, rule=rule, prevent_zero=pz)
    x = np.arange(0, 0x7F80, dtype=np.uint16)[:, None]
    np.testing.assert_array_equal(simulate(s.build(), {"x": x})["scale"],
                                  s.reference({"x": x})["scale"])


def tie_blocks(scale_format, lanes=16):
    """For every finite scale code: x at S times each E2M1 midpoint and value, one BF16 ulp
    either side, both signs; returns (x bits, scale codes)."""
    sfmt = golden.formats.get(scale_format)
    efmt = golden.formats.get("e2m1")
    v = efmt.values()[efmt.values() >= 0]
    points = np.concatenate([v, (v[:-1] + v[1:]) / 2, [7.0, 100.0, 0.1]])
    xs, ss = [], []
    for code in finite_scale_codes(scale_format):
        base = (points * sfmt.table[code]).astype(ml_dtypes.bfloat16)
        bits = base.view(np.uint16)
        cand = np.concatenate([bits, bits + 1, np.maximum(bits, 1) - 1])
        cand = cand[(cand & 0x7FFF) < 0x7F80]
        cand = np.concatenate([cand, cand | 0x8000])
        pad = (-cand.size) % lanes
        cand = np.concatenate([cand, np.zeros(pad, np.uint16)]).reshape(-1, lanes)
        xs.append(cand)
        ss.append(np.full(len(cand), code, np.uint8))
    return np.concatenate(xs), np.concatenate(ss)


@pytest.mark.parametrize("fmt", ["e4m3", "ue5m3", "e8m0"])
def test_element_every_scale_code_at_ties(fmt):
    s = spec("element", scale_format=fmt, block_size=16)
    x, scale = tie_blocks(fmt)
    if fmt == "e8m0":  # 254 codes: the ends and every 4th keep the test short
        keep = (scale % 8 == 0) | (scale < 8) | (scale > 245)
        x, scale = x[keep], scale[keep]
    want = s.reference({"x": x, "scale": scale})["codes"]
    got = simulate(s.build(), {"x": x, "scale": scale})["codes"]
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} mismatches, first {bad[0]}"
    assert set(np.unique(want)) == set(range(16))  # every code, -0 included


@pytest.mark.parametrize("unit", ["scale", "element", "quantizer"])
@pytest.mark.parametrize("fmt", ["e4m3", "ue5m3", "e8m0"])
def test_random_blocks(unit, fmt):
    s = spec(unit, scale_format=fmt, block_size=8)
    inputs = s.random_inputs(np.random.default_rng(7), 80)
    want = s.reference(inputs)
    got = simulate(s.build(), inputs)
    for port in want:
        np.testing.assert_array_equal(got[port], want[port], err_msg=f"port {port}")


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown format"):
        spec("scale", scale_format="e9m9").build()
    with pytest.raises(ValueError, match="block_size"):
        spec("scale", block_size=0).build()
    with pytest.raises(ValueError, match="rule"):
        spec("scale", rule="4o6").build()
    with pytest.raises(ValueError, match="unknown parameter"):
        spec("element", prevent_zero=True)

"""golden.dotproduct against an independent computation (ml_dtypes FP4 decode, exact fractions)."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from finescale import golden
from finescale.golden.dotproduct import block_dot


def fp4(codes):
    return np.asarray(codes, np.uint8).view(ml_dtypes.float4_e2m1fn).astype(np.float64)


@pytest.mark.parametrize("scale", ["e4m3", "ue5m3", "e8m0"])
def test_matches_ml_dtypes_decode_and_float64(scale):
    rng = np.random.default_rng(3)
    sfmt = golden.formats.get(scale)
    finite = np.flatnonzero(np.isfinite(sfmt.table) & (sfmt.table >= 0)).astype(np.uint8)
    a = rng.integers(0, 16, (2000, 16)).astype(np.uint8)
    b = rng.integers(0, 16, (2000, 16)).astype(np.uint8)
    sa, sb = rng.choice(finite, 2000), rng.choice(finite, 2000)
    dot = np.einsum("ij,ij->i", fp4(a), fp4(b))
    with np.errstate(over="ignore"):
        want = (dot * sfmt.table[sa] * sfmt.table[sb]).astype(np.float32)
    got = block_dot(a, b, sa, sb, scale=scale)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_all_fp4_products_exact_with_fractions():
    codes = np.arange(16, dtype=np.uint8)
    a, b = np.meshgrid(codes, codes, indexing="ij")
    got = block_dot(a.reshape(-1, 1), b.reshape(-1, 1), np.full(256, 0x38, np.uint8),
                    np.full(256, 0x38, np.uint8))  # E4M3 0x38 = 1.0
    for x, y, g in zip(a.ravel(), b.ravel(), got):
        want = Fraction(float(fp4([x])[0])) * Fraction(float(fp4([y])[0]))
        assert Fraction(float(g)) == want


def test_nan_overflow_underflow_and_zero_sign():
    one = np.array([[2, 0, 0, 0]], np.uint8)  # 1.0
    seven = np.array([[7, 7, 7, 7]], np.uint8)  # 6.0 each
    nan = block_dot(one, one, [0x7F], [0x38])
    assert nan.view(np.uint32)[0] == 0x7FC00000
    big = block_dot(seven, seven, [254], [254], scale="e8m0")
    assert np.isposinf(big[0])
    tiny = block_dot(one, one, [0], [0], scale="e8m0")  # 2**-254 underflows to +0
    assert tiny.view(np.uint32)[0] == 0
    neg_tiny = block_dot(one, one | 8, [0], [0], scale="e8m0")
    assert neg_tiny.view(np.uint32)[0] == 0x80000000
    zero = block_dot(one, np.zeros_like(one), [0x38], [0x38])
    assert zero.view(np.uint32)[0] == 0


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        block_dot(np.zeros((2, 4), np.uint8), np.zeros((2, 3), np.uint8), [0, 0], [0, 0])
    with pytest.raises(ValueError, match="outside"):
        block_dot(np.full((1, 4), 16), np.zeros((1, 4), np.uint8), [0], [0])
    with pytest.raises(TypeError, match="integer"):
        block_dot(np.zeros((1, 4)), np.zeros((1, 4), np.uint8), [0], [0])


# --- the accumulating unit ---------------------------------------------------------------------

SCALE_DTYPES = {"e4m3": ml_dtypes.float8_e4m3fn, "e8m0": ml_dtypes.float8_e8m0fnu}


def f32_nearest(q: Fraction) -> np.float32:
    """The float32 nearest to the exact ``q`` (ties to the even significand), by search."""
    if q == 0:
        return np.float32(0.0)
    guess = np.float32(float(q)) if abs(q) < 2 ** 128 else np.float32(np.sign(q) * np.inf)
    cands = {guess, np.nextafter(guess, np.float32(np.inf)), np.nextafter(guess, np.float32(-np.inf))}
    finite = [c for c in cands if np.isfinite(c)]
    top = Fraction(float(np.finfo(np.float32).max)) + Fraction(2) ** 103  # half an ulp above max
    if abs(q) >= top:
        return np.float32(np.inf if q > 0 else -np.inf)

    def key(c):
        return (abs(Fraction(float(c)) - q), int(np.float32(c).view(np.uint32)) & 1)
    return min(finite, key=key)


@pytest.mark.parametrize("scale", ["e4m3", "e8m0"])
def test_accumulate_matches_exact_fractions(scale):
    """Running sums of exact block values (ml_dtypes decodes) rounded once, with clears."""
    from finescale.golden.dotproduct import accumulate_dot
    rng = np.random.default_rng(11)
    n = 300
    sdt = SCALE_DTYPES[scale]
    scale_vals = np.arange(256, dtype=np.uint8).view(sdt).astype(np.float64)
    ok = np.flatnonzero(np.isfinite(scale_vals)).astype(np.uint8)
    a = rng.integers(0, 16, (n, 8)).astype(np.uint8)
    b = rng.integers(0, 16, (n, 8)).astype(np.uint8)
    sa, sb = rng.choice(ok, n), rng.choice(ok, n)
    clear = rng.random(n) < 0.1
    got = accumulate_dot(a, b, sa, sb, clear, scale=scale)
    total, want = Fraction(0), []
    for i in range(n):
        block = sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(fp4(a[i]), fp4(b[i])))
        value = block * Fraction(float(scale_vals[sa[i]])) * Fraction(float(scale_vals[sb[i]]))
        total = value if (clear[i] or i == 0) else total + value
        want.append(f32_nearest(total))
    np.testing.assert_array_equal(got["result"].view(np.uint32),
                                  np.array(want, np.float32).view(np.uint32))
    assert not got["overflow"].any() and not got["nan"].any()


def test_accumulate_nan_is_sticky_until_clear_and_zero_is_positive():
    from finescale.golden.dotproduct import accumulate_dot
    one, six = 0x2, 0x7  # E2M1 1.0 and 6.0
    a = np.array([[one], [one], [one], [six], [six | 8]], np.uint8)
    b = np.array([[one]] * 5, np.uint8)
    s = np.full(5, 0x38, np.uint8)  # E4M3 1.0
    sa = s.copy()
    sa[1] = 0x7F  # NaN
    r = accumulate_dot(a, b, sa, s, np.array([1, 0, 0, 1, 0], bool))
    bits = r["result"].view(np.uint32)
    assert bits[0] == np.float32(1.0).view(np.uint32)
    assert bits[1] == bits[2] == 0x7FC00000  # NaN until the clear
    assert r["acc"][1] == r["acc"][0] and r["acc"][2] == 2 * r["acc"][0]  # NaN added nothing
    assert bits[3] == np.float32(6.0).view(np.uint32)
    assert bits[4] == 0  # 6 - 6: +0


def test_accumulate_rejects_bad_input():
    from finescale.golden.dotproduct import accumulate_dot, accumulator_layout
    z = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match="clear"):
        accumulate_dot(z, z, [0, 0, 0], [0, 0, 0], [1, 0])
    with pytest.raises(ValueError, match="shape"):
        accumulate_dot(z[0], z[0], [0], [0], [1])
    with pytest.raises(ValueError, match="headroom"):
        accumulator_layout("e4m3", 16, headroom=-1)
    with pytest.raises(ValueError, match="block_size"):
        accumulator_layout("e4m3", 0)

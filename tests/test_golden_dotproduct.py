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

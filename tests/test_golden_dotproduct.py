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
    got = block_dot(a, b, sa, sb, scale_format=scale)
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
    big = block_dot(seven, seven, [254], [254], scale_format="e8m0")
    assert np.isposinf(big[0])
    tiny = block_dot(one, one, [0], [0], scale_format="e8m0")  # 2**-254 underflows to +0
    assert tiny.view(np.uint32)[0] == 0
    neg_tiny = block_dot(one, one | 8, [0], [0], scale_format="e8m0")
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
    got = accumulate_dot(a, b, sa, sb, clear, scale_format=scale)
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


def test_accumulate_rounds_once_past_float64_precision():
    """2**254 + 2**230 + 3 * 2**200 LSBs (E8M0): above an FP32 tie by less than a float64 ulp,
    where float64 RNE lands on the tie (a double rounding would then go to even)."""
    from finescale.golden.dotproduct import accumulate_dot
    one, half = 0x2, 0x1
    a, b = np.array([[one], [one], [half], [half]], np.uint8), \
        np.array([[one], [one], [one], [half]], np.uint8)
    sa = np.array([127 - 1, 127 - 13, 127 - 27, 127 - 28], np.uint8)
    sb = np.array([127 - 1, 127 - 13, 127 - 27, 127 - 27], np.uint8)
    exact = Fraction(1, 4) + Fraction(2) ** -26 + 3 * Fraction(2) ** -56
    tie = Fraction(1, 4) + Fraction(2) ** -26  # between 1/4 and its FP32 successor
    assert 0 < exact - tie < Fraction(2) ** -54  # below half a float64 ulp of 1/4
    got = accumulate_dot(a, b, sa, sb, np.array([1, 0, 0, 0], bool), scale_format="e8m0")
    assert got["result"][-1] == f32_nearest(exact) == np.nextafter(np.float32(0.25), 1)


@pytest.mark.parametrize("name", ["accumulate_dot", "accumulate_fp32"])
def test_accumulate_rejects_bad_input(name):
    from finescale.golden import dotproduct
    run = getattr(dotproduct, name)
    z = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match="clear"):
        run(z, z, [0, 0, 0], [0, 0, 0], [1, 0])
    with pytest.raises(ValueError, match="shape"):
        run(z[0], z[0], [0], [0], [1])
    with pytest.raises(ValueError, match="outside"):
        run(z + 16, z, [0] * 3, [0] * 3, [1, 0, 0])
    with pytest.raises(ValueError, match="headroom"):
        dotproduct.accumulator_layout("e4m3", 16, headroom=-1)
    with pytest.raises(ValueError, match="block_size"):
        dotproduct.accumulator_layout("e4m3", 0)


# --- the FP32-accumulating unit ----------------------------------------------------------------
# Reference: per block the exact value (element decodes from ml_dtypes, scale decodes written
# here), added to the exact value of the previous float32 total, rounded by a binary search over
# float32 bit patterns (`round_search`), signed zeros by the IEEE rules spelled out below.

TOP = Fraction(2) ** 128  # where the pattern after the largest finite float32 "is" (+inf)


def scale_sign(scale, code) -> bool:
    """The sign bit of a scale code (E4M3's -0 included; UE5M3 and E8M0 are unsigned)."""
    return scale == "e4m3" and bool(int(code) & 0x80)


def scale_value(scale, code) -> Fraction | None:
    """Exact value of a scale code (None for NaN): ml_dtypes for E4M3 / E8M0, UE5M3 by hand."""
    code = int(code)
    if scale == "ue5m3":
        e, m = code >> 3, code & 7
        if e == 31:
            return None
        return Fraction(m, 8) * Fraction(2) ** -14 if e == 0 else \
            (1 + Fraction(m, 8)) * Fraction(2) ** (e - 15)
    v = np.array([code], np.uint8).view(SCALE_DTYPES[scale]).astype(np.float64)[0]
    return None if np.isnan(v) else Fraction(float(v))


def pattern_value(p: int) -> Fraction:
    return TOP if p == 0x7F800000 else Fraction(float(np.uint32(p).view(np.float32)))


def round_search(q: Fraction) -> tuple[int, bool]:
    """Bits of the float32 nearest to ``q != 0`` (ties to the even pattern, beyond the largest
    finite value +-inf as IEEE RNE), found by binary search; and whether ``q`` was a tie."""
    mag = abs(q)
    lo, hi = 0, 0x7F800000  # invariant: value(lo) <= mag < value(hi), or hi is inf
    if mag >= TOP:
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pattern_value(mid) <= mag:
            lo = mid
        else:
            hi = mid
    d_lo, d_hi = mag - pattern_value(lo), pattern_value(hi) - mag
    tie = d_lo == d_hi and d_lo != 0
    p = lo if (d_lo < d_hi or (tie and lo % 2 == 0) or lo == hi) else hi
    return p | (0x80000000 if q < 0 else 0), tie


def fp32_reference(a, b, sa, sb, clear, scale):
    """Per block: result bits, sticky NaN, and the path taken (for the directed corners)."""
    bits, nans, paths = [], [], []
    total, total_neg, nan = Fraction(0), True, False  # after clear: -0
    for i in range(len(a)):
        if clear[i] or i == 0:
            total, total_neg, nan = Fraction(0), True, False
        s_a, s_b = scale_value(scale, sa[i]), scale_value(scale, sb[i])
        path = set()
        if s_a is None or s_b is None:
            nan = True
            path.add("nan")
        elif total_neg is None:  # +-inf stays
            path.add("inf")
        else:
            block = sum(Fraction(float(x)) * Fraction(float(y))
                        for x, y in zip(fp4(a[i]), fp4(b[i])))
            value = block * s_a * s_b
            # the sign of a zero value: IEEE's for the product block * S_a * S_b
            value_neg = (block < 0) != (scale_sign(scale, sa[i]) != scale_sign(scale, sb[i]))
            exact = total + value
            if exact == 0:
                both_zero = total == 0 and value == 0
                total_neg = both_zero and total_neg and value_neg
                path.add("zero-zero" if both_zero else "cancel")
                total = Fraction(0)
            else:
                p, tie = round_search(exact)
                if tie:
                    path.add("tie")
                if p & 0x7FFFFFFF == 0x7F800000:
                    total_neg, total = None, None
                    path.add("overflow")
                    bits_now = p
                else:
                    total = pattern_value(p & 0x7FFFFFFF) * (-1 if p >> 31 else 1)
                    total_neg = bool(p >> 31)
                    e = (p >> 23) & 0xFF
                    path.add("underflow-zero" if p & 0x7FFFFFFF == 0 else
                             "subnormal" if e == 0 else "normal")
        if total_neg is None:
            bits_now = 0xFF800000 if bits_now >> 31 else 0x7F800000
        elif total == 0:
            bits_now = 0x80000000 if total_neg else 0
        else:
            bits_now = int(np.float32(float(total)).view(np.uint32))  # exact: a float32 value
        bits.append(0x7FC00000 if nan else bits_now)
        nans.append(nan)
        paths.append(path)
    return np.array(bits, np.uint32), np.array(nans), paths


def _fp32(a, b, sa, sb, clear, scale_format="e4m3"):
    from finescale.golden.dotproduct import accumulate_fp32
    a, b = np.asarray(a, np.uint8), np.asarray(b, np.uint8)
    sa, sb = np.asarray(sa, np.uint8), np.asarray(sb, np.uint8)
    clear = np.asarray(clear, bool)
    got = accumulate_fp32(a, b, sa, sb, clear, scale_format=scale_format)
    want, nan, paths = fp32_reference(a, b, sa, sb, clear, scale_format)
    np.testing.assert_array_equal(got["result"].view(np.uint32), want)
    np.testing.assert_array_equal(got["nan"], nan)
    return want, paths


@pytest.mark.parametrize("scale", ["e4m3", "ue5m3", "e8m0"])
def test_fp32_accumulate_matches_fraction_running_sums(scale):
    """Random streams with clears and NaN scales, scales clustered so that sums cancel and round."""
    rng = np.random.default_rng({"e4m3": 1, "ue5m3": 2, "e8m0": 3}[scale])
    n = 400
    a = rng.integers(0, 16, (n, 8)).astype(np.uint8)
    b = rng.integers(0, 16, (n, 8)).astype(np.uint8)
    codes = np.arange(256)
    finite = np.array([scale_value(scale, c) is not None for c in codes])
    nan_code = codes[~finite][0]
    # mostly a narrow band of scales (sums that round and cancel), some anywhere
    mid = rng.choice(codes[finite])
    band = codes[finite & (np.abs(codes - mid) < 24)]
    sa = np.where(rng.random(n) < 0.8, rng.choice(band, n), rng.choice(codes[finite], n))
    sb = np.where(rng.random(n) < 0.8, rng.choice(band, n), rng.choice(codes[finite], n))
    sa[rng.random(n) < 0.02] = nan_code
    clear = rng.random(n) < 0.1
    want, paths = _fp32(a, b, sa, sb, clear, scale)
    seen = set().union(*paths)
    assert {"normal", "nan"} <= seen


def test_fp32_streams_are_independent_rows():
    """Leading axes are independent streams: the same as one call per stream."""
    from finescale.golden.dotproduct import accumulate_fp32
    rng = np.random.default_rng(4)
    a = rng.integers(0, 16, (3, 50, 4)).astype(np.uint8)
    s = rng.integers(0x30, 0x50, (3, 50)).astype(np.uint8)
    clear = rng.random((3, 50)) < 0.2
    both = accumulate_fp32(a, a[::-1], s, s[::-1], clear)
    for i in range(3):
        one = accumulate_fp32(a[i], a[::-1][i], s[i], s[::-1][i], clear[i])
        np.testing.assert_array_equal(both["result"][i].view(np.uint32),
                                      one["result"].view(np.uint32))


ONE, HALF, SIX = 0x2, 0x1, 0x7  # E2M1 1.0, 0.5, 6.0
NEG = 0x8


def e8m0(k):  # the E8M0 code of 2**k
    return 127 + k


def test_fp32_cancellation_and_zero_signs():
    # 1 - 1: exact cancellation of nonzero operands -> +0
    bits, paths = _fp32([[ONE], [ONE]], [[ONE], [ONE | NEG]], [0x38] * 2, [0x38] * 2, [1, 0])
    assert "cancel" in paths[1] and bits[1] == 0
    # a zero block with a negative scale after clear: -0 + -0 -> -0; then +0 block -> +0
    bits, paths = _fp32([[0], [0]], [[ONE], [ONE]], [0xB8, 0x38], [0x38, 0x38], [1, 0])
    assert "zero-zero" in paths[0] and bits[0] == 0x80000000
    assert "zero-zero" in paths[1] and bits[1] == 0
    # a negative value far below the smallest subnormal rounds to -0, then stays -0 + -0
    bits, paths = _fp32([[ONE], [0]], [[ONE | NEG], [ONE]], [e8m0(-127)] * 2, [e8m0(-127)] * 2,
                        [1, 0], "e8m0")
    assert "underflow-zero" in paths[0] and bits[0] == 0x80000000
    assert bits[1] == 0  # -0 + (+0) = +0


def test_fp32_ties_round_to_even_both_ways():
    # 2**24 + 1: a tie between 2**24 (even) and 2**24 + 2 -> down
    bits, paths = _fp32([[ONE], [ONE]], [[ONE], [ONE]], [e8m0(24), e8m0(0)], [e8m0(0)] * 2,
                        [1, 0], "e8m0")
    assert "tie" in paths[1] and bits[1] == np.float32(2.0 ** 24).view(np.uint32)
    # 2**24 + 2 + 1: a tie between 2**24 + 2 (odd significand) and 2**24 + 4 -> up
    bits, paths = _fp32([[ONE], [ONE], [ONE]], [[ONE]] * 3, [e8m0(24), e8m0(1), e8m0(0)],
                        [e8m0(0)] * 3, [1, 0, 0], "e8m0")
    assert "tie" in paths[2] and bits[2] == np.float32(2.0 ** 24 + 4).view(np.uint32)


def test_fp32_carry_out_of_the_significand():
    # (2**24 - 1) + 0.5: a tie rounding up to 2**24 -> the significand carries into the exponent
    bits, paths = _fp32([[ONE], [ONE], [HALF]], [[ONE], [ONE | NEG], [ONE]],
                        [e8m0(24), e8m0(0), e8m0(0)], [e8m0(0)] * 3, [1, 0, 0], "e8m0")
    assert bits[1] == np.float32(2.0 ** 24 - 1).view(np.uint32)
    assert "tie" in paths[2] and (bits[2] >> 23) == (bits[1] >> 23) + 1
    assert bits[2] == np.float32(2.0 ** 24).view(np.uint32)


def test_fp32_overflow_to_inf_stays_until_clear():
    big = e8m0(127)
    bits, paths = _fp32([[SIX], [SIX | NEG], [ONE]], [[SIX]] * 3, [big, e8m0(0), e8m0(0)],
                        [big, e8m0(0), e8m0(0)], [1, 0, 1], "e8m0")
    assert "overflow" in paths[0] and bits[0] == 0x7F800000
    assert "inf" in paths[1] and bits[1] == 0x7F800000
    assert bits[2] == np.float32(6.0).view(np.uint32)
    # -2**104 + 2**128 is the largest finite float32; plus 2**103 (half its ulp) it is a tie
    # that goes to inf, plus 2**102 it stays finite
    for k, want, path in ((103, 0x7F800000, {"overflow", "tie"}), (102, 0x7F7FFFFF, {"normal"})):
        bits, paths = _fp32([[ONE]] * 3, [[ONE | NEG], [ONE], [ONE]],
                            [e8m0(104), e8m0(127), e8m0(k)], [e8m0(0), e8m0(1), e8m0(0)],
                            [1, 0, 0], "e8m0")
        assert bits[1] == np.finfo(np.float32).max.view(np.uint32)
        assert path <= paths[2] and bits[2] == want


def test_fp32_subnormal_results_are_kept():
    # 2**-140 (subnormal) plus 2**-149 (the smallest subnormal): exact, no flush
    bits, paths = _fp32([[ONE], [ONE]], [[ONE]] * 2, [e8m0(-70), e8m0(-75)],
                        [e8m0(-70), e8m0(-74)], [1, 0], "e8m0")
    assert "subnormal" in paths[0] and "subnormal" in paths[1]
    assert bits[1] == np.float32(2.0 ** -140 + 2.0 ** -149).view(np.uint32)
    # 1.5 * 2**-149 is a subnormal tie that goes to 2 * 2**-149; 2**-151 alone rounds to +0
    bits, paths = _fp32([[0x5], [HALF]], [[HALF], [HALF]], [e8m0(-75)] * 2, [e8m0(-74)] * 2,
                        [1, 1], "e8m0")
    assert {"subnormal", "tie"} <= paths[0] and bits[0] == 2
    assert "underflow-zero" in paths[1] and bits[1] == 0


def test_fp32_nan_scale_is_sticky_until_clear_mid_stream():
    sa = [0x38, 0x7F, 0x38, 0x38, 0x38]
    bits, paths = _fp32([[ONE]] * 5, [[ONE]] * 5, sa, [0x38] * 5, [1, 0, 0, 1, 0])
    assert "nan" in paths[1] and paths[2] == {"normal"}
    assert bits.tolist() == [0x3F800000, 0x7FC00000, 0x7FC00000, 0x3F800000, 0x40000000]


@pytest.mark.parametrize("scale", ["ue5m3", "e8m0"])
def test_fp32_sticky_bits_far_below_break_ties(scale):
    """2**30 +- (tie + a bit 47 places below the top): a tie only if that bit were lost."""
    def code(v):
        return next(c for c in range(256) if scale_value(scale, c) == v)
    up_sa, up_sb = [code(2 ** 3), code(2 ** -8), code(2 ** 15)], [code(2 ** 3), code(2 ** -9),
                                                                    code(2 ** 15)]
    bits, _ = _fp32([[ONE]] * 3, [[ONE]] * 3, up_sa, up_sb, [1, 0, 0], scale)
    exact = Fraction(2) ** 30 + Fraction(2) ** 6 + Fraction(2) ** -17
    tie = Fraction(2) ** 30 + Fraction(2) ** 6  # between 2**30 and 2**30 + 2**7
    assert 0 < exact - tie < Fraction(2) ** -16
    assert bits[2] == np.float32(2.0 ** 30 + 2.0 ** 7).view(np.uint32)
    dn_sa, dn_sb = [code(2 ** 2), code(2 ** -9), code(2 ** 15)], [code(2 ** 3), code(2 ** -9),
                                                                    code(2 ** 15)]
    bits, _ = _fp32([[ONE]] * 3, [[ONE | NEG], [ONE | NEG], [ONE]], dn_sa, dn_sb, [1, 0, 0], scale)
    assert bits[2] == np.float32(2.0 ** 30 - 2.0 ** 6).view(np.uint32)  # the tie would give 2**30

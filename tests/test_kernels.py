"""The compiled kernels' fast paths against exact references, at the points where they can slip.

The element comparator compares the bits of ``|x|`` with thresholds rounded into
x's float type (golden/kernels.py ``fast_row``); the block amax is an integer
maximum over bits.  Both are checked here where a rounding of the threshold
would show: x at, and one ulp either side of, every midpoint times a divisor of
24 significant bits (so that ``m * d`` is not a float32), in every tie mode.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from finescale.golden import formats, kernels
from finescale.golden.rounding import comparator_args

E2M1 = [Fraction(v) for v in (0, 0.5, 1, 1.5, 2, 3, 4, 6)]


def _nearest(q: Fraction, mode: str) -> int:
    """Index into E2M1 of |x| / d rounded exactly (saturating at 6); magnitude codes are indices."""
    if q >= E2M1[-1]:
        return len(E2M1) - 1
    k = max(i for i, v in enumerate(E2M1) if v <= q)
    lo, hi = E2M1[k], E2M1[k + 1]
    mid = (lo + hi) / 2
    if q != mid:
        return k + 1 if q > mid else k
    return {"rne": k + (k & 1), "ties-away": k + 1, "ties-down": k}[mode]


def _divisors():
    rng = np.random.default_rng(7)
    mant = rng.integers(1 << 23, 1 << 24, 12)  # 24 significant bits
    d = np.ldexp(mant.astype(np.float64), rng.integers(-40, -10, 12))
    return np.concatenate([d, [0.25, 1.0, 2.0 ** -12, 3 * 2.0 ** -20]])


def _edge_blocks(dtype):
    """One block a divisor: x at and one ulp either side of every midpoint m * d, both signs."""
    mids = [(a + b) / 2 for a, b in zip(E2M1, E2M1[1:])]
    rows, ds = [], []
    for d in _divisors():
        row = []
        for m in mids:
            t = dtype(float(m) * d)
            row += [np.nextafter(t, dtype(0)), t, np.nextafter(t, dtype(np.inf))]
        row += [dtype(7 * d), dtype(0)]
        rows.append(row + [-v for v in row])
        ds.append(d)
    return np.array(rows, dtype), np.array(ds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["rne", "ties-away", "ties-down"])
def test_comparator_fast_path_matches_exact_rounding(dtype, mode):
    efmt = formats.get("e2m1")
    grid = efmt.grid.args(mode)
    cmp = comparator_args(efmt, mode)
    xb, d = _edge_blocks(dtype)
    assert kernels.with_mask(cmp, xb, grid, 0)[5], "the fast path must be the one under test"
    # the thresholds really are off the float grid for the 24-bit divisors (float32)
    if dtype is np.float32:
        t = float(E2M1[1] + E2M1[2]) / 2 * d[0]
        assert float(np.float32(t)) != t
    out = np.empty(xb.shape, np.uint8)
    kernels.quantize_rows(xb, d, cmp, grid, 0, out)
    want = np.array([[_nearest(Fraction(float(abs(v))) / Fraction(float(dr)), mode)
                      | (8 if np.signbit(v) else 0) for v in row] for row, dr in zip(xb, d)])
    assert (out == want).all()


def test_comparator_fast_path_zero_divisor_gives_signed_zeros():
    efmt = formats.get("e2m1")
    xb = np.array([[1.0, -1.0, 0.0, -0.0] * 4], np.float32)
    out = np.empty(xb.shape, np.uint8)
    kernels.quantize_rows(xb, np.zeros(1), comparator_args(efmt, "rne"), efmt.grid.args(), 0, out)
    assert out.tolist() == [[0, 8, 0, 8] * 4]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_amax_on_bits(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    xb = np.array([[1, -2, 3, -4], [0, -0.0, 0, 0], [np.nan, 1, 1, 1], [1, -np.inf, 0, 0],
                   [tiny, -2 * tiny, 0, 0], [-np.finfo(dtype).max, 0, 0, 1]], dtype)
    got = kernels.block_amax(xb)
    want = [4, 0, np.nan, np.nan, 2 * float(tiny), float(np.finfo(dtype).max)]
    assert np.array_equal(got, np.array(want), equal_nan=True)


def _ranges(nrows):
    """The row ranges run_rows hands out (a Python kernel recording them)."""
    from finescale.golden import pool
    seen = []
    pool.run_rows(lambda lo, hi: seen.append((lo, hi)), nrows)
    return sorted(seen)


def test_run_rows_covers_every_row_once(monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    for nrows in (0, 5, 16384, 16385, 100_003):
        ranges = _ranges(nrows)
        assert [r for lo, hi in ranges for r in range(lo, hi)] == list(range(nrows))


def test_run_rows_works_in_a_forked_child(monkeypatch):
    import multiprocessing
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    _ranges(100_000)  # the parent's pool exists; a forked child has none of its threads
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as p:
        assert p.apply_async(_ranges, (100_000,)).get(timeout=30)[-1][1] == 100_000

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


# --- block scales: RoundSF(amax / gm) from the float64 quotient (rounding.round_quotient)

SCALE_MODES = ["rne", "ties-away", "ties-down", "floor", "ceil"]


def _grid(fmt):
    """Non-negative finite values of fmt as Fractions, ascending, each with its first code."""
    seen = {}
    for code, v in enumerate(fmt.table):
        if np.isfinite(v) and v >= 0 and not np.signbit(v):
            seen.setdefault(Fraction(float(v)), code)
    return sorted(seen.items())


def _round_scale_exact(q: Fraction, grid, mode: str) -> tuple[int, str]:
    """(code, path) of q >= 0 rounded onto ``grid`` (saturating; below a zero-less grid: its
    smallest value); path names the case: "exact", "tie", "between" or "end"."""
    vals = [v for v, _ in grid]
    if q >= vals[-1] or q <= vals[0]:
        return grid[-1 if q >= vals[-1] else 0][1], "end"
    k = max(i for i, v in enumerate(vals) if v <= q)
    if vals[k] == q:
        return grid[k][1], "exact"
    lo, hi = grid[k], grid[k + 1]
    mid = (lo[0] + hi[0]) / 2
    if mode in ("floor", "ceil"):
        return (lo if mode == "floor" else hi)[1], "between"
    if q != mid:
        return (hi if q > mid else lo)[1], "between"
    up = {"rne": hi[1] % 2 == 0, "ties-away": True, "ties-down": False}[mode]
    return (hi if up else lo)[1], "tie"


def _scale_points(fmt, gm):
    """amax at every value and midpoint of fmt's grid times gm, one float64 ulp either side,
    and beyond both ends."""
    vals = np.array([float(v) for v, _ in _grid(fmt)])
    pts = np.concatenate([vals, (vals[1:] + vals[:-1]) / 2]) * gm
    pts = np.concatenate([pts, np.nextafter(pts, 0), np.nextafter(pts, np.inf),
                          [0.0, vals[-1] * gm * 3, vals[0] * gm / 3]])
    return np.unique(pts[pts >= 0])


#: gm = g * M: M = 6 alone, and times a float32 per-tensor scale of 24 significant bits
_GMS = [1.0, 6.0, 6.0 * float(np.float32(0.7261933)), 6.0 * 2.0 ** -30 * 16777215]


@pytest.mark.parametrize("mode", SCALE_MODES)
@pytest.mark.parametrize("name", formats.names())
def test_scale_codes_match_exact_rounding(name, mode):
    fmt = formats.get(name)
    grid = _grid(fmt)
    for gm in _GMS:
        amax = _scale_points(fmt, gm)
        want = [_round_scale_exact(Fraction(float(a)) / Fraction(gm), grid, mode)[0]
                for a in amax]
        got = kernels.scale_codes(amax, np.full(amax.size, gm), fmt.table, fmt.grid.args(mode),
                                  fmt.grid.binades, -1)
        assert got.tolist() == want, (name, mode, gm)


@pytest.mark.parametrize("mode", ["rne", "ties-away", "ties-down"])
def test_scale_tie_is_decided_on_the_fast_path(mode):
    """At an exact tie between two E4M3 scales the branch-free decision of round_quotient
    (not its fallback to round_one, -1) returns the code, and it is the exact rounding."""
    from finescale.golden.rounding import round_quotient
    fmt = formats.get("e4m3")
    grid = _grid(fmt)
    base, shift = fmt.grid.binades
    buf = np.empty(1)
    gm = _GMS[2]
    ties = 0
    for (lo, _), (hi, _) in zip(grid[:-1], grid[1:]):
        a = float((lo + hi) / 2) * gm
        want, path = _round_scale_exact(Fraction(a) / Fraction(gm), grid, mode)
        assert path == "tie"  # the reference takes the tie path at this point
        got = round_quotient(a, gm, base, shift, buf, buf.view(np.int64), fmt.grid.values,
                             fmt.grid.codes, fmt.grid.args(mode)[10])
        if a > 0 and hi < grid[-1][0]:
            assert got == want, (float(lo), float(hi))
            ties += 1
    assert ties > 100


def test_scale_guess_is_exact_on_every_grid_and_only_saves_work():
    """Grid.binades' guess is the floor index at every grid value (off by one at most for a
    rounded quotient); a useless guess (the bottom of the grid) gives the same codes."""
    for name in formats.names():
        g = formats.get(name).grid
        base, shift = g.binades
        q = _scale_points(formats.get(name), 1.0)
        b = q.view(np.int64)
        e = (b >> 52) & 0x7FF
        guess = np.minimum(base[e] + ((b & ((1 << 52) - 1)) >> shift[e]), g.values.size - 1)
        floor = np.searchsorted(g.values, q, side="right") - 1
        assert np.abs(guess - floor).max() <= 1, name
        on_grid = np.isin(q, g.values)
        assert (guess[on_grid] == floor[on_grid]).all(), name
    fmt = formats.get("e4m3")
    amax = _scale_points(fmt, _GMS[2])
    gm = np.full(amax.size, _GMS[2])
    useless = (np.full(2048, -1, np.int64), np.full(2048, 52, np.int64))
    args = fmt.table, fmt.grid.args("rne")
    assert (kernels.scale_codes(amax, gm, *args, useless, -1)
            == kernels.scale_codes(amax, gm, *args, fmt.grid.binades, -1)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["rne", "ties-away", "ties-down"])
def test_threshold_table_matches_the_kernel_thresholds(dtype, mode):
    """The scale codes' table (numpy) holds the kernels' per-block thresholds (exact: see
    test_comparator_fast_path_matches_exact_rounding) for the same divisors, zero and NaN
    (a NaN code's scale, never a block's) giving the signed-zero comparator."""
    efmt = formats.get("e2m1")
    xb, d = _edge_blocks(dtype)
    cmp = kernels.with_mask(comparator_args(efmt, mode), xb, efmt.grid.args(mode), 0)
    d = np.concatenate([d, [0.0, np.nan]])
    tab = kernels.threshold_table(d, cmp, xb)
    for row, dv in zip(tab, d):
        thr = np.empty(8, dtype)
        ti = thr.view(tab.dtype)
        kernels.thresholds(0.0 if np.isnan(dv) else dv, cmp, thr, ti)
        assert row.tolist() == ti.tolist(), dv


@pytest.mark.parametrize("mode", SCALE_MODES)
@pytest.mark.parametrize("name", ["e4m3", "ue5m3", "e8m0", "ue4m3"])
def test_scale_buckets_match_scale_codes(name, mode):
    """abs-max's table of scale codes by the bits of a float32 amax: at every bucket's ends,
    at and past every boundary the bisection found, and at random bits, the code is
    :func:`kernels.scale_codes`'s (itself the exact rounding, tested above)."""
    fmt = formats.get(name)
    args = fmt.table, fmt.grid.args(mode), fmt.grid.binades
    for gm, pz in [(6.0, -1), (_GMS[2], -1), (4.0, int(fmt.encode(fmt.min_subnormal)))]:
        lo, hi, above = kernels.scale_buckets(gm, *args, pz)
        assert above.size == 0x7F800000 >> 18, "the table must be built for these grids"
        rng = np.random.default_rng(1)
        b = np.concatenate([np.arange(above.size) << 18, above, above + 1,
                            rng.integers(0, 0x7F800000, 20000)]).astype(np.int64)
        b = b[b < 0x7F800000]  # finite
        got = np.where(b > above[b >> 18], hi[b >> 18], lo[b >> 18])
        a = b.astype(np.int32).view(np.float32).astype(np.float64)
        want = kernels.scale_codes(a, np.full(a.size, gm), *args, pz)
        assert np.array_equal(got, want), (name, mode, gm)

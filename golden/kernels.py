"""Compiled block kernels of the quantizer: amax, dequantization, block errors, brute force.

All work on blocks laid out as rows of a 2-D array ``xb[nblocks, block]`` with
one divisor ``d[block] = global * scale`` a row.  Element codes come from
:func:`fast_row` (the comparator) or :func:`rounding.round_one`, so every path rounds
exactly as a cast does.

Block errors, two definitions:

* ``float``: the float64 sum over the block, in element order, of ``e**2``
  (mse), ``|e|`` (mae) or the max of ``|e|`` (max-abs), with
  ``e = x - value(code) * d``.
* ``fixed``: the hardware's integer arithmetic.  With ``Eb = floor(log2 amax)``
  of the block and ``F`` fractional bits, every magnitude is truncated to the
  frame ``2**(Eb - F)``: ``X = floor(|x| * 2**(F - Eb))``,
  ``Y = floor(|value(code) * d| * 2**(F - Eb))``, and the error terms are the
  integers ``X - Y``, summed (or maxed) exactly.  ``x`` and its quantized value
  share a sign, so this is the truncated magnitude of ``e``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .pool import run_rows
from .rounding import round_one, round_quotient

METRICS = ("mse", "mae", "max-abs")
MSE, MAE, MAXABS = range(3)

def bits(x: np.ndarray) -> np.ndarray:
    """x's IEEE bit patterns as signed integers of its width (a view)."""
    return x.view(np.int32 if x.dtype.itemsize == 4 else np.int64)


@numba.njit(cache=True, nogil=True)
def _block_amax(lo, hi, xi, mask, inf, bitsout, floatout, amax):
    for r in range(lo, hi):
        m = xi[r, 0] & mask
        for c in range(1, xi.shape[1]):
            m = max(m, xi[r, c] & mask)
        bitsout[r] = m
        amax[r] = np.nan if m >= inf else floatout[r]


def block_amax(xb):
    """max |x| of every row (float64); NaN for a row holding NaN or Inf.

    The maximum is taken over the bits of ``|x|`` (non-negative floats order as
    integers, NaN and Inf above every finite value): an integer SIMD reduction.
    """
    xi = bits(xb)
    mask = np.iinfo(xi.dtype).max
    out = np.empty(xb.shape[0], xi.dtype)
    amax = np.empty(xb.shape[0])
    inf = np.array(np.inf, xb.dtype).view(xi.dtype)
    run_rows(_block_amax, xb.shape[0], xi, xi.dtype.type(mask), inf, out, out.view(xb.dtype),
             amax)
    return amax


@numba.njit(inline="always")
def thresholds(d, cmp, thr, ti):
    """Integer thresholds of the comparator bank for divisor d in ``ti[:8]`` (see
    :func:`fast_row`): the largest integer past the midpoints, and everywhere for d == 0
    (no magnitude exceeds it: every code is a signed zero).

    ``thr`` (x's float type) and ``ti`` (its bits) are one scratch buffer.
    """
    mids, tie_up = cmp[1], cmp[2]
    for i in range(8):
        ti[i] = cmp[6]
    if d != 0.0:
        for i in range(mids.size):
            t = mids[i] * d  # exact in float64
            thr[i] = t  # nearest float of x's type
            # |x| > t, or |x| >= t on a tie that rounds up  <=>  bits(|x|) > ti[i]; no branch:
            # whether t rounded up is random, and a mispredicted branch costs more than the row
            ti[i] -= (thr[i] > t) | ((thr[i] == t) & tie_up[i])


@numba.njit(inline="always")
def count_row(xi, r, t, s, mask, sbit, out, o):
    """out[o, c] = the number of thresholds ``t[s, :7]`` that bits(|x[r, c]|) exceeds, with
    x's sign: a branch-free integer loop that compiles to SIMD.  Whole arrays and indices,
    not rows: a row view made in a loop costs more than the row (numba's reference counts)."""
    t0, t1, t2, t3, t4, t5, t6 = t[s, 0], t[s, 1], t[s, 2], t[s, 3], t[s, 4], t[s, 5], t[s, 6]
    for c in range(xi.shape[1]):
        v = xi[r, c]
        a = v & mask
        k = ((np.int32(a > t0) + np.int32(a > t1)) + (np.int32(a > t2) + np.int32(a > t3))
             + (np.int32(a > t4) + np.int32(a > t5)) + np.int32(a > t6))
        out[o, c] = np.uint8(k | (sbit if v < 0 else 0))


@numba.njit(inline="always")
def fast_row(xirow, d, cmp, sbit, out, thr, ti):
    """Element codes of one block under divisor d (d == 0: signed zeros), where ``cmp[5]``.

    The code is the number of midpoints ``m_k d`` that ``|x|`` exceeds (or reaches,
    where the tie rounds up), compared on the bits of ``|x|`` (``xirow``: non-negative
    floats order as integers) against thresholds rounded into x's type
    (:func:`thresholds`, then :func:`count_row`).  ``thr``/``ti`` (8 entries at least) are
    the scratch of :func:`thresholds`.  Kernels test ``fast = cmp[5]`` themselves, read
    before their loop, and call :func:`quantize_row_general` otherwise (the test inside
    an inlined helper, or around this loop, stops the SIMD).

    Hot loops call :func:`thresholds` and :func:`count_row` themselves, on whole arrays:
    numba reference-counts the arrays an inlined function passes to another inlined
    function, and the row views a loop makes, at every call (measured: 10x the cost of the
    row).
    """
    thresholds(d, cmp, thr, ti)
    count_row(xirow.reshape((1, xirow.size)), 0, ti.reshape((1, ti.size)), 0, cmp[6], sbit,
              out.reshape((1, out.size)), 0)


def threshold_table(dvals, cmp, x):
    """:func:`thresholds` of every divisor in ``dvals`` (rows of 8, x's integer type): the
    comparator of every scale code at once where the per-block factor g is one value.
    ``cmp``: :func:`with_mask`'s, with the fast path.  The same operations in numpy (no
    kernel to compile): ``m_k d`` in float64, rounded to x's type, stepped down a bit
    where it rounded up or is a tie that rounds up."""
    mids, tie_up, mask = cmp[1], cmp[2], cmp[6]
    tab = np.full((dvals.size, 8), mask)
    with np.errstate(over="ignore", invalid="ignore"):  # inf, as the kernels' cast gives
        t = dvals[:, None] * mids  # exact in float64
        thr = t.astype(x.dtype)
    step = (thr > t) | ((thr == t) & tie_up)
    ok = np.isfinite(dvals) & (dvals != 0)  # zero (and NaN-code) scales: signed zeros
    tab[ok, :mids.size] = thr.view(tab.dtype)[ok] - step[ok]
    return tab


def one_value(g):
    """The per-block factor g as one float where every block has the same (no per-tensor
    scale, or one), else None."""
    return float(g[0]) if g.size and g[0] == g[-1] and (g == g[0]).all() else None


@numba.njit(nogil=True)
def quantize_row_general(xrow, xirow, d, cmp, grid, zcode, out, thr, ti):
    """Element codes of one block under divisor d off :func:`fast_row`'s path: a zero divisor,
    a comparator of more than 7 midpoints or with codes out of magnitude order (midpoints
    counted, codes looked up), and grids without the comparator (:func:`round_one` per element).
    """
    (vals, codes, vlo, vhi, plo, negz, nanc, infc, sbit, underc, mode, ovf) = grid
    n = xrow.size
    if d == 0.0:
        for c in range(n):
            out[c] = zcode | (sbit if xirow[c] < 0 and negz >= 0 else 0)
    elif cmp[0]:
        mids, mags, mask = cmp[1], cmp[3], cmp[6]
        for i in range(ti.size):
            ti[i] = mask
        for i in range(mids.size):  # thresholds(), for any number of midpoints
            t = mids[i] * d
            thr[i] = t
            ti[i] -= (thr[i] > t) | ((thr[i] == t) & cmp[2][i])
        for c in range(n):
            out[c] = 0
        for i in range(mids.size):
            t = ti[i]
            for c in range(n):
                out[c] += (xirow[c] & mask) > t
        for c in range(n):
            out[c] = mags[out[c]] | (sbit if xirow[c] < 0 else 0)
    else:
        for c in range(n):
            out[c] = round_one(np.float64(xrow[c]), d, vals, codes, vlo, vhi, plo, negz, nanc,
                               infc, sbit, underc, mode, ovf, 0.0)


@numba.njit(inline="always")
def _no_general(xrow, xirow, d, cmp, grid, zcode, out, thr, ti):
    """quantize_row_general's stand-in in the fast kernels, which never call it: compiled
    in, the general row quantizer costs every first call a second of compilation."""


@numba.njit(inline="always")
def row_scratch(xb, xi, cmp):
    """(cmp[5], thr, ti): a kernel's fast-path flag and the threshold scratch of
    :func:`fast_row` / :func:`quantize_row_general` (x's float type and its bits)."""
    thr = np.empty(max(8, cmp[1].size), xb.dtype)
    return cmp[5], thr, thr.view(xi.dtype)


# Each kernel comes in two: with fast_row compiled in (cmp[5]) or quantize_row_general.  The
# wrapper picks one, so only the one a grid needs is compiled, and no test between the two
# sits inside a loop (it stops the SIMD).  Module-level functions: numba's cache finds them.
@numba.njit(cache=True, nogil=True)
def _quantize_rows_fast(lo, hi, xb, xi, d, cmp, grid, zcode, out):
    thr = np.empty(8, xb.dtype)
    ti = thr.view(xi.dtype)
    t = ti.reshape((1, 8))
    for r in range(lo, hi):
        thresholds(d[r], cmp, thr, ti)  # fast_row, its calls in this loop (see fast_row)
        count_row(xi, r, t, 0, cmp[6], grid[8], out, r)


@numba.njit(cache=True, nogil=True)
def _quantize_rows_general(lo, hi, xb, xi, d, cmp, grid, zcode, out):
    thr = np.empty(max(8, cmp[1].size), xb.dtype)
    ti = thr.view(xi.dtype)
    for r in range(lo, hi):
        quantize_row_general(xb[r], xi[r], d[r], cmp, grid, zcode, out[r], thr, ti)


def quantize_rows(xb, d, cmp, grid, zcode, out):
    """Element codes of every block (row) under its divisor."""
    cmp = with_mask(cmp, xb, grid, zcode)
    run_rows(_quantize_rows_fast if cmp[5] else _quantize_rows_general, xb.shape[0], xb, bits(xb),
             d, cmp, grid, zcode, out)


def with_mask(cmp, x, grid, zcode):
    """The comparator arguments (:func:`rounding.comparator_args`) for the kernels on x:
    ``cmp[5]`` says whether :func:`fast_row`'s integer fast path applies (at most 7
    midpoints, codes that count them, zero code 0 with a signed zero), ``cmp[6]`` is the
    magnitude mask of x's bit width."""
    use, mids, tie_up, mags, sbit, ident = cmp
    fast = bool(use and ident and mids.size <= 7 and zcode == 0 and grid[5] >= 0)
    ints = bits(x).dtype
    return use, mids, tie_up, mags, sbit, fast, ints.type(np.iinfo(ints).max)


@numba.njit(cache=True, nogil=True)
def _scale_rows(lo, hi, amax, gm, stable, sgrid, sguess, pz_code, scodes):
    (svals, codes, svlo, svhi, splo, snegz, snanc, sinfc, ssbit, sunderc, smode, sovf) = sgrid
    buf = np.empty(1)
    ibuf = buf.view(np.int64)
    for r in range(lo, hi):
        # round_quotient, else round_one called here: see round_quotient
        sc = round_quotient(amax[r], gm[r], sguess[0], sguess[1], buf, ibuf, svals, codes, smode)
        if sc < 0:
            sc = round_one(amax[r], gm[r], svals, codes, svlo, svhi, splo, snegz, snanc, sinfc,
                           ssbit, sunderc, smode, sovf, 0.0)
        scodes[r] = pz_code if pz_code >= 0 and stable[sc] == 0.0 else sc


def scale_codes(amax, gm, stable, sgrid, sguess, pz_code):
    """RoundSF(amax / gm) of every block (uint8 codes), raised to pz_code where the scale
    is zero (pz_code >= 0); ``sgrid`` is the scale grid's :meth:`Grid.args`, ``sguess``
    its :attr:`Grid.binades`."""
    out = np.empty(amax.size, np.uint8)
    run_rows(_scale_rows, amax.size, amax, np.ascontiguousarray(gm, np.float64), stable, sgrid,
             sguess, pz_code, out)
    return out


def _abs_max_rows(fast):
    """:func:`abs_max`'s rows with :func:`fast_row` (``fast``) or :func:`quantize_row_general`
    compiled in; with ``fast`` and a table (:func:`threshold_table`) of the scale codes, the
    comparator's thresholds are looked up, not computed."""
    general = _no_general if fast else quantize_row_general

    @numba.njit(inline="always")
    def rows(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, buckets, cmp, grid,
             zcode, tab, out, scodes):
        (svals, codes, svlo, svhi, splo, snegz, snanc, sinfc, ssbit, sunderc, smode, sovf) = sgrid
        thr = np.empty(max(8, cmp[1].size), xb.dtype)
        ti = thr.view(xi.dtype)
        ti2 = ti.reshape((1, ti.size))
        buf = np.empty(1)
        ibuf = buf.view(np.int64)
        fbuf = np.empty(1, np.float32)
        fibuf = fbuf.view(np.int32)
        table = tab.shape[0] > 0
        lo_code, hi_code, above = buckets
        use_buckets = above.size > 0
        for r in range(lo, hi):
            if use_buckets:  # by the bits of amax (a float32): see scale_buckets
                fbuf[0] = amax[r]
                b = fibuf[0]
                sc = hi_code[b >> 18] if b > above[b >> 18] else lo_code[b >> 18]
            else:
                gm = g[r] * m
                # round_quotient, else round_one called here (see round_quotient)
                sc = round_quotient(amax[r], gm, sguess[0], sguess[1], buf, ibuf, svals, codes,
                                    smode)
                if sc < 0:
                    sc = round_one(amax[r], gm, svals, codes, svlo, svhi, splo, snegz, snanc,
                                   sinfc, ssbit, sunderc, smode, sovf, 0.0)
                if pz_code >= 0 and stable[sc] == 0.0:
                    sc = pz_code
            scodes[r] = sc
            if not fast:
                general(xb[r], xi[r], g[r] * stable[sc], cmp, grid, zcode, out[r],
                                     thr, ti)
            else:  # one call site of count_row (two, in the branches, cost 2x: measured)
                if table:
                    t, s = tab, sc
                else:
                    thresholds(g[r] * stable[sc], cmp, thr, ti)
                    t, s = ti2, 0
                count_row(xi, r, t, s, cmp[6], grid[8], out, r)
    return rows


_am_fast = _abs_max_rows(True)
_am_general = _abs_max_rows(False)


@numba.njit(cache=True, nogil=True)
def _abs_max_fast(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, buckets, cmp,
                  grid, zcode, tab, out, scodes):
    _am_fast(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, buckets, cmp, grid,
             zcode, tab, out, scodes)


@numba.njit(cache=True, nogil=True)
def _abs_max_general(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, buckets, cmp,
                     grid, zcode, tab, out, scodes):
    _am_general(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, buckets, cmp, grid,
                zcode, tab, out, scodes)


def _table(g0, stable, cmp, xb):
    """The scale codes' threshold table where g is one value ``g0`` and the fast path
    applies; else an empty one (thresholds computed a block)."""
    if cmp[5] and g0 is not None:
        return threshold_table(g0 * stable, cmp, xb)
    return np.empty((0, 8), bits(xb).dtype)


#: blocks from which abs-max and 4-over-6 round their scales by :func:`scale_buckets`
#: (building a table, 0.5 ms, saves about 4 ns a block: measured)
BUCKETS_FROM = 1 << 17


def scale_buckets(gm, stable, sgrid, sguess, pz_code):
    """RoundSF(a / gm) (pz_code applied) of every float32 ``a >= 0`` as a table over the
    8160 buckets of 2**18 consecutive bit patterns below infinity: (lo, hi, above), the
    code of bits b is ``hi[b >> 18] if b > above[b >> 18] else lo[b >> 18]``.

    Rounding is monotone in a, and a bucket (a 32nd of a binade) holds at most one
    rounding boundary where the scale grid has at most 16 values a binade: the codes at
    every bucket's ends, and the boundary found by bisection, come from
    :func:`scale_codes` itself (exact).  Empty arrays where some bucket spans more than one
    step of the grid.
    """
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))

    def codes(b):
        a = b.astype(np.int32).view(np.float32).astype(np.float64)
        return scale_codes(a, np.full(a.size, gm), stable, sgrid, sguess, -1).astype(np.int64)

    start = np.arange(0x7F800000 >> 18, dtype=np.int64) << 18
    lo, hi = codes(start), codes(start + (1 << 18) - 1)
    rank = np.searchsorted(sgrid[0], stable)  # a code's position in the grid
    if np.any(rank[hi] - rank[lo] > 1):
        return empty
    above = start + (1 << 18) - 1  # the last bits of lo's code
    moves = np.flatnonzero(hi != lo)
    a, b = start[moves], above[moves]  # code(a) = lo, code(b) = hi
    for _ in range(18):
        mid = (a + b) >> 1
        up = codes(mid) == hi[moves]
        a, b = np.where(up, a, mid), np.where(up, mid, b)
    above[moves] = a
    if pz_code >= 0:
        lo = np.where(stable[lo] == 0.0, pz_code, lo)
        hi = np.where(stable[hi] == 0.0, pz_code, hi)
    return lo, hi, above.astype(np.int32)


def _buckets(xb, g0, ms, stable, sgrid, sguess, pz_code):
    """:func:`scale_buckets` of divisors g0 * m, m in ``ms`` (rows), where they apply: one g,
    float32 blocks, at least :data:`BUCKETS_FROM` of them; else empty rows."""
    tabs = []
    if g0 is not None and xb.dtype == np.float32 and xb.shape[0] >= BUCKETS_FROM:
        tabs = [scale_buckets(g0 * m, stable, sgrid, sguess, pz_code) for m in ms]
    if not tabs or any(t[2].size == 0 for t in tabs):
        tabs = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))] * len(ms)
    return tuple(np.stack([t[i] for t in tabs]) for i in range(3))


def abs_max(xb, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid, zcode, out, scodes):
    """Abs-max: scale code RoundSF(amax / (g m)) (raised to pz_code if zero and pz_code >= 0),
    then the block's element codes under divisor g * S, in one pass over the blocks."""
    cmp = with_mask(cmp, xb, grid, zcode)
    g0 = one_value(g)
    buckets = tuple(t[0] for t in _buckets(xb, g0, (m,), stable, sgrid, sguess, pz_code))
    run_rows(_abs_max_fast if cmp[5] else _abs_max_general, xb.shape[0], xb, bits(xb), amax,
             float(m), g, stable, sgrid, sguess, pz_code, buckets, cmp, grid, zcode,
             _table(g0, stable, cmp, xb), out, scodes)


def _four_over_six_rows(fast):
    """:func:`four_over_six`'s rows with :func:`fast_row`'s comparator (``fast``) or
    :func:`quantize_row_general` compiled in.  Each inlined helper has one call site in the
    loop (see :func:`fast_row`); ``tab`` / ``vt`` (empty where g is not one value): the
    comparator thresholds and the element values of every scale code."""
    general = _no_general if fast else quantize_row_general

    @numba.njit(inline="always")
    def rows(lo, hi, xb, xi, amax, g, m6, m4, from6, stable, sgrid, sguess, pz_code, buckets,
             table, vt, tab, cmp, grid, zcode, metric, fixed, frac_bits, out, take4, scodes):
        (svals, codes, svlo, svhi, splo, snegz, snanc, sinfc, ssbit, sunderc, smode, sovf) = sgrid
        n = xb.shape[1]
        thr = np.empty(max(8, cmp[1].size), xb.dtype)
        ti = thr.view(xi.dtype)
        buf = np.empty(1)
        ibuf = buf.view(np.int64)
        cc = np.empty((2, n), np.uint8)  # the candidates' element codes
        sc = np.empty(2, np.int64)  # their scale codes
        tv = np.empty((2, table.size), np.float64)  # their error terms' element values
        ti2 = ti.reshape((1, ti.size))
        use_tab = tab.shape[0] > 0
        use_vt = vt.shape[0] > 0
        blo, bhi, babove = buckets
        use_buckets = babove.shape[1] > 0
        fbuf = np.empty(1, np.float32)
        fibuf = fbuf.view(np.int32)
        for r in range(lo, hi):
            a6 = amax[r]
            gr = g[r]
            for j in range(2):  # S6, then S4 = RoundSF(amax / (g m4)) or RoundSF(1.5 S6)
                if use_buckets and not (j and from6):  # see scale_buckets
                    fbuf[0] = a6
                    b = fibuf[0]
                    k = b >> 18
                    s = (bhi[j, k] if b > babove[j, k] else blo[j, k])
                else:
                    a = 1.5 * stable[sc[0]] if j and from6 else a6
                    gm = (1.0 if from6 else gr * m4) if j else gr * m6
                    s = round_quotient(a, gm, sguess[0], sguess[1], buf, ibuf, svals, codes,
                                       smode)
                    if s < 0:  # round_one called here (see round_quotient)
                        s = round_one(a, gm, svals, codes, svlo, svhi, splo, snegz, snanc, sinfc,
                                      ssbit, sunderc, smode, sovf, 0.0)
                    if pz_code >= 0 and stable[s] == 0.0:
                        s = pz_code
                sc[j] = s
            ncand = 1 if sc[1] == sc[0] else 2  # one candidate: a tie, keep 6
            for j in range(ncand):
                d = gr * stable[sc[j]]
                if not fast:
                    general(xb[r], xi[r], d, cmp, grid, zcode, cc[j], thr, ti)
                else:
                    if use_tab:
                        t, ts = tab, sc[j]
                    else:
                        thresholds(d, cmp, thr, ti)
                        t, ts = ti2, 0
                    count_row(xi, r, t, ts, cmp[6], grid[8], cc, j)
            take = 0
            if ncand == 2 and not (fixed and a6 == 0.0):  # both exact at amax 0: a tie
                # fixed: X_i = floor(|x_i| 2**(F - Eb)), T[k] = floor(|value_k d| 2**(F - Eb))
                unit = math.ldexp(1.0, frac_bits - math.frexp(a6)[1] + 1) if fixed else 1.0
                for j in range(2):
                    d = gr * stable[sc[j]]
                    for k in range(table.size):
                        v = vt[sc[j], k] if use_vt else table[k] * d
                        tv[j, k] = math.floor(abs(v) * unit) if fixed else v
                e6 = 0.0
                e4 = 0.0
                for c in range(n):
                    xc = np.float64(xb[r, c])
                    if fixed:
                        xc = math.floor(abs(xc) * unit)
                    e6 = _term(xc - tv[0, cc[0, c]], metric, e6)
                    e4 = _term(xc - tv[1, cc[1, c]], metric, e4)
                take = 1 if e4 < e6 else 0
            take4[r] = take == 1
            scodes[r] = sc[take]
            for c in range(n):  # a loop: slice assignment compiles numba's shape-error strings
                out[r, c] = cc[take, c]
    return rows


_4o6_fast = _four_over_six_rows(True)
_4o6_general = _four_over_six_rows(False)


@numba.njit(cache=True, nogil=True)
def _four_over_six_fast(lo, hi, xb, xi, amax, g, m6, m4, from6, stable, sgrid, sguess, pz_code,
                        buckets, table, vt, tab, cmp, grid, zcode, metric, fixed, frac_bits, out,
                        take4, scodes):
    _4o6_fast(lo, hi, xb, xi, amax, g, m6, m4, from6, stable, sgrid, sguess, pz_code, buckets,
              table, vt, tab, cmp, grid, zcode, metric, fixed, frac_bits, out, take4, scodes)


@numba.njit(cache=True, nogil=True)
def _four_over_six_general(lo, hi, xb, xi, amax, g, m6, m4, from6, stable, sgrid, sguess,
                           pz_code, buckets, table, vt, tab, cmp, grid, zcode, metric, fixed,
                           frac_bits, out, take4, scodes):
    _4o6_general(lo, hi, xb, xi, amax, g, m6, m4, from6, stable, sgrid, sguess, pz_code, buckets,
                 table, vt, tab, cmp, grid, zcode, metric, fixed, frac_bits, out, take4, scodes)


def four_over_six(xb, amax, g, m6, m4, from6, stable, sgrid, sguess, pz_code, table, cmp, grid,
                  zcode, metric, fixed, frac_bits, out, take4, scodes):
    """Quantize each block under both candidates, keep 4 where its error is strictly lower.

    Candidates: S6 = RoundSF(amax / (g m6)) and S4 = RoundSF(amax / (g m4)), or with
    ``from6`` S4 = RoundSF(1.5 S6); each raised to ``pz_code`` if zero (pz_code >= 0).
    Equal candidates are a tie (6 kept) without evaluating the errors.

    The error terms are ``X_i - T[code_i]``: with ``fixed``, X_i = floor(|x_i| 2**(F-Eb))
    and T[k] = floor(|value_k d| 2**(F-Eb)) (integers, exact in float64 for F <= 20);
    otherwise X_i = x_i and T[k] = value_k d.
    """
    cmp = with_mask(cmp, xb, grid, zcode)
    g0 = one_value(g)
    with np.errstate(invalid="ignore", over="ignore"):  # value_k (g S), exact (see rounding)
        vt = table * (g0 * stable)[:, None] if g0 is not None else np.empty((0, table.size))
    run_rows(_four_over_six_fast if cmp[5] else _four_over_six_general, xb.shape[0], xb,
             bits(xb), amax, g, float(m6), float(m4), bool(from6), stable, sgrid, sguess,
             pz_code, _buckets(xb, g0, (m6, m4), stable, sgrid, sguess, pz_code), table, vt,
             _table(g0, stable, cmp, xb), cmp, grid, zcode, metric, fixed, frac_bits, out,
             take4, scodes)


@numba.njit(inline="always")
def _scale_code(a, gm, stable, sgrid, pz_code):
    """RoundSF(a / gm), raised to pz_code where it is zero (pz_code >= 0)."""
    (svals, scodes, svlo, svhi, splo, snegz, snanc, sinfc, ssbit, sunderc, smode, sovf) = sgrid
    sc = round_one(a, gm, svals, scodes, svlo, svhi, splo, snegz, snanc, sinfc, ssbit, sunderc,
                   smode, sovf, 0.0)
    return pz_code if pz_code >= 0 and stable[sc] == 0.0 else sc


@numba.njit(cache=True, nogil=True)
def _dequantize(lo, hi, codes, table, d, out):
    for r in range(lo, hi):
        for c in range(codes.shape[1]):
            out[r, c] = table[codes[r, c]] * d[r]


def dequantize(codes, table, d, out):
    """out[r, c] = table[codes[r, c]] * d[r], rounded once to out's dtype."""
    run_rows(_dequantize, codes.shape[0], codes, table, d, out)


@numba.njit(cache=True, nogil=True)
def _dequantize_by_scale(lo, hi, codes, sc, values, out):
    for r in range(lo, hi):
        s = sc[r]
        for c in range(codes.shape[1]):
            out[r, c] = values[s, codes[r, c]]


def dequantize_by_scale(codes, sc, values, out):
    """out[r, c] = values[sc[r], codes[r, c]]: :func:`dequantize` where g is one value, from
    the table of every scale code's element values (already rounded to out's dtype)."""
    run_rows(_dequantize_by_scale, codes.shape[0], codes, sc, values, out)


#: a sum of n <= 2**10 non-negative float64 terms, in any order, is within (n - 1) 2**-53 of
#: its share of the exact sum: above ``best * _ABOVE`` in one order, above best in every order
_ABOVE = 1.0 + 2.0 ** -40


@numba.njit(inline="always")
def _sum_any_order(terms, j, metric):
    """The sum (max for max-abs) of row j of ``terms`` in four interleaved partial sums: no
    chain of dependent additions (the element-order sum is one, four times longer)."""
    n = terms.shape[1]
    p0 = p1 = p2 = p3 = 0.0
    c = 0
    while c + 4 <= n:
        if metric == MAXABS:
            p0, p1 = max(p0, terms[j, c]), max(p1, terms[j, c + 1])
            p2, p3 = max(p2, terms[j, c + 2]), max(p3, terms[j, c + 3])
        else:
            p0, p1 = p0 + terms[j, c], p1 + terms[j, c + 1]
            p2, p3 = p2 + terms[j, c + 2], p3 + terms[j, c + 3]
        c += 4
    while c < n:
        p0 = max(p0, terms[j, c]) if metric == MAXABS else p0 + terms[j, c]
        c += 1
    if metric == MAXABS:
        return max(max(p0, p1), max(p2, p3))
    return (p0 + p1) + (p2 + p3)


@numba.njit(inline="always")
def _term(e, metric, acc):
    if metric == MSE:
        return acc + e * e
    if metric == MAE:
        return acc + abs(e)
    return max(acc, abs(e))


def brute_force(xb, amax, g, svals, start, mmax, zero_at, table, cmp, grid, zcode, metric,
                prune, best_out, err_out, out):
    """Index into ``svals`` (ascending scale values) of the minimum-error scale of each block,
    its error and the block's element codes under it (``out``).

    Ties go to the smallest scale.  With ``prune`` the search starts from the
    hint ``start[r]`` (the abs-max candidate) and skips candidates that provably
    cannot win; without it every candidate is evaluated in full.  Both evaluate
    a candidate's error with the same element-order sum, so they agree exactly
    (tests/test_quantize.py checks it):

    * below ``amax / mmax`` the block maximum clips, so ``(amax - mmax*s*g)``
      bounds the error from below (squared for mse), and the bound falls as s
      grows: the scan starts at the first scale whose bound does not exceed the
      best error found;
    * once ``amax < s * g * zero_at`` every element rounds to zero, as for all
      larger scales: that candidate is the last one evaluated;
    * a candidate whose block maximum alone, at the nearest element value, errs
      more than the best error is skipped (that term is part of its sum);
    * a candidate whose running error exceeds the best one is abandoned.

    ``start`` may be any index into ``svals``: it changes the work, not the result.

    ``cmp`` and ``grid`` are the element rounding (see :func:`fast_row`).
    """
    finite = table[np.isfinite(table)]
    cmp = with_mask(cmp, xb, grid, zcode)
    g0 = one_value(g)
    run_rows(_brute_force_fast if cmp[5] else _brute_force_general, xb.shape[0], xb, bits(xb),
             amax, g, svals, start, mmax, zero_at, table, np.unique(finite[finite >= 0]), cmp,
             grid, zcode, metric, prune, _table(g0, svals, cmp, xb), best_out, err_out, out)


def _searcher(fast):
    """:func:`brute_force`'s rows with :func:`fast_row`'s comparator (``fast``) or
    :func:`quantize_row_general` compiled in (one variant each: a test between the two
    inside the search stops the SIMD).  Each inlined helper has one call site in the loop
    (see :func:`fast_row`); ``tab``: the comparator thresholds of every scale (empty where
    g is not one value)."""

    general = _no_general if fast else quantize_row_general

    @numba.njit(inline="always")
    def rows(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp, grid, zcode,
             metric, prune, tab, best_out, err_out, out):
        n = xb.shape[1]
        ns = svals.size
        thr = np.empty(max(8, cmp[1].size), xb.dtype)
        ti = thr.view(xi.dtype)
        ti2 = ti.reshape((1, ti.size))
        crow = np.empty((1, n), np.uint8)
        terms = np.empty((1, n))
        use_tab = tab.shape[0] > 0
        for r in range(lo, hi):
            am = amax[r]
            gr = g[r]
            k0 = start[r]
            best = np.inf
            besti = ns
            lowest = 0
            # with prune: the hint k0 first (in full), then outward from it, alternately up
            # and down: up to the first scale that zeroes the block, down to the first whose
            # clipping bound does not exceed k0's error; without: every scale, ascending
            k = k0 if prune else 0
            ku = kd = k  # the last scale taken above / below
            up = True
            down = prune
            first = True
            while True:
                s = svals[k] * gr
                run = True
                if prune and k > k0:
                    # the elements below s * zero_at round to zero: their terms bound the
                    # error from below, a bound that grows with s: past best, no larger
                    # scale can win (a share 2**-40 above it: any order of the sum)
                    lim = s * zero_at
                    for c in range(n):
                        ax = abs(np.float64(xb[r, c]))
                        terms[0, c] = _term(ax, metric, 0.0) if ax < lim else 0.0
                    if _sum_any_order(terms, 0, metric) > best * _ABOVE:
                        up = False
                        run = False
                if run and prune and not first:
                    # the block maximum's own term, at its nearest value, bounds the error
                    lb = np.inf
                    for v in mags:
                        lb = min(lb, abs(am - v * s))
                    if metric == MSE:
                        lb = lb * lb
                    run = lb <= best
                if run:
                    if not fast:
                        general(xb[r], xi[r], s, cmp, grid, zcode, crow[0], thr, ti)
                    else:
                        if use_tab:
                            t, ts = tab, k
                        else:
                            thresholds(s, cmp, thr, ti)
                            t, ts = ti2, 0
                        count_row(xi, r, t, ts, cmp[6], grid[8], crow, 0)
                    for c in range(n):  # the error terms, then their sum in any order
                        terms[0, c] = _term(np.float64(xb[r, c]) - table[crow[0, c]] * s,
                                            metric, 0.0)
                    e = _sum_any_order(terms, 0, metric)
                    # any two orders of the sum differ by far less than a 2**-40 share of
                    # it (max-abs: not at all); within that, the element-order sum decides
                    if not (e > best * _ABOVE and metric != MAXABS):
                        e = 0.0
                        for c in range(n):
                            e = _term(terms[0, c], MAXABS if metric == MAXABS else MAE, e)
                    if e < best or (e == best and k < besti):
                        best = e
                        besti = k
                        for c in range(n):
                            out[r, c] = crow[0, c]
                if k == ku and (ku + 1 == ns or (prune and am < s * zero_at)):
                    up = False  # every larger scale zeroes the block too: a tie, lost
                if first and prune:  # the lowest scale whose clipping bound <= k0's error
                    lo_, hi_ = 0, ns
                    while lo_ < hi_:
                        mid = (lo_ + hi_) >> 1
                        t_ = am - mmax * svals[mid] * gr
                        if t_ > 0 and (t_ * t_ if metric == MSE else t_) > best:
                            lo_ = mid + 1
                        else:
                            hi_ = mid
                    lowest = lo_
                first = False
                down = down and kd > lowest
                if up and (not down or k == kd):  # alternate: up after a step down
                    ku += 1
                    k = ku
                elif down:
                    kd -= 1
                    k = kd
                else:
                    break
            best_out[r] = besti
            err_out[r] = best

    return rows


_search_fast = _searcher(True)
_search_general = _searcher(False)


# two kernels, not one testing cmp[5]: only the one a grid needs is compiled (module-level
# functions, so that numba's cache finds them again)
@numba.njit(cache=True, nogil=True)
def _brute_force_fast(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp,
                      grid, zcode, metric, prune, tab, best_out, err_out, out):
    _search_fast(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp, grid,
                 zcode, metric, prune, tab, best_out, err_out, out)


@numba.njit(cache=True, nogil=True)
def _brute_force_general(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp,
                         grid, zcode, metric, prune, tab, best_out, err_out, out):
    _search_general(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp, grid,
                    zcode, metric, prune, tab, best_out, err_out, out)

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
def _block_amax(lo, hi, xi, mask, out):
    for r in range(lo, hi):
        m = xi[r, 0] & mask
        for c in range(1, xi.shape[1]):
            m = max(m, xi[r, c] & mask)
        out[r] = m


def block_amax(xb):
    """max |x| of every row (float64); NaN for a row holding NaN or Inf.

    The maximum is taken over the bits of ``|x|`` (non-negative floats order as
    integers, NaN and Inf above every finite value): an integer SIMD reduction.
    """
    xi = bits(xb)
    mask = np.iinfo(xi.dtype).max
    out = np.empty(xb.shape[0], xi.dtype)
    run_rows(_block_amax, xb.shape[0], xi, xi.dtype.type(mask), out)
    amax = out.view(xb.dtype).astype(np.float64)
    amax[out >= np.array(np.inf, xb.dtype).view(xi.dtype)] = np.nan
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
def count_row(xirow, t, mask, sbit, out):
    """out[c] = the number of thresholds ``t[:7]`` that bits(|x[c]|) exceeds, with x's sign:
    a branch-free integer loop that compiles to SIMD."""
    t0, t1, t2, t3, t4, t5, t6 = t[0], t[1], t[2], t[3], t[4], t[5], t[6]
    for c in range(xirow.size):
        v = xirow[c]
        a = v & mask
        k = ((np.int32(a > t0) + np.int32(a > t1)) + (np.int32(a > t2) + np.int32(a > t3))
             + (np.int32(a > t4) + np.int32(a > t5)) + np.int32(a > t6))
        out[c] = np.uint8(k | (sbit if v < 0 else 0))


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

    Hot loops call :func:`thresholds` and :func:`count_row` themselves: numba
    reference-counts the arrays an inlined function passes to another inlined function,
    at every call (measured: 10x the cost of the row).
    """
    thresholds(d, cmp, thr, ti)
    count_row(xirow, ti, cmp[6], sbit, out)


@numba.njit(cache=True, nogil=True)
def _threshold_table(dvals, cmp, thr, tab):
    ti = thr.view(tab.dtype)
    for s in range(dvals.size):
        thresholds(dvals[s], cmp, thr, ti)
        for i in range(8):
            tab[s, i] = ti[i]


def threshold_table(dvals, cmp, x):
    """:func:`thresholds` of every divisor in ``dvals`` (rows of 8, x's integer type): the
    comparator of every scale code at once where the per-block factor g is one value.
    ``cmp``: :func:`with_mask`'s, with the fast path."""
    tab = np.empty((dvals.size, 8), bits(x).dtype)
    dvals = np.where(np.isfinite(dvals), dvals, 0.0)  # NaN codes: never a block's scale
    _threshold_table(dvals, cmp, np.empty(8, x.dtype), tab)
    return tab


def uniform(g) -> bool:
    """Is the per-block factor g one value (no per-tensor scale, or one)?"""
    return g.size == 0 or bool(g[0] == g[-1] and (g == g[0]).all())


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
def row_scratch(xb, xi, cmp):
    """(cmp[5], thr, ti): a kernel's fast-path flag and the threshold scratch of
    :func:`fast_row` / :func:`quantize_row_general` (x's float type and its bits)."""
    thr = np.empty(max(8, cmp[1].size), xb.dtype)
    return cmp[5], thr, thr.view(xi.dtype)


@numba.njit(inline="always")
def _fast_quantize(xrow, xirow, d, cmp, grid, zcode, out, thr, ti):
    """:func:`fast_row` with :func:`quantize_row_general`'s arguments."""
    fast_row(xirow, d, cmp, grid[8], out, thr, ti)


# Each kernel comes in two: with fast_row compiled in (cmp[5]) or quantize_row_general.  The
# wrapper picks one, so only the one a grid needs is compiled, and no test between the two
# sits inside a loop (it stops the SIMD).  Module-level functions: numba's cache finds them.
@numba.njit(cache=True, nogil=True)
def _quantize_rows_fast(lo, hi, xb, xi, d, cmp, grid, zcode, out):
    thr = np.empty(8, xb.dtype)
    ti = thr.view(xi.dtype)
    for r in range(lo, hi):
        thresholds(d[r], cmp, thr, ti)  # fast_row, its calls in this loop (see fast_row)
        count_row(xi[r], ti, cmp[6], grid[8], out[r])


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
    @numba.njit(inline="always")
    def rows(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid, zcode, tab,
             out, scodes):
        (svals, codes, svlo, svhi, splo, snegz, snanc, sinfc, ssbit, sunderc, smode, sovf) = sgrid
        thr = np.empty(max(8, cmp[1].size), xb.dtype)
        ti = thr.view(xi.dtype)
        buf = np.empty(1)
        ibuf = buf.view(np.int64)
        table = tab.shape[0] > 0
        for r in range(lo, hi):
            gm = g[r] * m
            # round_quotient, else round_one called here (see round_quotient)
            sc = round_quotient(amax[r], gm, sguess[0], sguess[1], buf, ibuf, svals, codes, smode)
            if sc < 0:
                sc = round_one(amax[r], gm, svals, codes, svlo, svhi, splo, snegz, snanc, sinfc,
                               ssbit, sunderc, smode, sovf, 0.0)
            if pz_code >= 0 and stable[sc] == 0.0:
                sc = pz_code
            scodes[r] = sc
            if not fast:
                quantize_row_general(xb[r], xi[r], g[r] * stable[sc], cmp, grid, zcode, out[r],
                                     thr, ti)
            else:  # one call site of count_row (two, in the branches, cost 2x: measured)
                if table:
                    t = tab[sc]
                else:
                    thresholds(g[r] * stable[sc], cmp, thr, ti)
                    t = ti
                count_row(xi[r], t, cmp[6], grid[8], out[r])
    return rows


_am_fast = _abs_max_rows(True)
_am_general = _abs_max_rows(False)


@numba.njit(cache=True, nogil=True)
def _abs_max_fast(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid, zcode,
                  tab, out, scodes):
    _am_fast(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid, zcode, tab,
             out, scodes)


@numba.njit(cache=True, nogil=True)
def _abs_max_general(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid,
                     zcode, tab, out, scodes):
    _am_general(lo, hi, xb, xi, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid, zcode,
                tab, out, scodes)


def _table(g, stable, cmp, xb):
    """The scale codes' threshold table where g is one value and the fast path applies; else
    an empty one (thresholds computed a block)."""
    if cmp[5] and g.size and uniform(g):
        return threshold_table(g[0] * stable, cmp, xb)
    return np.empty((0, 8), bits(xb).dtype)


def abs_max(xb, amax, m, g, stable, sgrid, sguess, pz_code, cmp, grid, zcode, out, scodes):
    """Abs-max: scale code RoundSF(amax / (g m)) (raised to pz_code if zero and pz_code >= 0),
    then the block's element codes under divisor g * S, in one pass over the blocks."""
    cmp = with_mask(cmp, xb, grid, zcode)
    run_rows(_abs_max_fast if cmp[5] else _abs_max_general, xb.shape[0], xb, bits(xb), amax,
             float(m), g, stable, sgrid, sguess, pz_code, cmp, grid, zcode,
             _table(g, stable, cmp, xb), out, scodes)


def _four_over_six_rows(quantize):
    """:func:`four_over_six`'s rows with the row quantizer ``quantize`` compiled in."""
    @numba.njit(inline="always")
    def rows(lo, hi, xb, xi, amax, g, s6s, s4s, stable, table, cmp, grid, zcode, metric,
             fixed, frac_bits, out, take4, scodes):
        n = xb.shape[1]
        thr = np.empty(max(8, cmp[1].size), xb.dtype)
        ti = thr.view(xi.dtype)
        c4 = np.empty(n, np.uint8)
        xs = np.empty(n, np.float64)
        t6 = np.empty(table.size, np.float64)
        t4 = np.empty(table.size, np.float64)
        for r in range(lo, hi):
            s6 = s6s[r]
            s4 = s4s[r]
            d6 = g[r] * stable[s6]
            d4 = g[r] * stable[s4]
            c6 = out[r]
            xr = xb[r]
            quantize(xr, xi[r], d6, cmp, grid, zcode, c6, thr, ti)
            scodes[r] = s6
            take4[r] = False
            if s4 == s6:  # one candidate: a tie, keep 6
                continue
            quantize(xr, xi[r], d4, cmp, grid, zcode, c4, thr, ti)
            if fixed:
                if amax[r] == 0.0:  # both candidates exact: tie, keep 6
                    continue
                unit = math.ldexp(1.0, frac_bits - math.frexp(amax[r])[1] + 1)  # 2**(F - Eb)
                for c in range(n):
                    xs[c] = math.floor(abs(np.float64(xr[c])) * unit)
                for k in range(table.size):
                    t6[k] = math.floor(abs(table[k] * d6) * unit)
                    t4[k] = math.floor(abs(table[k] * d4) * unit)
            else:
                for c in range(n):
                    xs[c] = xr[c]
                for k in range(table.size):
                    t6[k] = table[k] * d6
                    t4[k] = table[k] * d4
            e6 = 0.0
            e4 = 0.0
            for c in range(n):
                e6 = _term(xs[c] - t6[c6[c]], metric, e6)
                e4 = _term(xs[c] - t4[c4[c]], metric, e4)
            if e4 < e6:
                take4[r] = True
                scodes[r] = s4
                for c in range(n):  # a loop: slice assignment compiles numba's shape-error strings
                    c6[c] = c4[c]
    return rows


_4o6_fast = _four_over_six_rows(_fast_quantize)
_4o6_general = _four_over_six_rows(quantize_row_general)


@numba.njit(cache=True, nogil=True)
def _four_over_six_fast(lo, hi, xb, xi, amax, g, s6s, s4s, stable, table, cmp, grid, zcode,
                        metric, fixed, frac_bits, out, take4, scodes):
    _4o6_fast(lo, hi, xb, xi, amax, g, s6s, s4s, stable, table, cmp, grid, zcode, metric, fixed,
              frac_bits, out, take4, scodes)


@numba.njit(cache=True, nogil=True)
def _four_over_six_general(lo, hi, xb, xi, amax, g, s6s, s4s, stable, table, cmp, grid, zcode,
                           metric, fixed, frac_bits, out, take4, scodes):
    _4o6_general(lo, hi, xb, xi, amax, g, s6s, s4s, stable, table, cmp, grid, zcode, metric,
                 fixed, frac_bits, out, take4, scodes)


def four_over_six(xb, amax, g, m6, m4, from6, stable, sgrid, sguess, pz_code, table, cmp, grid, zcode,
                  metric, fixed, frac_bits, out, take4, scodes):
    """Quantize each block under both candidates, keep 4 where its error is strictly lower.

    Candidates: S6 = RoundSF(amax / (g m6)) and S4 = RoundSF(amax / (g m4)), or with
    ``from6`` S4 = RoundSF(1.5 S6); each raised to ``pz_code`` if zero (pz_code >= 0).
    Equal candidates are a tie (6 kept) without evaluating the errors.

    The error terms are ``X_i - T[code_i]``: with ``fixed``, X_i = floor(|x_i| 2**(F-Eb))
    and T[k] = floor(|value_k d| 2**(F-Eb)) (integers, exact in float64 for F <= 20);
    otherwise X_i = x_i and T[k] = value_k d.
    """
    s6 = scale_codes(amax, g * m6, stable, sgrid, sguess, pz_code)
    s4 = (scale_codes(1.5 * stable[s6], np.ones_like(amax), stable, sgrid, sguess, pz_code)
          if from6 else scale_codes(amax, g * m4, stable, sgrid, sguess, pz_code))
    cmp = with_mask(cmp, xb, grid, zcode)
    run_rows(_four_over_six_fast if cmp[5] else _four_over_six_general, xb.shape[0], xb,
             bits(xb), amax, g, s6, s4, stable, table, cmp, grid, zcode, metric, fixed,
             frac_bits, out, take4, scodes)


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
    run_rows(_brute_force, xb.shape[0], xb, bits(xb), amax, g, svals, start, mmax, zero_at,
             table, np.unique(finite[finite >= 0]), cmp, grid, zcode, metric, prune, best_out,
             err_out, out)


def _searcher(quantize):
    """:func:`brute_force`'s per-block search with the row quantizer ``quantize`` compiled in
    (one variant a quantizer: a test between the two inside the search stops the SIMD)."""

    @numba.njit(inline="always")
    def candidate_error(xrow, xirow, crow, d, table, cmp, grid, zcode, metric, limit, thr, ti):
        """Error of the block under divisor d; stops as soon as it exceeds limit."""
        quantize(xrow, xirow, d, cmp, grid, zcode, crow, thr, ti)
        acc = 0.0
        for c in range(xrow.size):
            acc = _term(np.float64(xrow[c]) - table[crow[c]] * d, metric, acc)
            if acc > limit:
                return acc
        return acc

    @numba.njit(inline="always")
    def search_row(xrow, xirow, crow, am, gr, svals, k0, mmax, zero_at, table, mags, cmp, grid,
                   zcode, metric, prune, best_out, err_out, r, thr, ti, out):
        """Brute-force search of one block (see :func:`brute_force`)."""
        ns = svals.size
        best = np.inf
        besti = ns
        first = 0
        if prune:
            best = candidate_error(xrow, xirow, out, svals[k0] * gr, table, cmp, grid, zcode,
                                   metric, np.inf, thr, ti)
            besti = k0
            # first scale whose clipping bound does not exceed best (bound falls with s)
            lo, hi = 0, ns
            while lo < hi:
                mid = (lo + hi) >> 1
                t = am - mmax * svals[mid] * gr
                if t > 0 and (t * t if metric == MSE else t) > best:
                    lo = mid + 1
                else:
                    hi = mid
            first = lo
        for k in range(first, ns):
            s = svals[k] * gr
            lb = -1.0
            if prune:  # the block maximum's own term, at its nearest value, bounds the error
                lb = np.inf
                for v in mags:
                    lb = min(lb, abs(am - v * s))
                if metric == MSE:
                    lb = lb * lb
            if lb <= best:
                e = candidate_error(xrow, xirow, crow, s, table, cmp, grid, zcode, metric,
                                    best if prune else np.inf, thr, ti)
                if e < best or (e == best and k < besti):  # evaluated in full: crow complete
                    best = e
                    besti = k
                    for c in range(xrow.size):
                        out[c] = crow[c]
            if prune and am < s * zero_at:
                break
        best_out[r] = besti
        err_out[r] = best

    return search_row


_search_fast = _searcher(_fast_quantize)
_search_general = _searcher(quantize_row_general)


# two kernels, not one testing cmp[5]: only the one a grid needs is compiled (module-level
# functions, so that numba's cache finds them again)
@numba.njit(cache=True, nogil=True)
def _brute_force_fast(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp,
                      grid, zcode, metric, prune, best_out, err_out, out, thr, crow):
    ti = thr.view(xi.dtype)
    for r in range(lo, hi):
        _search_fast(xb[r], xi[r], crow, amax[r], g[r], svals, start[r], mmax, zero_at, table,
                     mags, cmp, grid, zcode, metric, prune, best_out, err_out, r, thr, ti, out[r])


@numba.njit(cache=True, nogil=True)
def _brute_force_general(lo, hi, xb, xi, amax, g, svals, start, mmax, zero_at, table, mags, cmp,
                         grid, zcode, metric, prune, best_out, err_out, out, thr, crow):
    ti = thr.view(xi.dtype)
    for r in range(lo, hi):
        _search_general(xb[r], xi[r], crow, amax[r], g[r], svals, start[r], mmax, zero_at,
                        table, mags, cmp, grid, zcode, metric, prune, best_out, err_out, r, thr,
                        ti, out[r])


def _brute_force(lo, hi, xb, *args):
    """One row range of :func:`brute_force`, with its own scratch."""
    cmp = args[9]
    thr = np.empty(max(8, cmp[1].size), xb.dtype)
    kernel = _brute_force_fast if cmp[5] else _brute_force_general
    kernel(lo, hi, xb, *args, thr, np.empty(xb.shape[1], np.uint8))

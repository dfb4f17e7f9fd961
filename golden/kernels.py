"""Compiled block kernels of the quantizer: amax, dequantization, block errors, brute force.

All work on blocks laid out as rows of a 2-D array ``xb[nblocks, block]`` with
one divisor ``d[block] = global * scale`` a row.  Element codes come from
:func:`rounding.round_one`, so every path rounds exactly as a cast does.

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

from .rounding import compare_row, round_one

METRICS = ("mse", "mae", "max-abs")
MSE, MAE, MAXABS = range(3)


@numba.njit(parallel=True, cache=True, nogil=True)
def block_amax(xb):
    """max |x| of every row."""
    out = np.empty(xb.shape[0], np.float64)
    for r in numba.prange(xb.shape[0]):
        m = 0.0
        for c in range(xb.shape[1]):
            m = max(m, abs(np.float64(xb[r, c])))
        out[r] = m
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def dequantize(codes, table, d, out):
    """out[r, c] = table[codes[r, c]] * d[r], rounded once to out's dtype."""
    for r in numba.prange(codes.shape[0]):
        for c in range(codes.shape[1]):
            out[r, c] = table[codes[r, c]] * d[r]


@numba.njit(inline="always")
def _term(e, metric, acc):
    if metric == MSE:
        return acc + e * e
    if metric == MAE:
        return acc + abs(e)
    return max(acc, abs(e))


@numba.njit(inline="always")
def block_error(xrow, crow, table, d, metric):
    """Float error of one block (see the module docstring)."""
    acc = 0.0
    for c in range(xrow.size):
        acc = _term(np.float64(xrow[c]) - table[crow[c]] * d, metric, acc)
    return acc


@numba.njit(inline="always")
def block_error_fixed(xrow, crow, table, d, metric, frac_bits, amax):
    """Fixed-point (hardware) error of one block (see the module docstring)."""
    if amax == 0.0:
        return 0.0
    unit = math.ldexp(1.0, frac_bits - math.frexp(amax)[1] + 1)  # 2**(F - Eb)
    acc = 0
    for c in range(xrow.size):
        e = (math.floor(abs(np.float64(xrow[c])) * unit)
             - math.floor(abs(table[crow[c]] * d) * unit))
        if metric == MSE:
            acc += np.int64(e * e)
        elif metric == MAE:
            acc += np.int64(abs(e))
        else:
            acc = max(acc, np.int64(abs(e)))
    return np.float64(acc)


@numba.njit(parallel=True, cache=True, nogil=True)
def block_errors(xb, codes, table, d, metric, fixed, frac_bits, amax):
    """Error of every block; ``fixed`` selects the hardware definition."""
    out = np.empty(xb.shape[0], np.float64)
    for r in numba.prange(xb.shape[0]):
        if fixed:
            out[r] = block_error_fixed(xb[r], codes[r], table, d[r], metric, frac_bits, amax[r])
        else:
            out[r] = block_error(xb[r], codes[r], table, d[r], metric)
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def brute_force(xb, amax, g, svals, start, mmax, zero_at, table, cmp, eval_grid, metric, prune,
                best_out, err_out):
    """Index into ``svals`` (ascending scale values) of the minimum-error scale of each block.

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
    * a candidate whose running error exceeds the best one is abandoned.

    ``cmp`` = (use, midpoints, tie_up, magnitude codes, sign bit) selects the
    comparator path of :func:`rounding.compare_row`; else ``eval_grid`` rounds.
    """
    ns = svals.size
    for r in numba.prange(xb.shape[0]):
        xrow = xb[r]
        crow = np.empty(xrow.size, np.uint8)
        am = amax[r]
        gr = g[r]
        best = np.inf
        besti = ns
        first = 0
        if prune:
            k = start[r]
            best = _candidate_error(xrow, crow, svals[k] * gr, table, cmp, eval_grid, metric,
                                    np.inf)
            besti = k
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
            e = _candidate_error(xrow, crow, s, table, cmp, eval_grid, metric,
                                 best if prune else np.inf)
            if e < best or (e == best and k < besti):
                best = e
                besti = k
            if prune and am < s * zero_at:
                break
        best_out[r] = besti
        err_out[r] = best


@numba.njit(inline="always")
def _candidate_error(xrow, crow, d, table, cmp, grid, metric, limit):
    """Error of the block under divisor d (scale 0: every element is 0); stops above limit."""
    (vals, codes, vlo, vhi, plo, negz, nanc, infc, sbit, underc, mode, ovf) = grid
    if d > 0.0:
        if cmp[0]:
            compare_row(xrow, d, cmp[1], cmp[2], cmp[3], cmp[4], crow)
        else:
            for c in range(xrow.size):
                crow[c] = round_one(xrow[c], d, vals, codes, vlo, vhi, plo, negz, nanc, infc,
                                    sbit, underc, mode, ovf, 0.0)
    acc = 0.0
    for c in range(xrow.size):
        xv = np.float64(xrow[c])
        e = xv - table[crow[c]] * d if d > 0.0 else xv
        acc = _term(e, metric, acc)
        if acc > limit:
            return acc
    return acc

"""Compiled kernels of the scale selectors (:mod:`.selectors`): k candidates, one winner a block.

Blocks are rows of ``xb[nblocks, block]``, as in :mod:`.kernels`.  Each kernel
computes a block's candidate scale codes, quantizes the block under each
candidate it needs and keeps one; element codes come from the same
:func:`kernels.fast_row` / :func:`kernels.quantize_row_general` as every other rule.

Block errors (``arith``), one definition each, all summed in element order:

* ``FLOAT``: float64 ``e = x - value(code) * d``, ``e**2`` / ``|e|`` / max, as
  :func:`kernels.four_over_six` with ``error_arith="float"``.
* ``FIXED``: the hardware's integers ``X - Y`` in the frame ``2**(Eb - F)``
  anchored at the block maximum (see :mod:`.kernels`), summed exactly.
* ``FP16``: the product domain: the dequantized element ``value(code) * S``
  (an E2M1 x scale product, exact in FP16), times the per-block share ``g``
  of a per-tensor scale, in FP32; ``e = fl32(x - product)``; the terms
  ``fl32(e*e)`` (or ``|e|``) accumulated in FP32 (``acc = fl32(acc + term)``).
  Each FP32 operation is a float64 operation rounded once to FP32, which is
  the correctly rounded FP32 result (53 >= 2 * 24 + 2).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .kernels import (MAE, MSE, _scale_code, bits, fast_row, quantize_row_general, row_scratch,
                      with_mask)
from .pool import run_rows

FLOAT, FIXED, FP16 = range(3)


@numba.njit(inline="always")
def block_error(xrow, crow, s, g, table, metric, arith, unit):
    """Block error of codes ``crow`` under scale ``s`` and per-tensor share ``g``."""
    d = g * s
    acc = 0.0
    for c in range(xrow.size):
        x = np.float64(xrow[c])
        if arith == FIXED:
            e = math.floor(abs(x) * unit) - math.floor(abs(table[crow[c]] * d) * unit)
        elif arith == FP16:
            p = np.float64(np.float32(table[crow[c]] * s * g))
            e = np.float64(np.float32(np.float64(np.float32(x)) - p))
        else:
            e = x - table[crow[c]] * d
        if metric == MSE:
            t = e * e
        else:
            t = abs(e)
        if arith == FP16:
            t = np.float64(np.float32(t))
        if metric == MSE or metric == MAE:
            acc = acc + t
        else:
            acc = max(acc, t)
        if arith == FP16:
            acc = np.float64(np.float32(acc))
    return acc


@numba.njit(inline="always")
def frame_unit(amax, frac_bits):
    """2**(F - Eb), Eb = floor(log2 amax): the fixed-point frame of a block (1 for amax == 0)."""
    if amax == 0.0:
        return 1.0
    return math.ldexp(1.0, frac_bits - math.frexp(amax)[1] + 1)


@numba.njit(inline="always")
def candidate_codes(am, gr, ms, up, offsets, svals, scodes, stable, sgrid, pz_code, m_base, out):
    """Scale codes of a block's candidates into ``out``.

    By M (``ms`` non-empty): RoundSF(amax / (g M_j)); with ``up`` > 0, raised to at
    least ``up`` codes above candidate j - 1 (``up = 1``: no two are equal).  By code offsets: the
    scale ``offsets[j]`` steps above RoundSF(amax / (g m_base)) in the ascending
    list ``svals`` (codes ``scodes``) of searchable scales, clamped to its ends.
    Zero scales are raised to ``pz_code`` where ``pz_code >= 0``.
    """
    if ms.size:
        prev = -up
        for j in range(ms.size):
            out[j] = _scale_code(am, gr * ms[j], stable, sgrid, pz_code)
            if up > 0:
                p = max(np.searchsorted(svals, stable[out[j]]), min(prev + up, svals.size - 1))
                out[j] = scodes[p]
                prev = p
    else:
        base = _scale_code(am, gr * m_base, stable, sgrid, pz_code)
        p0 = np.searchsorted(svals, stable[base])
        for j in range(offsets.size):
            p = min(max(p0 + offsets[j], 0), svals.size - 1)
            out[j] = scodes[p]


@numba.njit(cache=True, nogil=True)
def _k_candidates(lo, hi, xb, xi, amax, g, ms, up, offsets, m_base, svals, scodes, stable, sgrid,
                  pz_code, table, cmp, grid, zcode, metric, arith, frac_bits, out, scode_out,
                  pick_out):
    n = xb.shape[1]
    k = max(ms.size, offsets.size)
    fast, thr, ti = row_scratch(xb, xi, cmp)
    crow = np.empty(n, np.uint8)
    cand = np.empty(k, np.int64)
    for r in range(lo, hi):
        candidate_codes(amax[r], g[r], ms, up, offsets, svals, scodes, stable, sgrid, pz_code,
                        m_base, cand)
        unit = frame_unit(amax[r], frac_bits)
        best = np.inf
        bestj = 0
        for j in range(k):
            seen = False
            for i in range(j):
                seen |= cand[i] == cand[j]
            if seen:
                continue
            s = stable[cand[j]]
            if fast:  # tested here, not in an inlined helper: that stops the SIMD
                fast_row(xi[r], g[r] * s, cmp, grid[8], crow, thr, ti)
            else:
                quantize_row_general(xb[r], xi[r], g[r] * s, cmp, grid, zcode, crow, thr, ti)
            e = block_error(xb[r], crow, s, g[r], table, metric, arith, unit)
            if e < best:
                best = e
                bestj = j
                for c in range(n):  # a loop, not out[r, :] = crow (see kernels.four_over_six)
                    out[r, c] = crow[c]
        pick_out[r] = bestj
        scode_out[r] = cand[bestj]


def k_candidates(xb, amax, g, ms, up, offsets, m_base, svals, scodes, stable, sgrid, pz_code, table,
                 cmp, grid, zcode, metric, arith, frac_bits, out, scode_out, pick_out):
    """Lowest block error among the candidates; ties to the earliest in the list.

    ``pick_out[r]`` is the index of the winning candidate, ``scode_out[r]`` its
    scale code, ``out[r]`` the block's element codes under it.  A candidate
    whose scale code equals an earlier one is not evaluated again (same error).
    """
    run_rows(_k_candidates, xb.shape[0], xb, bits(xb), amax, g, ms, up, offsets, m_base, svals,
             scodes, stable, sgrid, pz_code, table, with_mask(cmp, xb, grid, zcode), grid, zcode,
             metric, arith,
             frac_bits, out, scode_out, pick_out)


@numba.njit(cache=True, nogil=True)
def _predicted(lo, hi, xb, xi, amax, g, ms, up, offsets, m_base, svals, scodes, stable, sgrid,
               pz_code, cmp, grid, zcode, stat, lo_, hi_, out, scode_out, pick_out):
    n = xb.shape[1]
    k = max(ms.size, offsets.size)
    fast, thr, ti = row_scratch(xb, xi, cmp)
    cand = np.empty(k, np.int64)
    for r in range(lo, hi):
        candidate_codes(amax[r], g[r], ms, up, offsets, svals, scodes, stable, sgrid, pz_code,
                        m_base, cand)
        d0 = g[r] * stable[cand[0]]
        count = 0
        for c in range(n):
            a = abs(np.float64(xb[r, c]))
            if stat == 0:
                count += a > lo_ * d0 and a < amax[r]
            else:
                count += 100.0 * a >= lo_ * amax[r]  # exact: 24 + 7 bits each side
        if stat == 1:
            count -= 1  # the maximum itself
        j = 1 if count >= hi_ else 0
        pick_out[r] = j
        scode_out[r] = cand[j]
        if fast:  # tested here, not in an inlined helper: that stops the SIMD
            fast_row(xi[r], g[r] * stable[cand[j]], cmp, grid[8], out[r], thr, ti)
        else:
            quantize_row_general(xb[r], xi[r], g[r] * stable[cand[j]], cmp, grid, zcode, out[r],
                                 thr, ti)


def predicted(xb, amax, g, ms, up, offsets, m_base, svals, scodes, stable, sgrid, pz_code, cmp,
              grid, zcode, stat, lo, hi, out, scode_out, pick_out):
    """No error unit: a block statistic picks candidate 0 or 1 of the list.

    ``stat`` 0 (``gap``): the number of elements with ``lo * d0 < |x| < amax``,
    ``d0`` the first candidate's divisor (``lo = 4``: the elements inside the
    E2M1 4-to-6 gap under the abs-max scale, the maximum excluded); 1
    (``second``): the number of elements other than one maximum with
    ``100 |x| >= lo * amax`` (``lo`` a percentage).  The block takes candidate
    1 when the count is at least ``hi`` (and candidate 0 otherwise).
    """
    run_rows(_predicted, xb.shape[0], xb, bits(xb), amax, g, ms, up, offsets, m_base, svals,
             scodes, stable, sgrid, pz_code, with_mask(cmp, xb, grid, zcode), grid, zcode, stat,
             lo, hi, out,
             scode_out, pick_out)

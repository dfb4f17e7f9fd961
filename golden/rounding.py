"""Exact rounding of ``x / d`` onto a format's value grid: the one rounding kernel.

Every conversion in the golden model (a cast, RoundSF of a block scale, an
element of a block) goes through :func:`round_to_grid`.  The quotient
``x / d`` is never formed: the kernel binary-searches the sorted value table
comparing ``x`` with ``d * v`` and decides ties by comparing ``x`` with
``d * (v_lo + v_hi) / 2``.  Grid values and their midpoints have at most
``mbits + 2`` significant bits, so for ``d`` of up to 24 significant bits (a
float32 per-tensor scale times an 8-bit scale times an element maximum)
every product is exact in float64 and every comparison is exact: the result
is the rounding of the infinitely precise quotient.

Outside the grid, a virtual value one step past each end (``max + ulp(max)``,
480 for E4M3) stands for "overflow", so IEEE semantics fall out: 464 rounds
to 448 (tie, even code) and 465 overflows; ``floor`` of a large positive
value is ``max``.  Overflow then saturates, or becomes NaN / inf.

The loop is compiled with numba (``nogil``, rows split over a thread pool by
:mod:`.pool`); it is the one place the golden model walks elements one at a time.
Block scales take :func:`round_quotient`: a guess from the float64 quotient, corrected by
the same exact compares.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numba
import numpy as np

from .pool import run_rows

MODES = ("rne", "ties-away", "ties-down", "floor", "ceil", "stochastic")
OVERFLOWS = ("saturate", "nan", "inf")

RNE, TIES_AWAY, TIES_DOWN, FLOOR, CEIL, STOCHASTIC = range(6)
SATURATE, TO_NAN, TO_INF = range(3)


@dataclasses.dataclass(frozen=True, eq=False)
class Grid:
    """Sorted finite values of a format with their codes and virtual ends.

    ``vlo``/``vhi`` are the values one step beyond the grid (overflow); ``plo``
    is the parity the code of ``vlo`` would have (for ties-to-even).  ``underflow_code`` is
    set for formats without zero (E8M0): anything below the smallest value
    clamps to it.
    """

    values: np.ndarray  # float64, ascending, -0 folded into +0
    codes: np.ndarray  # uint8
    vlo: float
    vhi: float
    plo: int
    neg_zero_code: int  # -1 if the format has no -0
    nan_code: int  # -1 if none
    inf_code: int  # -1 if none
    sign_bit: int
    underflow_code: int  # -1 unless the format has no zero and is unsigned

    @property
    def comparator(self):
        """(midpoints, magnitude codes) for the comparator fast path, or None.

        For a sign-magnitude (or unsigned) grid of at most 16 magnitudes, the
        nearest magnitude of ``|x| / d`` is the number of midpoints ``m_k * d``
        that ``|x|`` exceeds (on a tie: that it reaches, where the rule goes
        up): the hardware's comparator bank, branch-free.
        """
        mags = self.values[self.values >= 0]
        if (self.values[0] < 0 and -self.values[0] != mags[-1]) or mags.size > 16 or mags[0]:
            return None  # two's complement, large or zero-less grids take the general path
        codes = self.codes[self.values >= 0]
        return (mags[1:] + mags[:-1]) / 2, codes

    @functools.cached_property
    def binades(self):
        """(base, shift), int64 arrays of 2048: a first guess of the index of the largest
        grid value <= q (q >= 0) from the fields of q's float64 bits, exponent e and
        mantissa f: ``base[e] + (f >> shift[e])``.

        Where the values in a binade ``[2**E, 2**(E+1))`` are 2**E + i 2**(E-j), i = 0, 1, ...
        (every floating-point or integer grid), the guess is the index of the largest value
        <= q; elsewhere it is that of the largest value below the binade.
        :func:`round_quotient` corrects any guess by exact comparisons.
        """
        vals = self.values
        e = np.arange(2048)
        start = np.ldexp(1.0, np.minimum(e, 2046) - 1023)
        start[0], start[-1] = 0.0, np.inf  # q < 2**-1022: the largest value <= 0
        base = np.searchsorted(vals, start, side="left") - 1
        base[0] = np.searchsorted(vals, 0.0, side="right") - 1
        shift = np.full(2048, 52, np.int64)
        pos = vals[vals > 0]
        exps = np.frexp(pos)[1] - 1
        for E in np.unique(exps):
            pts = pos[exps == E]
            j = int(pts.size - 1).bit_length()
            if E > -1023 and np.array_equal(pts, np.ldexp(1.0 + np.arange(pts.size) / 2**j, E)):
                base[E + 1023] += 1
                shift[E + 1023] = 52 - j
        return base.astype(np.int64), shift

    def tie_up(self, mode):
        """Per midpoint: does a tie round up (to the larger magnitude)?"""
        mags = self.comparator[1]
        if mode == "rne":
            return (mags[:-1] & 1) == 1
        return np.full(mags.size - 1, mode == "ties-away")

    def args(self, mode="rne", overflow="saturate"):
        """The grid as :func:`round_one` takes it (after ``x`` and ``d``), minus ``u``."""
        return (self.values, self.codes, self.vlo, self.vhi, self.plo, self.neg_zero_code,
                self.nan_code, self.inf_code, self.sign_bit, self.underflow_code,
                MODES.index(mode), OVERFLOWS.index(overflow))

    @classmethod
    def from_table(cls, table, *, signed, sign_bit, nan_code, inf_code, ulp_max):
        finite = np.isfinite(table)
        codes = np.flatnonzero(finite)
        values = table[codes]
        # fold -0 into +0: keep the first code of each value (+0 precedes -0)
        values, first = np.unique(values, return_index=True)
        codes = codes[first].astype(np.uint8)
        vmax, vmin = values[-1], values[0]
        vhi = vmax + ulp_max
        if signed:  # sign-magnitude: mirror image
            vlo, plo = -vhi, (int(codes[-1]) + 1) & 1
        elif vmin < 0:  # two's complement integer
            vlo, plo = vmin - 1.0, (int(vmin) - 1) & 1
        else:  # unsigned: nothing below zero; E8M0 clamps below its minimum
            vlo, plo = 0.0 if vmin > 0 else -1.0, 1
        has_neg_zero = signed and np.any((table == 0) & np.signbit(table))
        return cls(values, codes, float(vlo), float(vhi), plo,
                   int(sign_bit) if has_neg_zero else -1,
                   -1 if nan_code is None else nan_code,
                   -1 if inf_code is None else inf_code,
                   int(sign_bit), int(codes[0]) if vmin > 0 else -1)


def round_to_grid(fmt, x, *, mode="rne", overflow="saturate", seed=None, divisor=None,
                  rows=None):
    """Codes of ``x / divisor`` rounded onto ``fmt``'s grid (see :meth:`Format.encode`).

    ``rows``: internal fast path; ``x`` is 2-D and ``divisor`` holds one value a row.
    """
    g = fmt.grid
    if overflow not in OVERFLOWS:
        raise ValueError(f"unknown overflow mode {overflow!r}; choose one of {list(OVERFLOWS)}")
    if overflow == "nan" and g.nan_code < 0:
        raise ValueError(f"format {fmt.name!r} has no NaN code: overflow='nan' is impossible")
    if overflow == "inf" and g.inf_code < 0:
        raise ValueError(f"format {fmt.name!r} has no infinity: overflow='inf' is impossible")
    if rows is None:
        x = np.asarray(x)
        if x.dtype.kind != "f" and x.dtype.name != "bfloat16":
            if x.dtype.kind in "iub":
                x = x.astype(np.float64)
            else:
                raise TypeError(f"x must be a real numeric array, got dtype {x.dtype}")
        shape = x.shape
        x = np.ascontiguousarray(x, dtype=np.float32 if x.dtype.itemsize <= 4 else np.float64)
        _check_specials(fmt, x, overflow)
        d = np.broadcast_to(np.asarray(1.0 if divisor is None else divisor, np.float64), shape)
        if not np.all(np.isfinite(d) & (d > 0)):
            raise ValueError("divisor must be finite and positive")
        x2 = x.reshape(-1, 1)
        d1 = np.ascontiguousarray(d).reshape(-1)
    else:
        shape, x2, d1 = x.shape, x, divisor
    out = np.empty(x2.shape, np.uint8)
    use, mids, tie_up, mags, sbit, _ = comparator_args(fmt, mode, overflow)
    if rows is not None and use:
        run_rows(_compare_kernel, x2.shape[0], x2, d1, mids, tie_up, mags, sbit, out)
        return out
    u = (np.random.default_rng(seed).random(x2.shape) if mode == "stochastic"
         else np.empty((1, 1)))
    run_rows(_round_kernel, x2.shape[0], x2, d1, *g.args(mode, overflow), u, out)
    return out.reshape(shape)


def comparator_args(fmt, mode, overflow="saturate"):
    """(use, midpoints, tie_up, magnitude codes, sign bit, identity) for the comparator path.

    ``identity``: the magnitude codes are 0, 1, 2, ... (a count of midpoints is the code).
    """
    g = fmt.grid
    if mode in ("rne", "ties-away", "ties-down") and overflow == "saturate" and g.comparator:
        mids, mags = g.comparator
        return (True, mids, g.tie_up(mode), mags, g.sign_bit,
                bool(np.array_equal(mags, np.arange(mags.size))))
    return False, np.zeros(1), np.zeros(1, np.bool_), np.zeros(2, np.uint8), 0, False


def _check_specials(fmt, x, overflow):
    g = fmt.grid
    if g.nan_code < 0 and np.isnan(x).any():
        raise ValueError(f"x contains NaN, which format {fmt.name!r} cannot represent")
    if g.inf_code < 0 and overflow != "nan" and np.isinf(x).any():
        raise ValueError(f"x contains Inf, which format {fmt.name!r} cannot represent "
                         "(use overflow='nan' to map it to NaN)")
    if g.values[0] >= 0 and (x < 0).any():
        raise ValueError(f"x contains negative values; format {fmt.name!r} is unsigned")


@numba.njit(cache=True, nogil=True)
def _round_kernel(lo, hi, x, d, vals, codes, vlo, vhi, plo, negz, nanc, infc, sbit, underc,
                  mode, ovf, u, out):
    for r in range(lo, hi):
        for c in range(x.shape[1]):
            out[r, c] = round_one_inline(x[r, c], d[r], vals, codes, vlo, vhi, plo, negz, nanc,
                                         infc, sbit, underc, mode, ovf,
                                         u[r, c] if mode == STOCHASTIC else 0.0)


@numba.njit(cache=True, nogil=True)
def _compare_kernel(lo, hi, x, d, mids, tie_up, mags, sbit, out):
    """Nearest rounding of finite x / d by counting midpoints (see Grid.comparator)."""
    for r in range(lo, hi):
        compare_row(x[r], d[r], mids, tie_up, mags, sbit, out[r])


@numba.njit(inline="always")
def compare_row(xr, d, mids, tie_up, mags, sbit, out):
    """Codes of one row: midpoint by midpoint over the row, so the inner loop vectorises."""
    for c in range(xr.size):
        out[c] = 0
    for i in range(mids.size):
        m = mids[i] * d  # exact: few-bit midpoint times a divisor of <= 24 bits
        up = tie_up[i]
        for c in range(xr.size):
            ax = abs(np.float64(xr[c]))
            out[c] += (ax > m) | ((ax == m) & up)
    for c in range(xr.size):
        out[c] = mags[out[c]] | (sbit if np.signbit(xr[c]) else 0)


def _round_one(x, d, vals, codes, vlo, vhi, plo, negz, nanc, infc, sbit, underc, mode, ovf, u):
    """Code of x / d rounded onto the grid ``vals`` (see the module docstring)."""
    xv = np.float64(x)
    neg = sbit if math.copysign(1.0, xv) < 0 else 0  # NaN, inf and zero keep their sign
    if xv != xv:
        return nanc | neg
    if math.isinf(xv) and (infc >= 0 or ovf == TO_NAN):
        return (nanc if infc < 0 else infc) | neg
    # largest k with vals[k] * d <= x (k = -1 below the grid)
    n = vals.size
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if vals[mid] * d <= xv:
            lo = mid + 1
        else:
            hi = mid
    k = lo - 1
    if k >= 0 and vals[k] * d == xv:
        pick = k
    else:
        a = vals[k] if k >= 0 else vlo
        b = vals[k + 1] if k + 1 < n else vhi
        if mode == FLOOR:
            up = False
        elif mode == CEIL:
            up = True
        elif mode == STOCHASTIC:
            up = u * ((b - a) * d) < xv - a * d
        else:
            m = (a + b) * 0.5 * d
            if xv != m:
                up = xv > m
            elif mode == RNE:  # neighbouring codes differ in parity: go up from an odd one
                up = ((codes[k] & 1) if k >= 0 else plo) == 1
            elif mode == TIES_AWAY:
                up = xv > 0
            else:  # ties toward zero
                up = xv < 0
        pick = k + 1 if up else k
    if pick == n:  # overflow above the grid
        if ovf == SATURATE:
            return codes[n - 1]
        return nanc if ovf == TO_NAN else infc
    if pick < 0:  # below the grid
        if underc >= 0:
            return underc
        if ovf == SATURATE:
            return codes[0]
        return (nanc if ovf == TO_NAN else infc) | sbit
    if negz >= 0 and vals[pick] == 0.0:
        return codes[pick] | neg
    return codes[pick]


_MANTISSA = (1 << 52) - 1


@numba.njit(inline="always")
def round_quotient(x, d, base, shift, buf, ibuf, vals, codes, mode):
    """:func:`round_one` of a finite ``x > 0`` (a block amax) strictly inside the grid, or -1.

    The binary search is replaced by :attr:`Grid.binades`' guess from the float64 quotient
    ``x / d``, corrected by the same exact comparisons ``vals[k] * d <= x``, and the rounding
    decision is taken without a data-dependent branch (random ups and downs mispredict):
    the same code as :func:`round_one`'s, bit for bit.  -1 (x <= 0, the quotient at or
    beyond either end of the grid, stochastic rounding): the caller calls :func:`round_one`,
    in its own loop (called from here, or :func:`round_one_inline` anywhere, numba
    reference-counts the arrays at every call: several times the cost of all this).
    ``buf``/``ibuf``: a float64 scratch of one entry and its int64 view.
    """
    buf[0] = x / d  # within an ulp of the exact quotient: the guess is off by one at most
    b = ibuf[0]
    e = (b >> 52) & 0x7FF
    n = vals.size
    k = min(base[e] + ((b & _MANTISSA) >> shift[e]), n - 1)
    while k >= 0 and vals[k] * d > x:
        k -= 1
    while k + 1 < n and vals[k + 1] * d <= x:
        k += 1
    if k < 0 or k + 1 == n or mode == STOCHASTIC or not x > 0:
        return -1
    if mode == FLOOR:
        up = False
    elif mode == CEIL:
        up = True
    else:
        m = (vals[k] + vals[k + 1]) * 0.5 * d
        tie_up = (mode == TIES_AWAY) | ((mode == RNE) & ((codes[k] & 1) == 1))
        up = (x > m) | ((x == m) & tie_up)
    return np.int64(codes[k + np.int64(up & (x != vals[k] * d))])


#: compiled once and called (per element where nothing faster applies, and where
#: :func:`round_quotient` declines), or inlined into :func:`round_to_grid`'s loop
round_one = numba.njit(nogil=True)(_round_one)
round_one_inline = numba.njit(inline="always")(_round_one)

"""Block dot product of FP4 codes with block scales: the golden model of the dot-product unit.

``block_dot(a, b, scale_a, scale_b)`` = ``(sum_i A_i * B_i) * S_a * S_b`` rounded
once to float32 (round to nearest even), where ``A_i``, ``B_i`` are the E2M1
values of the codes and ``S`` the scale values.  The FP4 part is exact integer
arithmetic (``2 * E2M1`` is an integer, so ``4 * A_i * B_i`` is one); the
integer sum times the two scale values is exact in float64 (at most 14 + 2*4
significant bits, exponents far inside float64's range), so the single cast to
float32 is the only rounding.

Defined corner cases:

* a NaN scale code (E4M3 0x7F, E8M0 0xFF, ...) gives the canonical quiet NaN
  ``0x7FC00000``;
* overflow beyond float32 gives ±inf (E8M0 scales near 2**127), underflow gives
  float32 subnormals or a signed zero (IEEE rounding);
* a zero sum gives +0 times the scales' signs (``0 * S_a * S_b`` in IEEE).

``accumulate_dot`` models the accumulating unit: each block's exact value is
added to a wide two's-complement fixed-point accumulator (a Kulisch
accumulator), and the running sum is rounded once to float32 after every
block.  :func:`accumulator_layout` fixes its weight and width: the LSB is the
smallest nonzero block value (``2**lsb`` with ``lsb = 2 q - 2``, ``2**q``
the scale format's quantum and 1/4 the unit of ``A_i B_i``), the width holds
the largest block value times ``2**headroom`` plus a sign, so up to
``2**headroom`` blocks add exactly.  Beyond that the sum wraps modulo
``2**width`` and a sticky ``overflow`` flag is raised.  A block with a NaN
scale code adds nothing and makes the result NaN until the next clear; an
exact zero sum is +0.

``accumulate_fp32`` models the FP32-accumulating unit (the tensor-core / FormatScope
datapath): the running total is an FP32 number, and each block's exact value
``V = T * sig_a * sig_b * 2**(e_a + e_b - 2)`` is added to it with one
round-to-nearest-even, the correctly rounded IEEE sum of two exact operands
(:func:`fp32_add_exact`).  Defined corner cases: overflow gives ±inf, which
then stays (V is always finite, so inf + V = inf) until a clear; FP32
subnormals are kept (no flush); a NaN scale code adds nothing, sets a sticky
``nan`` flag and makes the result the canonical NaN until the next clear;
zeros follow IEEE RNE: an exact cancellation gives +0, a sum of two zeros is
-0 only when both are -0 (a zero block's sign is its scales' signs), a nonzero
sum that rounds to zero keeps its sign.  ``clear`` starts from -0, the IEEE
additive identity, so a clearing block's result is its own rounded value.
"""

from __future__ import annotations

import dataclasses
import functools

import math

import numba
import numpy as np

from . import formats

__all__ = ["block_dot", "accumulate_dot", "accumulate_fp32", "accumulator_layout",
           "AccumulatorLayout", "fp32_add_exact", "CANONICAL_NAN"]

CANONICAL_NAN = np.uint32(0x7FC00000)


def _codes(name, value, bits, shape=None):
    value = np.asarray(value)
    if value.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of codes, got dtype {value.dtype}")
    if value.size and (value.min() < 0 or value.max() >= (1 << bits)):
        raise ValueError(f"{name} holds codes outside 0..{(1 << bits) - 1}")
    if shape is not None and value.shape != shape:
        raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
    return value.astype(np.int64)


def _twice(efmt) -> np.ndarray:
    """``2 * value`` of every element code as int64 (exact for E2M1)."""
    twice = 2 * efmt.table
    if not np.all(np.isfinite(twice) & (twice == np.round(twice))):
        raise ValueError(f"element format {efmt.name!r} does not have half-integer values")
    return twice.astype(np.int64)


def _total(a, b, efmt) -> np.ndarray:
    """``4 * sum_i A_i B_i`` of each block, exact int64."""
    ints = _twice(efmt)
    return np.sum(ints[a] * ints[b], axis=-1)


def block_dot(a, b, scale_a, scale_b, *, scale_format="e4m3", element="e2m1") -> np.ndarray:
    """float32 dot product of each block (last axis) of element codes ``a``, ``b``.

    a, b: integer codes of ``element``, shape ``(..., block)``.
    scale_a, scale_b: integer codes of ``scale_format``, shape ``(...)``.
    Returns float32 of shape ``(...)``; see the module docstring for NaN / overflow.
    """
    efmt, sfmt = formats.get(element), formats.get(scale_format)
    a = _codes("a", a, efmt.bits)
    b = _codes("b", b, efmt.bits, a.shape)
    if a.ndim == 0:
        raise ValueError("a and b need a block axis")
    sa = _codes("scale_a", scale_a, sfmt.bits, a.shape[:-1])
    sb = _codes("scale_b", scale_b, sfmt.bits, a.shape[:-1])
    total = _total(a, b, efmt)
    with np.errstate(over="ignore", invalid="ignore"):
        exact = total.astype(np.float64) * sfmt.table[sa] * sfmt.table[sb] * 0.25
        out = exact.astype(np.float32)
    nan = np.isnan(out)
    if nan.any():
        out = np.where(nan, CANONICAL_NAN.view(np.float32), out)
    return out


def _quantum(sfmt) -> int:
    """Exponent of the scale format's quantum: every finite scale is a multiple of 2**q."""
    return (1 if sfmt.subnormals else 0) - sfmt.bias - sfmt.mbits


@functools.lru_cache(maxsize=None)
def _scale_units(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per scale code: its value in quanta as an exact Python int (0 for NaN / inf), and NaN-ness."""
    sfmt = formats.get(name)
    finite = np.isfinite(sfmt.table)
    quanta = np.ldexp(np.where(finite, sfmt.table, 0.0), -_quantum(sfmt))  # exact integers
    return np.frompyfunc(int, 1, 1)(quanta), ~finite


@dataclasses.dataclass(frozen=True)
class AccumulatorLayout:
    """A ``width``-bit two's-complement accumulator counting units of ``2**lsb``."""

    lsb: int
    width: int
    headroom: int


def accumulator_layout(scale_format="e4m3", block_size: int = 16, *, headroom: int = 16,
                       element="e2m1") -> AccumulatorLayout:
    """Weight and width of the exact accumulator for blocks of ``block_size`` (see the module
    docstring); the hardware's accumulator is built from this."""
    efmt, sfmt = formats.get(element), formats.get(scale_format)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    if isinstance(headroom, bool) or not isinstance(headroom, (int, np.integer)) \
            or not 0 <= headroom <= 64:
        raise ValueError(f"headroom must be an integer in 0..64, got {headroom!r}")
    top_element = int(np.abs(_twice(efmt)).max())
    top_scale = int(max(_scale_units(sfmt.name)[0], key=abs))
    largest = top_element ** 2 * int(block_size) * top_scale ** 2
    return AccumulatorLayout(lsb=2 * _quantum(sfmt) - 2,
                             width=largest.bit_length() + 1 + int(headroom),
                             headroom=int(headroom))


def _segmented(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Running sums of ``values`` that restart at every index where ``start`` is set."""
    run = np.cumsum(values)
    first = np.maximum.accumulate(np.where(start, np.arange(len(values)), 0))
    before = np.concatenate([np.zeros(1, dtype=run.dtype), run])[first]
    return run - before


def accumulate_dot(a, b, scale_a, scale_b, clear, *, scale_format="e4m3", element="e2m1",
                   headroom: int = 16) -> dict:
    """The accumulating dot-product unit over a sequence of blocks (the first axis).

    a, b: codes of shape ``(blocks, block_size)``; scale_a, scale_b: ``(blocks,)``;
    clear: ``(blocks,)`` booleans, a set entry starts a new sum with that block (the first
    block always does, as after reset).  Returns ``result`` (float32, the running sum rounded
    once, RNE), ``acc`` (the accumulator as signed Python ints), ``overflow`` and ``nan``
    (sticky flags since the last clear) after each block.
    """
    efmt, sfmt = formats.get(element), formats.get(scale_format)
    if np.ndim(a) != 2:
        raise ValueError(f"a and b must have shape (blocks, block_size), got {np.shape(a)}")
    a, b, sa, sb, clear = _stream_inputs(a, b, scale_a, scale_b, clear, efmt, sfmt)
    n, block = a.shape
    layout = accumulator_layout(sfmt, block, headroom=headroom, element=efmt)
    units, nan_code = _scale_units(sfmt.name)
    nan = nan_code[sa] | nan_code[sb]
    value = _total(a, b, efmt).astype(object) * units[sa] * units[sb]
    value[nan] = 0
    start = clear.copy()
    if n:
        start[0] = True
    half, full = 1 << (layout.width - 1), 1 << layout.width
    wrapped = (_segmented(value, start) + half) % full - half
    previous = np.where(start, 0, np.concatenate([np.zeros(1, object), wrapped[:-1]]))
    unwrapped = previous + value
    overflow = (unwrapped >= half) | (unwrapped < -half)
    sticky_overflow = _segmented(overflow.astype(np.int64), start) > 0
    sticky_nan = _segmented(nan.astype(np.int64), start) > 0
    # one rounding to float32: the integer rounded to 53 bits to odd (float64 RNE, moved one ulp
    # toward the exact value when inexact and even), which RNE to 24 bits cannot tell from it
    near = wrapped.astype(np.float64)
    even = (near.view(np.uint64) & 1) == 0
    above, below = wrapped > near.astype(object), wrapped < near.astype(object)
    near = np.where(above & even, np.nextafter(near, np.inf),
                    np.where(below & even, np.nextafter(near, -np.inf), near))
    with np.errstate(over="ignore"):
        result = np.ldexp(near, layout.lsb).astype(np.float32)
    result[sticky_nan] = CANONICAL_NAN.view(np.float32)
    return {"result": result, "acc": wrapped, "overflow": sticky_overflow, "nan": sticky_nan}


# --- the FP32-accumulating unit ----------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _scale_fields(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per scale code ``(sig, exp, sign, nan)`` with ``|value| = sig * 2**exp`` (sig 0 for zero
    and NaN codes); ``sig`` has at most ``mbits + 1`` bits."""
    sfmt = formats.get(name)
    t = sfmt.table
    finite = np.isfinite(t)
    mag = np.where(finite, np.abs(t), 0.0)
    exp = np.where(mag > 0, np.frexp(mag)[1] - 1 - sfmt.mbits, 0)
    sig = np.ldexp(mag, -exp).astype(np.int64)  # exact: at most mbits + 1 bits
    return sig, exp.astype(np.int64), np.signbit(t) & finite, ~finite


def _stream_inputs(a, b, scale_a, scale_b, clear, efmt, sfmt):
    """Validated ``(a, b, sa, sb, clear)`` of a sequence of blocks (second-to-last axis)."""
    a = _codes("a", a, efmt.bits)
    b = _codes("b", b, efmt.bits, a.shape)
    if a.ndim < 2:
        raise ValueError(f"a and b must have shape (..., blocks, block_size), got {a.shape}")
    sa = _codes("scale_a", scale_a, sfmt.bits, a.shape[:-1])
    sb = _codes("scale_b", scale_b, sfmt.bits, a.shape[:-1])
    clear = np.asarray(clear)
    if clear.shape != a.shape[:-1] or clear.dtype.kind not in "bui":
        raise ValueError(f"clear must be booleans of shape {a.shape[:-1]}, "
                         f"got {clear.dtype} of shape {clear.shape}")
    return a, b, sa, sb, clear.astype(bool)


def _block_terms(a, b, scale_a, scale_b, *, scale_format="e4m3", element="e2m1"):
    """Each block's exact value as ``(n, exp, neg, nan)``: ``(-1)**neg * n * 2**exp``.

    ``n = |T| * sig_a * sig_b`` (``T = sum 4 A_i B_i``), ``exp = e_a + e_b - 2``; ``neg`` is
    T's sign xor the scales' signs (a zero sum keeps the scales' signs); ``nan`` marks a NaN
    scale code (then ``n = 0``).  Shapes: the codes' without the block axis.
    """
    efmt, sfmt = formats.get(element), formats.get(scale_format)
    sig, exp, sign, nan_code = _scale_fields(sfmt.name)
    total = _total(a, b, efmt)
    nan = nan_code[scale_a] | nan_code[scale_b]
    n = np.abs(total) * sig[scale_a] * sig[scale_b]
    return (np.where(nan, 0, n), exp[scale_a] + exp[scale_b] - 2,
            (total < 0) ^ sign[scale_a] ^ sign[scale_b], nan)


@numba.njit(inline="always")
def _bit_length(m):
    n = 0
    while m:
        m >>= 1
        n += 1
    return n


@numba.njit(cache=True)
def _round_fp32(neg, m, f):
    """``(-1)**neg * m * 2**f`` (``m`` >= 0, < 2**62) rounded to float32, RNE, IEEE overflow."""
    bl = _bit_length(m)
    q = max(f + bl - 24, -149)  # exponent of the result's quantum
    if q > f:
        k = q - f
        if k > bl:  # below half the quantum
            m = 0
        else:
            kept, rem, half = m >> k, m & ((1 << k) - 1), 1 << (k - 1)
            if rem > half or (rem == half and kept & 1):
                kept += 1
            m, f = kept, q
    value = math.ldexp(float(m), f) if m else 0.0  # inf when beyond float64 too
    return np.float32(-value if neg else value)


@numba.njit(cache=True)
def fp32_add_exact(r, neg, n, e):
    """float32 ``r`` plus the exact ``(-1)**neg * n * 2**e`` (``0 <= n < 2**40``), rounded once.

    IEEE round-to-nearest-even with unbounded exponent range, then ±inf above the
    largest float32 and subnormals below the smallest normal.  ``r`` = ±inf stays.
    Zeros: a nonzero exact sum keeps its sign even when it rounds to zero; an exact
    zero sum is -0 only for (-0) + (-0), else +0.  Both operands are aligned in a
    frame 60 bits below the larger one's top bit; the smaller one's bits below the
    frame are OR-ed into the frame's LSB (a sticky bit 36 bits below the result's
    round bit), so the sum's rounding is that of the exact sum.
    """
    if math.isinf(r):
        return r
    r_neg = math.copysign(1.0, r) < 0
    if r == 0:
        if n == 0:
            return np.float32(-0.0) if (r_neg and neg) else np.float32(0.0)
        return _round_fp32(neg, n, e)
    if n == 0:
        return r
    frac, k = math.frexp(abs(float(r)))
    mr, er = np.int64(math.ldexp(frac, 24)), k - 24
    frame = max(er + _bit_length(mr), e + _bit_length(n)) - 60
    total = np.int64(0)
    for m, x, s in ((mr, er, r_neg), (np.int64(n), e, neg)):
        shift = x - frame
        if shift >= 0:
            v = m << shift
        elif -shift >= 62:
            v = np.int64(1)  # m != 0: all of it is sticky
        else:
            v = (m >> -shift) | np.int64((m & ((np.int64(1) << -shift) - 1)) != 0)
        total += -v if s else v
    if total == 0:
        return np.float32(0.0)
    return _round_fp32(total < 0, abs(total), frame)


@numba.njit(cache=True)
def _fp32_streams(n, e, neg, nan, start):
    """Running FP32 sums of rows of block terms (see :func:`accumulate_fp32`)."""
    rows, blocks = n.shape
    result = np.empty((rows, blocks), np.float32)
    flag = np.zeros((rows, blocks), np.bool_)
    for i in range(rows):
        acc, sticky = np.float32(-0.0), False
        for j in range(blocks):
            if start[i, j]:
                acc, sticky = np.float32(-0.0), False
            if nan[i, j]:
                sticky = True
            else:
                acc = fp32_add_exact(acc, neg[i, j], n[i, j], e[i, j])
            result[i, j], flag[i, j] = acc, sticky
    return result, flag


def accumulate_fp32(a, b, scale_a, scale_b, clear, *, scale_format="e4m3", element="e2m1") -> dict:
    """The FP32-accumulating dot-product unit over sequences of blocks (see the module docstring).

    a, b: codes of shape ``(..., blocks, block_size)``; scale_a, scale_b, clear:
    ``(..., blocks)``.  Leading axes are independent streams (computed side by side);
    along the blocks axis each block is added to the running FP32 total, a set
    ``clear`` starting a new total with that block (the first block always does, as
    after reset).  Returns ``result`` (float32, the total after each block; the
    canonical NaN while ``nan``) and ``nan`` (sticky since the last clear).
    """
    efmt, sfmt = formats.get(element), formats.get(scale_format)
    a, b, sa, sb, clear = _stream_inputs(a, b, scale_a, scale_b, clear, efmt, sfmt)
    shape = a.shape[:-1]
    n, e, neg, nan = (np.ascontiguousarray(v).reshape(-1, shape[-1])
                      for v in _block_terms(a, b, sa, sb, scale_format=sfmt.name, element=efmt.name))
    start = clear.reshape(-1, shape[-1]).copy()
    start[:, :1] = True
    result, flag = _fp32_streams(n.astype(np.int64), e.astype(np.int64), neg, nan, start)
    result[flag] = CANONICAL_NAN.view(np.float32)
    return {"result": result.reshape(shape), "nan": flag.reshape(shape)}

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
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from . import formats

__all__ = ["block_dot", "accumulate_dot", "accumulator_layout", "AccumulatorLayout",
           "CANONICAL_NAN"]

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


def block_dot(a, b, scale_a, scale_b, *, scale="e4m3", element="e2m1") -> np.ndarray:
    """float32 dot product of each block (last axis) of element codes ``a``, ``b``.

    a, b: integer codes of ``element``, shape ``(..., block)``.
    scale_a, scale_b: integer codes of ``scale``, shape ``(...)``.
    Returns float32 of shape ``(...)``; see the module docstring for NaN / overflow.
    """
    efmt, sfmt = formats.get(element), formats.get(scale)
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


def accumulator_layout(scale="e4m3", block_size: int = 16, *, headroom: int = 16,
                       element="e2m1") -> AccumulatorLayout:
    """Weight and width of the exact accumulator for blocks of ``block_size`` (see the module
    docstring); the hardware's accumulator is built from this."""
    efmt, sfmt = formats.get(element), formats.get(scale)
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


def accumulate_dot(a, b, scale_a, scale_b, clear, *, scale="e4m3", element="e2m1",
                   headroom: int = 16) -> dict:
    """The accumulating dot-product unit over a sequence of blocks (the first axis).

    a, b: codes of shape ``(blocks, block_size)``; scale_a, scale_b: ``(blocks,)``;
    clear: ``(blocks,)`` booleans, a set entry starts a new sum with that block (the first
    block always does, as after reset).  Returns ``result`` (float32, the running sum rounded
    once, RNE), ``acc`` (the accumulator as signed Python ints), ``overflow`` and ``nan``
    (sticky flags since the last clear) after each block.
    """
    efmt, sfmt = formats.get(element), formats.get(scale)
    a = _codes("a", a, efmt.bits)
    b = _codes("b", b, efmt.bits, a.shape)
    if a.ndim != 2:
        raise ValueError(f"a and b must have shape (blocks, block_size), got {a.shape}")
    n, block = a.shape
    sa = _codes("scale_a", scale_a, sfmt.bits, (n,))
    sb = _codes("scale_b", scale_b, sfmt.bits, (n,))
    clear = np.asarray(clear)
    if clear.shape != (n,) or clear.dtype.kind not in "bui":
        raise ValueError(f"clear must be {n} booleans, got {clear.dtype} of shape {clear.shape}")
    layout = accumulator_layout(sfmt, block, headroom=headroom, element=efmt)
    units, nan_code = _scale_units(sfmt.name)
    nan = nan_code[sa] | nan_code[sb]
    value = _total(a, b, efmt).astype(object) * units[sa] * units[sb]
    value[nan] = 0
    start = clear.astype(bool).copy()
    if n:
        start[0] = True
    half, full = 1 << (layout.width - 1), 1 << layout.width
    wrapped = (_segmented(value, start) + half) % full - half
    previous = np.where(start, 0, np.concatenate([np.zeros(1, object), wrapped[:-1]]))
    unwrapped = previous + value
    overflow = (unwrapped >= half) | (unwrapped < -half)
    sticky_overflow = _segmented(overflow.astype(np.int64), start) > 0
    sticky_nan = _segmented(nan.astype(np.int64), start) > 0
    # one rounding to float32: float64 of the integer (RNE), nudged one float64 ulp toward
    # the exact value when inexact, cannot round differently from the exact value
    near = wrapped.astype(np.float64)
    above, below = wrapped > near.astype(object), wrapped < near.astype(object)
    near = np.where(above, np.nextafter(near, np.inf),
                    np.where(below, np.nextafter(near, -np.inf), near))
    with np.errstate(over="ignore"):
        result = np.ldexp(near, layout.lsb).astype(np.float32)
    result[sticky_nan] = CANONICAL_NAN.view(np.float32)
    return {"result": result, "acc": wrapped, "overflow": sticky_overflow, "nan": sticky_nan}

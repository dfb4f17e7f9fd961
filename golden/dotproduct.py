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
"""

from __future__ import annotations

import numpy as np

from . import formats

__all__ = ["block_dot", "CANONICAL_NAN"]

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
    twice = 2 * efmt.table  # 2 * value: exact small integers for E2M1
    if not np.all(np.isfinite(twice) & (twice == np.round(twice))):
        raise ValueError(f"element format {efmt.name!r} does not have half-integer values")
    ints = twice.astype(np.int64)
    total = np.sum(ints[a] * ints[b], axis=-1)  # 4 * sum A_i B_i, exact
    with np.errstate(over="ignore", invalid="ignore"):
        exact = total.astype(np.float64) * sfmt.table[sa] * sfmt.table[sb] * 0.25
        out = exact.astype(np.float32)
    nan = np.isnan(out)
    if nan.any():
        out = np.where(nan, CANONICAL_NAN.view(np.float32), out)
    return out

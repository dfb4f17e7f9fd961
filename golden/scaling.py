"""Scale-selection rules: which block scale each block gets.

Every rule returns scale *codes* of the scale format, one a block, chosen from
the block's amax (and, for multi-candidate rules, from the block itself).
``g`` is the per-block share of the hierarchical (per-tensor or per-row)
float32 scale, 1.0 without one; every divisor is ``g * S``.

* ``abs-max``   S = RoundSF(amax / (g M)), M = element max (6 for E2M1)       (eq. 2)
* ``mx``        abs-max with M = the element format's largest power of two (4 for E2M1)
                and RoundSF rounding ``floor``: the OCP MX v1.0 rule
                ``2**(floor(log2 amax) - emax_elem)``.  ``M=6`` gives eq. 1 as
                printed in the "Finer is better" paper.
* ``4o6``       candidates M = 6 and M = 4 (the element format's two largest
                values), keep the one with the lower block error; ties keep 6  (eq. 4)
* ``brute-force`` every finite scale code, minimum block error, ties to the smaller scale.

``prevent_zero`` raises a zero scale to the smallest nonzero scale (eq. 3) or
to a given floor, for every candidate.
"""

from __future__ import annotations

import numpy as np

from .formats import Format
from .rounding import round_to_grid

RULES = ("abs-max", "mx", "4o6", "brute-force")
CANDIDATE4 = ("amax/4", "1.5x6", "1.5xq6")


def round_scale(sfmt: Format, amax, divisor, *, rounding, arith):
    """RoundSF(amax / divisor): codes of the block scales, saturating at the format max.

    ``arith="exact"`` rounds the exact quotient; ``"f32"`` first forms the
    float32 quotient ``fl32(amax / fl32(divisor))``, as float32 anchors do.
    """
    if arith == "f32":
        q = (amax.astype(np.float32) / np.asarray(divisor, np.float32)).astype(np.float32)
        return sfmt.encode(q, rounding=rounding)
    # amax is finite and non-negative: the row path skips encode's input checks
    d = np.broadcast_to(np.asarray(divisor, np.float64), amax.shape)
    return round_to_grid(sfmt, amax.reshape(-1, 1), mode=rounding, divisor=np.ascontiguousarray(d),
                         rows=True).reshape(-1)


def floor_code(sfmt: Format, floor) -> int:
    """Code of the prevent-zero floor, which must be a value of the scale format."""
    fcode = int(sfmt.encode(np.float64(floor)))
    if sfmt.table[fcode] != floor:
        raise ValueError(f"prevent_zero floor {floor} is not a value of scale format {sfmt.name}")
    return fcode


def apply_prevent_zero(sfmt: Format, codes, floor):
    """Raise zero scales to ``floor`` (a value of the scale format)."""
    return np.where(sfmt.table[codes] == 0, floor_code(sfmt, floor), codes).astype(np.uint8)


def zero_threshold(efmt: Format, rounding: str) -> float:
    """|x| / S below which every element rounds to zero (for pruning)."""
    minpos = efmt.min_subnormal
    return {"floor": minpos, "ties-down": minpos / 2, "rne": minpos / 2,
            "ties-away": minpos / 2}.get(rounding, 0.0)


def search_scales(sfmt: Format, prevent_zero: bool, floor):
    """Ascending distinct finite scale values (and their codes) brute force searches."""
    vals = sfmt.grid.values
    codes = sfmt.grid.codes
    keep = vals >= 0
    if prevent_zero:
        keep &= vals >= floor
    return vals[keep], codes[keep]

"""Scale selectors beyond abs-max and 4-over-6: parameterised rules named by their parameters.

A selector's name is its whole definition, and every name below is a
``rule=`` of :func:`quantize` (``golden.quantize(x, rule="kc-m8_6_4_3")``):

``kc-<candidates>[-<metric>][-<error>][-up][-seq]``  k-candidate search
    Quantize the block under each candidate scale, keep the lowest block
    error; ties go to the earliest candidate in the list.
    candidates: ``m8_6_4_3``: RoundSF(amax / M) for M = 8, 6, 4, 3;
    ``o0_1_2_n1``: the scales 0, +1, +2, -1 codes above RoundSF(amax / Mmax)
    (Mmax = 6 for E2M1) in the ascending list of finite non-negative scales
    (``n`` is a minus sign; clamped to the list's ends).
    metric: ``mse`` (default) | ``mae`` | ``maxabs``.
    error: ``f<F>`` (default ``f8``): the hardware's fixed point, F fractional
    bits below the block maximum's exponent (:mod:`.kernels`); ``float``: the
    float64 ideal; ``fp16``: the product domain, dequantized elements as
    E2M1 x scale products (exact in FP16), error and sum in FP32 (without a
    per-tensor scale the same as :mod:`.anchors`' TransformerEngine-style
    ``error_domain="scaled"``).
    ``seq``: the same decisions from one error unit reused over k cycles (a
    block every k cycles); only the hardware annotation differs.
    ``up`` (``up<n>``), with M candidates: each candidate is raised to at least
    one (n) code above the one before it, so no two candidates coincide (in
    region B RoundSF(amax/6) and RoundSF(amax/4) are often the same subnormal
    code); hardware: an equality compare and an incrementer on the scale code.
    ``kc-m6_4`` is 4-over-6 (``rule="4o6"`` with its default options).

``pg<t>-<candidates>[-up]``  predictor, no error unit
    Candidate 1 if at least ``t`` elements of the block fall inside the E2M1
    4-to-6 gap under the first candidate S0 (``4 S0 < |x| < amax``), else
    candidate 0.
``ps<p>_<t>-<candidates>[-up]``  predictor, no error unit
    Candidate 1 if at least ``t`` elements besides the maximum reach
    ``p/100 * amax``, else candidate 0.

Every selector shares 4-over-6's datapath parts (:mod:`finescale.hw`):
BlockAmax, one ScaleRound per candidate (M = 8 and 4 are exponent shifts,
6 and 3 the divide-by-3 chain; code offsets an adder on the scale code),
ElementQuantizer and BlockError (metric, F+1-bit magnitudes) per evaluated
candidate, a comparator tree over the k errors.  :meth:`Selector.parts` counts
them; a predictor replaces the error units by a bank of comparators and a
population count.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from . import kernels, scaling, selector_kernels as sk
from .formats import Format
from .rounding import comparator_args

__all__ = ["Selector", "FRONT", "parse", "is_selector", "apply"]

#: the selectors on the region-B accuracy front (``finescale selectors --quick``, E4M3: blocks
#: of 4 priced by synthesis, and the predictor and max-abs points of the model-priced front at 8
#: to 32), all with RTL (:mod:`finescale.hw`): the regression matrix's and the report's
FRONT = ("kc-m6_4-up", "kc-m6_4-up-f6", "kc-m6_4_3-up", "kc-m6_4_3-up-f6", "pg1-m6_4-up",
         "pg1-m6_4", "kc-m6_4-maxabs", "kc-o0_1_2_3")

METRIC_TOKENS = {"mse": "mse", "mae": "mae", "maxabs": "max-abs"}
_CANDS = re.compile(r"^(?:m(?P<ms>\d+(?:\.\d+)?(?:_\d+(?:\.\d+)?)*)|o(?P<os>n?\d+(?:_n?\d+)*))$")


@dataclasses.dataclass(frozen=True)
class Selector:
    """One parsed selector name (see the module docstring)."""

    name: str
    kind: str                       # "search" | "predict"
    ms: tuple = ()                  # candidate M values (by M)
    offsets: tuple = ()             # candidate code offsets (by offset)
    metric: str = "mse"
    error: str = "fixed"            # "fixed" | "float" | "fp16"
    frac_bits: int = 8
    sequential: bool = False
    up: int = 0                     # candidates forced this many codes above the previous one
    stat: str = ""                  # predictor: "gap" | "second"
    level: float = 0.0              # predictor: multiple of S0 (gap) or percent of amax
    count: int = 0                  # predictor: elements needed for candidate 1

    @property
    def k(self) -> int:
        return len(self.ms) or len(self.offsets)

    def parts(self) -> dict:
        """The hardware parts this rule needs per block (the input of a cost model)."""
        k = self.k
        search = self.kind == "search"
        units = 1 if self.sequential else k
        return dict(
            block_amax=1,
            scale_round=len(self.ms) or 1,
            scale_offset_adders=k - 1 if self.offsets or self.up else 0,
            element_quantizer=units if search else 1,
            block_error=units if search else 0,
            error_metric=self.metric if search else "",
            error_width=(self.frac_bits + 1 if self.error == "fixed" else
                         24 if self.error == "fp16" else 53) if search else 0,
            error_compare=k - 1 if search else 0,
            stat_comparators=0 if search else 1,
            cycles_per_block=k if self.sequential else 1,
        )


def _number(text):
    v = float(text)
    return int(v) if v == int(v) else v


def parse(name: str) -> Selector:
    """The :class:`Selector` a name stands for; ValueError naming the bad part."""
    tokens = str(name).split("-")
    head = tokens[0]
    pred = re.fullmatch(r"pg(\d+)|ps(\d+)_(\d+)", head)
    if head != "kc" and not pred:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(scaling.RULES)} "
                         "or a selector kc-..., pg<t>-..., ps<p>_<t>-...")
    if len(tokens) < 2 or not (m := _CANDS.match(tokens[1])):
        raise ValueError(f"selector {name!r}: second part must be candidates m<M>_<M>... "
                         "or o<offset>_<offset>... (n for minus)")
    ms = tuple(_number(v) for v in m["ms"].split("_")) if m["ms"] else ()
    offs = tuple(int(v.replace("n", "-")) for v in m["os"].split("_")) if m["os"] else ()
    if any(v <= 0 for v in ms):
        raise ValueError(f"selector {name!r}: every M must be positive")
    if len(ms or offs) < 2:
        raise ValueError(f"selector {name!r}: needs at least two candidates")
    if pred:
        if tokens[2:] not in ([], ["up"]) or (tokens[2:] and not ms):
            raise ValueError(f"selector {name!r}: a predictor takes only 'up' (with M "
                             "candidates) after its candidates")
        up = int(len(tokens) > 2)
        if pred[1] is not None:
            return Selector(name, "predict", ms, offs, up=up, stat="gap", level=4.0,
                            count=int(pred[1]))
        if not 0 < int(pred[2]) <= 100:
            raise ValueError(f"selector {name!r}: the percentage must be in 1..100")
        return Selector(name, "predict", ms, offs, up=up, stat="second",
                        level=int(pred[2]), count=int(pred[3]))
    metric, error, frac_bits, seq, up = "mse", "fixed", 8, False, 0
    for tok in tokens[2:]:
        if tok in METRIC_TOKENS:
            metric = METRIC_TOKENS[tok]
        elif tok in ("float", "fp16"):
            error = tok
        elif re.fullmatch(r"f\d+", tok) and int(tok[1:]) <= 20:
            error, frac_bits = "fixed", int(tok[1:])
        elif tok == "seq":
            seq = True
        elif re.fullmatch(r"up\d?", tok) and ms:
            up = int(tok[2:] or 1)
        else:
            raise ValueError(f"selector {name!r}: unknown option {tok!r} (mse, mae, maxabs, "
                             "f0..f20, float, fp16, seq, up with M candidates)")
    return Selector(name, "search", ms, offs, metric, error, frac_bits, seq, up)


def is_selector(name) -> bool:
    """True if ``name`` parses as a selector."""
    try:
        parse(name)
    except ValueError:
        return False
    return True


def _fp16_exact(efmt: Format, sfmt: Format) -> bool:
    """Is every element x scale product exactly an FP16 value?"""
    e = efmt.grid.values
    s = sfmt.grid.values
    p = np.abs(np.multiply.outer(e, s[s >= 0]))
    with np.errstate(over="ignore"):
        return bool(np.all(np.float16(p).astype(np.float64) == p))


def apply(name, xb, amax, g, efmt: Format, sfmt: Format, *, rounding, scale_rounding, arith,
          pz_code, floor):
    """Element codes, scale codes and choice (the M taken, where candidates are by M).

    Blocks are the rows of ``xb``; ``g`` the per-block share of a per-tensor
    scale; ``pz_code`` the prevent-zero code (-1 without prevent-zero) and
    ``floor`` its value (0 without).
    """
    sel = parse(name)
    if arith != "exact":
        raise ValueError(f"arith={arith!r} is implemented for abs-max and mx, not {name!r}")
    if "stochastic" in (rounding, scale_rounding):
        raise ValueError(f"stochastic rounding is not defined for selector {name!r}")
    if sel.error == "fp16" and not _fp16_exact(efmt, sfmt):
        raise ValueError(f"selector {name!r}: {efmt.name} x {sfmt.name} products are not "
                         "all exact in FP16; use f<F> or float errors")
    svals, scodes_all = scaling.search_scales(sfmt, pz_code >= 0, floor)
    ms = np.array(sel.ms, np.float64)
    offs = np.array(sel.offsets, np.int64)
    m_base = float(efmt.grid.values[-1])
    cmp = comparator_args(efmt, rounding)
    egrid = efmt.grid.args(rounding)
    zcode = efmt.zero_code or 0
    sgrid = sfmt.grid.args(scale_rounding)
    ecodes = np.empty(xb.shape, np.uint8)
    scodes = np.empty(xb.shape[0], np.uint8)
    pick = np.empty(xb.shape[0], np.int64)
    common = (xb, amax, g, ms, sel.up, offs, m_base, svals, scodes_all.astype(np.int64), sfmt.table,
              sgrid, pz_code)
    if sel.kind == "search":
        sk.k_candidates(*common, efmt.table, cmp, egrid, zcode, kernels.METRICS.index(sel.metric),
                        ("float", "fixed", "fp16").index(sel.error), sel.frac_bits, ecodes,
                        scodes, pick)
    else:
        sk.predicted(*common, cmp, egrid, zcode, ("gap", "second").index(sel.stat), sel.level,
                     sel.count, ecodes, scodes, pick)
    choice = None
    if ms.size and np.all(ms == np.round(ms)) and ms.max() < 256:
        choice = ms.astype(np.uint8)[pick]
    return ecodes, scodes, choice

"""One value for a block format and its rule: what a quantizer is, validated once.

A :class:`BlockFormat` is an element format, a scale format, a block size and a
:class:`Rule`: how each block's scale is chosen (the rule's name and its
parameters: M, scale rounding, prevent-zero and its floor, the 4-over-6
candidates, metric and error arithmetic, the per-tensor scale policy, and the
float32 order of operations the anchor recipes reproduce).  Both are frozen
and validated on construction with one-line errors; the field defaults are the
defaults of :func:`finescale.golden.quantize`.  Recipes resolve to a
BlockFormat (:func:`finescale.golden.recipes.block_format`), ``quantize``
takes one, and the hardware specs, the study and the report read theirs.

Rule names (:data:`RULES`): ``abs-max`` S = RoundSF(amax / M), ``mx`` the OCP
MX power-of-two rule, ``4o6`` four-over-six, ``brute-force`` every scale code;
any selector name of :mod:`.selectors` (``kc-m6_4-up``, ...) is a rule too.
"""

from __future__ import annotations

import dataclasses
import operator

import numpy as np

from . import anchors, formats, kernels, selectors
from .scaling import CANDIDATE4, RULES
from .formats import SCALE_FORMATS, Format

__all__ = ["Rule", "BlockFormat", "RULES", "LABELS", "SCALE_FORMATS", "HIERARCHICAL", "ARITH",
           "ERROR_ARITH", "CANDIDATE4", "CALL_OPTIONS", "scale_rule"]

HIERARCHICAL = (None, "tensor", "row")
ARITH = ("exact", "f32")
ERROR_ARITH = ("fixed", "float")
#: short labels of the rules the study, the trade-off and the validation compare -> the
#: ``quantize`` options that make the rule
LABELS = {
    "abs-max": dict(rule="abs-max"),
    "pz": dict(rule="abs-max", prevent_zero=True),
    "mx": dict(rule="mx"),
    "4o6": dict(rule="4o6"),
    "pz-4o6": dict(rule="4o6", prevent_zero=True),
    "bf": dict(rule="brute-force"),
}
#: options of one ``quantize`` call, not of the format: axis, padding, random seed, pruning
CALL_OPTIONS = dict(axis=-1, pad=False, seed=None, prune=True)

_CHOICES = dict(hierarchical=HIERARCHICAL, arith=ARITH, metric=kernels.METRICS,
                error_arith=ERROR_ARITH, candidate4=CANDIDATE4, f32_order=anchors.F32_ORDERS,
                tensor_scale=anchors.TENSOR_SCALES, dequant=anchors.DEQUANTS,
                zero_sign=anchors.ZERO_SIGNS, faults=anchors.FAULTS,
                error_domain=anchors.ERROR_DOMAINS, error_sum=anchors.ERROR_SUMS)


def scale_rule(scale) -> str:
    """The one-candidate rule of a scale format: ``mx`` for a power-of-two format (E8M0),
    else ``abs-max``."""
    return "mx" if formats.get(scale).mbits == 0 else "abs-max"


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(options)}")
    return value


@dataclasses.dataclass(frozen=True)
class Rule:
    """A scale-selection rule and its parameters (see :func:`finescale.golden.quantize`).

    Members
    -------
    name: one of :data:`RULES` or a selector name.
    M: element maximum the block amax is divided by (None: the element format's max;
        ``mx``: its largest power of two).
    rounding: element rounding; scale_rounding: RoundSF rounding (None: ``floor`` for
        ``mx``, else ``rne``; resolved on construction).
    prevent_zero, pz_floor: raise zero scales to ``pz_floor`` (None: the smallest scale).
    candidate4, metric, error_arith, error_frac_bits: the 4-over-6 second candidate,
        block error metric and arithmetic (``float``: the papers' exact errors;
        ``fixed``: the hardware's F fractional bits below the block maximum).
    hierarchical, scale_bound: the per-tensor / per-row float32 scale and its bound.
    arith, f32_order, tensor_scale, scale_min, dequant, zero_sign, error_domain,
        error_sum, faults, anchor: the float32 order of operations of an anchor library.
    """

    name: str = "abs-max"
    M: float | None = None
    prevent_zero: bool = False
    pz_floor: float | None = None
    hierarchical: str | None = None
    scale_bound: float | None = None
    rounding: str = "rne"
    scale_rounding: str | None = None
    arith: str = "exact"
    candidate4: str = "amax/4"
    metric: str = "mse"
    error_arith: str = "float"
    error_frac_bits: int = 8
    f32_order: str = "fused"
    tensor_scale: str = "divide"
    scale_min: float | None = None
    dequant: str = "exact"
    zero_sign: str = "x"
    faults: str = "exact"
    anchor: str | None = None
    error_domain: str = "dequant"
    error_sum: str = "torch"

    def __post_init__(self):
        if self.name not in RULES:
            selectors.parse(self.name)  # raises naming the rules and the selector grammar
        for name, options in _CHOICES.items():
            _choice(name, getattr(self, name), options)
        if self.anchor is not None:
            _choice("anchor", self.anchor, anchors.ANCHORS)
        formats.rounding_mode(self.rounding)
        object.__setattr__(self, "scale_rounding", formats.rounding_mode(
            self.scale_rounding or ("floor" if self.name == "mx" else "rne")))
        if self.M is not None and not (np.isfinite(self.M) and self.M > 0):
            raise ValueError(f"M must be a positive number, got {self.M!r}")
        frac = operator.index(self.error_frac_bits)
        if not 0 <= frac <= 20:
            raise ValueError(f"error_frac_bits must be in 0..20, got {frac}")
        if "stochastic" in (self.rounding, self.scale_rounding) and self.name in (
                "4o6", "brute-force"):
            raise ValueError(f"stochastic rounding is not defined for rule {self.name!r}")
        if self.arith == "f32" and self.name == "brute-force":
            raise ValueError("arith='f32' is implemented for abs-max, mx and 4o6, not "
                             "'brute-force'")
        exact_only = self.arith == "exact" or self.name == "mx"
        if exact_only and (self.tensor_scale != "divide" or self.f32_order != "fused"
                           or self.scale_min is not None):
            raise ValueError("tensor_scale, f32_order and scale_min are float32 options: "
                             "use them with arith='f32' and abs-max or 4o6")
        if self.tensor_scale == "encode" and self.hierarchical != "tensor":
            raise ValueError("tensor_scale='encode' needs hierarchical='tensor'")
        if self.dequant == "amax-last" and self.hierarchical == "row":
            raise ValueError("dequant='amax-last' needs hierarchical='tensor' or None")
        if self.faults == "reproduce" and self.anchor is None:
            raise ValueError("faults='reproduce' needs an anchor recipe (fouroversix-*, "
                             "torchao-*, te-*)")

    @property
    def f32(self) -> bool:
        """Whether the rule runs in the anchors' float32 order (abs-max and 4o6 only)."""
        return self.arith == "f32" and self.name in ("abs-max", "4o6")


@dataclasses.dataclass(frozen=True)
class BlockFormat:
    """Element format, scale format, block size and rule: one block-scaled format.

    ``BlockFormat("e2m1", "e4m3", 16, Rule("4o6"))``; format names resolve to
    :class:`~finescale.golden.formats.Format` objects on construction.
    """

    element: Format = "e2m1"
    scale_format: Format = "e4m3"
    block_size: int = 16
    rule: Rule = Rule()

    def __post_init__(self):
        object.__setattr__(self, "element", formats.get(self.element))
        object.__setattr__(self, "scale_format", formats.get(self.scale_format))
        block = self.block_size
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
            raise ValueError(f"block_size must be a positive integer, got {block!r}")
        object.__setattr__(self, "block_size", int(block))
        if not isinstance(self.rule, Rule):
            raise TypeError(f"rule must be a Rule, got {type(self.rule).__name__}")

    @classmethod
    def from_options(cls, **options) -> "BlockFormat":
        """From the flat keyword options of ``quantize`` (element, scale, block_size,
        rule and every :class:`Rule` field)."""
        rule = {f.name: options.pop(f.name) for f in dataclasses.fields(Rule)
                if f.name in options}
        if "rule" in options:
            rule["name"] = options.pop("rule")
        return cls(**options, rule=Rule(**rule))

    def options(self) -> dict:
        """The flat keyword options that make this format (inverse of :meth:`from_options`)."""
        rule = dataclasses.asdict(self.rule)
        return dict(block_size=self.block_size, element=self.element.name,
                    scale_format=self.scale_format.name, rule=rule.pop("name"), **rule)

    def replace(self, **options) -> "BlockFormat":
        """A copy with some keyword options changed."""
        return BlockFormat.from_options(**dict(self.options(), **options))

    # -- derived constants --------------------------------------------------
    @property
    def candidates(self) -> tuple[float, float]:
        """The element format's two largest values: 4-over-6's M (6 and 4 for E2M1)."""
        v = self.element.grid.values
        return float(v[-1]), float(v[-2])

    @property
    def M(self) -> float:
        """The divisor of the block amax: the rule's M, else the element max (``mx``: the
        element format's largest power of two)."""
        if self.rule.M is not None:
            return float(self.rule.M)
        top = self.candidates[0]
        return float(2.0 ** np.floor(np.log2(top))) if self.rule.name == "mx" else top

    @property
    def scale_bound(self) -> float:
        """The per-tensor scale's bound: the rule's, else the scale format's max."""
        return float(self.rule.scale_bound or self.scale_format.max)

    @property
    def pz_floor(self) -> float | None:
        """The prevent-zero floor (None without prevent-zero)."""
        if not self.rule.prevent_zero:
            return None
        return self.scale_format.min_subnormal if self.rule.pz_floor is None else self.rule.pz_floor

    def __str__(self) -> str:
        return f"{self.element}/{self.scale_format}/b{self.block_size}/{self.rule.name}"

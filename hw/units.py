"""Registry of the RTL units: what each is, how to build it, what it must compute.

A :class:`UnitSpec` names one unit with one parameter set.  It builds the
Amaranth component, gives the Verilog top name, and computes every output
port from input vectors with the golden model (``reference``), so the
Amaranth tests, the cocotb regression and the synthesis flow all share one
list of units (:func:`matrix`) and one definition of the right answer.

Port arrays have a leading vector axis; lane ports (``x``, ``codes``, ``a``,
``b``) a second, lane axis.  ``x`` holds BF16 (uint16) or FP32 (uint32) bit
patterns; codes and scale codes are uint8; the dot product's ``result`` is
FP32 bits (uint32).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Callable

import ml_dtypes
import numpy as np
from amaranth.hdl import Elaboratable, Shape
from amaranth.lib import data, wiring

from finescale import golden
from finescale.golden import selectors
from finescale.golden.rounding import round_to_grid

__all__ = ["UnitSpec", "UNITS", "matrix", "spec", "formatscope_dp32"]

SCALE_FORMATS = ("e4m3", "ue5m3", "e8m0")
INPUT_DTYPES = {"bf16": (ml_dtypes.bfloat16, np.uint16), "fp32": (np.float32, np.uint32)}


@dataclasses.dataclass(frozen=True)
class Unit:
    """One kind of unit: its builder, parameter defaults and golden reference."""

    build: Callable
    defaults: dict
    reference: Callable
    stimulus: Callable


def _default_method(params):
    return "mx" if params["scale_format"] == "e8m0" else "abs-max"


# -- input decoding and stimulus ----------------------------------------------
def decode_x(bits, input_format: str) -> np.ndarray:
    """BF16 / FP32 bit patterns -> float32 values (exact)."""
    ftype, itype = INPUT_DTYPES[input_format]
    return np.ascontiguousarray(np.asarray(bits).astype(itype)).view(ftype).astype(np.float32)


def random_blocks(rng, n, block_size, input_format, scale_format) -> np.ndarray:
    """Blocks whose amax spans the scale format's range (zero, subnormal, saturating blocks too)."""
    ftype, itype = INPUT_DTYPES[input_format]
    sfmt = golden.formats.get(scale_format)
    lo = max(np.log2(sfmt.min_subnormal) - 4, -133)
    hi = min(np.log2(sfmt.max * 6) + 3, 127)
    top = rng.uniform(lo, hi, size=(n, 1))
    spread = rng.choice([0, 1, 4, 12], size=(n, 1))
    e = top - rng.uniform(0, 1, size=(n, block_size)) * spread
    x = np.exp2(np.floor(e)) * rng.uniform(1, 2, size=(n, block_size))
    x *= rng.choice([-1.0, 1.0], size=x.shape)
    x[rng.random(x.shape) < 0.05] = 0.0
    x[rng.random(n) < 0.03] = 0.0  # whole zero blocks
    x = np.clip(x, -3e38, 3e38).astype(ftype)
    return x.view(itype)


def finite_scale_codes(scale_format):
    sfmt = golden.formats.get(scale_format)
    t = sfmt.table
    return np.flatnonzero(np.isfinite(t) & (t >= 0) & ~np.signbit(t)).astype(np.uint8)


# -- golden references ----------------------------------------------------------
def _quantize(p, inputs, **over):
    x = decode_x(inputs["x"], p["input_format"])
    opts = dict(block_size=p["block_size"], scale=p["scale_format"], method=p.get("method"),
                prevent_zero=p["prevent_zero"])
    opts.update(over)
    return golden.quantize(x, **opts)


def ref_scale(p, inputs):
    return {"scale": _quantize(p, inputs).scale_codes[:, 0]}


def ref_quantizer(p, inputs):
    q = _quantize(p, inputs)
    return {"scale": q.scale_codes[:, 0], "codes": q.element_codes}


def ref_element(p, inputs):
    """The golden rounding kernel on x / S (S = 0: every element ±0), as golden.quantize does."""
    x = decode_x(inputs["x"], p["input_format"])
    s = golden.formats.get(p["scale_format"]).table[np.asarray(inputs["scale"], np.uint8)]
    efmt = golden.formats.get("e2m1")
    codes = round_to_grid(efmt, x, divisor=np.where(s == 0, 1.0, s), rows=True)
    zero = s == 0
    codes[zero] = np.where(np.signbit(x[zero]), efmt.sign_bit, 0)
    return {"codes": codes}


def stim_x(p, rng, n):
    return {"x": random_blocks(rng, n, p["block_size"], p["input_format"], p["scale_format"])}


def stim_element(p, rng, n):
    x = stim_x(p, rng, n)
    scale = rng.choice(finite_scale_codes(p["scale_format"]), n)
    # half the vectors get the scale abs-max would choose, so codes cover 0..6
    good = _quantize(dict(p, method="abs-max", prevent_zero=False), x).scale_codes[:, 0]
    x["scale"] = np.where(rng.random(n) < 0.5, good, scale).astype(np.uint8)
    return x


def _build_scale(p):
    from .scale import ScaleUnit
    return ScaleUnit(scale_format=p["scale_format"], block_size=p["block_size"],
                     input_format=p["input_format"], method=p["method"],
                     prevent_zero=p["prevent_zero"], pipelined=p["pipelined"])


def _build_quantizer(p):
    from .quantizer import Quantizer
    return Quantizer(scale_format=p["scale_format"], block_size=p["block_size"],
                     input_format=p["input_format"], method=p["method"],
                     prevent_zero=p["prevent_zero"], pipelined=p["pipelined"])


def _build_element(p):
    from .element import ElementQuantizer
    return ElementQuantizer(scale_format=p["scale_format"], block_size=p["block_size"],
                            input_format=p["input_format"], pipelined=p["pipelined"])


def ref_dot(p, inputs):
    from finescale.golden import dotproduct
    args = (inputs["a"], inputs["b"], inputs["scale_a"], inputs["scale_b"])
    if not p["accumulate"]:
        return {"result": dotproduct.block_dot(*args, scale=p["scale_format"]).view(np.uint32)}
    if p["accumulate"] == "fp32":
        r = dotproduct.accumulate_fp32(*args, inputs["acc_clear"], scale=p["scale_format"])
        return {"result": r["result"].view(np.uint32), "nan": r["nan"].astype(np.uint8)}
    r = dotproduct.accumulate_dot(*args, inputs["acc_clear"], scale=p["scale_format"],
                                  headroom=p["headroom"])
    width = dotproduct.accumulator_layout(p["scale_format"], p["block_size"],
                                          headroom=p["headroom"]).width
    return {"result": r["result"].view(np.uint32), "acc_out": r["acc"] % (1 << width),
            "acc_overflow": r["overflow"].astype(np.uint8)}


def stim_dot(p, rng, n):
    """Random codes; scales mostly finite, a few NaN codes; some blocks all-zero;
    accumulate: a clear on about one block in five; FP32 accumulation: most scales in a
    narrow band of codes, so that block values are alike and their sums round and cancel."""
    codes = finite_scale_codes(p["scale_format"])
    sfmt = golden.formats.get(p["scale_format"])
    nan = np.flatnonzero(np.isnan(sfmt.table)).astype(np.uint8)
    a = rng.integers(0, 16, (n, p["block_size"])).astype(np.uint8)
    b = rng.integers(0, 16, (n, p["block_size"])).astype(np.uint8)
    a[rng.random(n) < 0.05] = 0
    sa, sb = rng.choice(codes, n), rng.choice(codes, n)
    if p["accumulate"] == "fp32":
        near = lambda: codes[np.clip(rng.integers(0, len(codes)) + rng.integers(-4, 5, n),
                                     0, len(codes) - 1)]
        band = rng.random(n) < 0.7
        sa, sb = np.where(band, near(), sa), np.where(band, near(), sb)
    sa[rng.random(n) < 0.02] = nan[0]
    out = {"a": a, "b": b, "scale_a": sa, "scale_b": sb}
    if p["accumulate"]:
        out["acc_clear"] = (rng.random(n) < 0.2).astype(np.uint8)
    return out


def _build_dot(p):
    from .dotproduct import DotProduct
    return DotProduct(scale_format=p["scale_format"], block_size=p["block_size"],
                      lanes=p["lanes"], accumulate=p["accumulate"], headroom=p["headroom"],
                      stages=p["stages"])


def ref_4o6(p, inputs):
    q = _quantize(p, inputs, method="4o6", metric=p["metric"],
                  error_frac_bits=p["error_frac_bits"])
    return {"scale": q.scale_codes[:, 0], "codes": q.element_codes,
            "choice": (q.choice[:, 0] == 4).astype(np.uint8)}


def _build_4o6(p):
    from .fouroversix import FourOverSix
    return FourOverSix(scale_format=p["scale_format"], block_size=p["block_size"],
                       input_format=p["input_format"], prevent_zero=p["prevent_zero"],
                       metric=p["metric"], error_frac_bits=p["error_frac_bits"],
                       pipelined=p["pipelined"])


def ref_selector(p, inputs):
    """The golden selector; ``choice`` is the index of the M it took."""
    q = _quantize(p, inputs)
    index = np.zeros(256, np.uint8)
    ms = np.array(selectors.parse(p["method"]).ms, int)
    index[ms] = np.arange(len(ms))
    return {"scale": q.scale_codes[:, 0], "codes": q.element_codes, "choice": index[q.choice[:, 0]]}


def _build_selector(p):
    from .selector import CandidateSearch
    return CandidateSearch(**{k: p[k] for k in ("method", "scale_format", "block_size",
                                                "input_format", "prevent_zero", "pipelined")})


_BLOCK = dict(scale_format="e4m3", block_size=16, input_format="bf16", pipelined=False)
_SCALE = dict(_BLOCK, method=None, prevent_zero=False)

UNITS: dict[str, Unit] = {
    "scale": Unit(_build_scale, _SCALE, ref_scale, stim_x),
    "element": Unit(_build_element, _BLOCK, ref_element, stim_element),
    "quantizer": Unit(_build_quantizer, _SCALE, ref_quantizer, stim_x),
    "4o6": Unit(_build_4o6, dict(_BLOCK, prevent_zero=False, metric="mse", error_frac_bits=8),
                ref_4o6, stim_x),
    "selector": Unit(_build_selector, dict(_SCALE, method="kc-m6_4-up"), ref_selector, stim_x),
    "dot": Unit(_build_dot, dict(scale_format="e4m3", block_size=16, lanes=None, accumulate=False,
                                 headroom=16, stages=None), ref_dot, stim_dot),
}

#: short tags of parameter values in top names
_TAGS = {"abs-max": "absmax", "mx": "mx"}


_DESCRIPTIONS: dict[str, tuple] = {}


def _mark_used(comp):
    """Silence Amaranth's 'created but never used' warning for a component built to inspect."""
    if getattr(comp, "_MustUse__used", True):
        return
    comp._MustUse__used = True
    for value in vars(comp).values():
        for item in value.values() if isinstance(value, dict) else [value]:
            if isinstance(item, Elaboratable):
                _mark_used(item)


@dataclasses.dataclass(frozen=True, eq=False)
class UnitSpec:
    """One unit with one parameter set (missing parameters take the unit's defaults)."""

    unit: str
    params: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; choose one of {list(UNITS)}")
        defaults = UNITS[self.unit].defaults
        unknown = set(self.params) - set(defaults)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)} for unit {self.unit!r}; "
                             f"it takes {sorted(defaults)}")
        p = dict(defaults)
        p.update(self.params)
        if "method" in p and p["method"] is None:
            p["method"] = _default_method(p)
        if self.unit == "dot":  # resolve the defaults the component would pick
            if p["accumulate"] is True:
                p["accumulate"] = "kulisch"
            if p["lanes"] is None:
                p["lanes"] = p["block_size"]
            if p["stages"] is None:
                p["stages"] = int(bool(p["accumulate"]))
        object.__setattr__(self, "params", p)

    def __eq__(self, other):
        return isinstance(other, UnitSpec) and self.name == other.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"UnitSpec({self.name})"

    @property
    def name(self) -> str:
        """Verilog top name, unique per unit + parameter set."""
        p = self.params
        parts = ["fs", self.unit,
                 p["scale_format"].replace("-", "_"), f"b{p['block_size']}"]
        if "input_format" in p:
            parts.append(p["input_format"])
        if "method" in p:
            parts.append(_TAGS.get(p["method"]) or re.sub(r"\W", "_", p["method"]))
        if p.get("prevent_zero"):
            parts.append("pz")
        if "metric" in p:
            parts.append(f"{p['metric']}f{p['error_frac_bits']}")
        if "lanes" in p and p["lanes"] != p["block_size"]:
            parts.append(f"l{p['lanes']}")
        if p.get("accumulate") == "fp32":
            parts.append("accfp32")
        elif p.get("accumulate"):
            parts.append(f"acc{p['headroom']}")
        if p.get("stages"):
            parts.append(f"s{p['stages']}")
        if p.get("pipelined"):
            parts.append("pipe")
        return "_".join(parts)

    def build(self) -> wiring.Component:
        return UNITS[self.unit].build(self.params)

    @property
    def latency(self) -> int:
        return self._describe()[0]

    @property
    def beats(self) -> int:
        """Cycles a block takes at the input (block_size / lanes)."""
        return self.params["block_size"] // self.params.get("lanes", self.params["block_size"])

    @property
    def stateful(self) -> bool:
        """Whether an output depends on earlier blocks or beats (not only on one block)."""
        return self.beats > 1 or bool(self.params.get("accumulate"))

    @property
    def clocked(self) -> bool:
        """Whether the unit has clk / rst ports."""
        return self.latency > 0 or self.stateful

    def reference(self, inputs: dict) -> dict:
        """Every output port (but valid_out) computed by the golden model."""
        return UNITS[self.unit].reference(self.params, inputs)

    def random_inputs(self, rng, n: int) -> dict:
        """``n`` valid stimulus vectors for every input port (but valid_in)."""
        return UNITS[self.unit].stimulus(self.params, rng, n)

    def ports(self) -> list[dict]:
        """The sidecar's port list: name, dir, width, lanes, lane_width."""
        return [dict(p) for p in self._describe()[1]]

    def _describe(self):
        """(latency, ports) of a throwaway build, computed once per top name."""
        if self.name not in _DESCRIPTIONS:
            comp = self.build()
            _mark_used(comp)
            ports = []
            if comp.latency or self.stateful:
                ports += [dict(name=n, dir="in", width=1, lanes=None, lane_width=None)
                          for n in ("clk", "rst")]
            for name, member in comp.signature.members.items():
                shape = member.shape
                if isinstance(shape, data.ArrayLayout):
                    lanes, lw = shape.length, Shape.cast(shape.elem_shape).width
                    width = lanes * lw
                else:
                    lanes, lw, width = None, None, Shape.cast(shape).width
                ports.append(dict(name=name, dir="in" if member.flow == wiring.In else "out",
                                  width=width, lanes=lanes, lane_width=lw))
            _DESCRIPTIONS[self.name] = (comp.latency, tuple(ports))
        return _DESCRIPTIONS[self.name]

    def sidecar(self) -> dict:
        return {"top": self.name, "unit": self.unit, "params": dict(self.params),
                "latency": self.latency, "beats": self.beats,
                "clock": "clk" if self.clocked else None, "reset": "rst" if self.clocked else None,
                "ports": self.ports()}


def spec(unit: str, **params) -> UnitSpec:
    """Shorthand: ``spec("scale", scale_format="ue5m3", block_size=32)``."""
    return UnitSpec(unit, params)


def _variants(unit, fmt):
    """The parameter variants of ``unit`` in the matrix for scale format ``fmt``."""
    if unit == "scale":
        has_zero = golden.formats.get(fmt).zero_code is not None
        return [{}] + ([{"prevent_zero": True}] if has_zero else [])
    if unit == "dot":  # the block in 4-lane beats; accumulating over blocks (exact, FP32)
        return [{}, {"lanes": 4}, {"accumulate": "kulisch"}, {"accumulate": "fp32"}]
    if unit == "selector":  # the front's cheap point (kc-m6_4-up), E4M3 only
        return [{}] if fmt == "e4m3" else []
    return [{}]


def _pipelined(unit, pipe):
    """The parameter that makes ``unit`` pipelined (the dot product's ``stages``)."""
    if unit == "dot":
        return {"stages": 4 if pipe else None}
    return {"pipelined": pipe}


def matrix(which: str = "default") -> list[UnitSpec]:
    """The units the regression and the area study run.

    ``default``: scale formats {e4m3, ue5m3, e8m0} x block sizes {4, 16, 32} x
    {scale (abs-max; mx for E8M0), scale with prevent_zero (not for E8M0, which
    has no zero), element, quantizer, 4o6, dot (all lanes, 4 lanes, accumulating: Kulisch,
    FP32)}: every registered unit kind (:data:`UNITS`).
    ``all`` adds block size 8, FP32 inputs and the pipelined variant of each
    (the dot product with all 4 stages).  4o6: mse, F = 8; dot: codes in, no input format.
    """
    if which not in ("default", "all"):
        raise ValueError(f"matrix must be 'default' or 'all', not {which!r}")
    blocks = (4, 16, 32) if which == "default" else (4, 8, 16, 32)
    inputs = ("bf16",) if which == "default" else ("bf16", "fp32")
    pipes = (False,) if which == "default" else (False, True)
    units = list(UNITS)
    out = []
    for unit, fmt, n, inp, pipe in itertools.product(units, SCALE_FORMATS, blocks, inputs, pipes):
        base = dict(scale_format=fmt, block_size=n, **_pipelined(unit, pipe))
        if "input_format" in UNITS[unit].defaults:
            base["input_format"] = inp
        elif inp != "bf16":
            continue
        for extra in _variants(unit, fmt):
            if extra.get("lanes", 0) < n:  # fewer lanes than the block only
                out.append(UnitSpec(unit, dict(base, **extra)))
    return out


def formatscope_dp32() -> UnitSpec:
    """Our FP32-accumulating dot product in the scope of FormatScope's MXFP4 DP32: 32 lanes of
    E2M1 pairs a clock, E8M0 scales, an FP32 total register with a sticky NaN flag, the new total
    one clock after its block (``finescale rtl --unit dot --scale-format e8m0 --block-size 32
    --accumulate fp32 --stages 1``; the README compares the two port lists and rules)."""
    return spec("dot", scale_format="e8m0", block_size=32, lanes=32, accumulate="fp32", stages=1)

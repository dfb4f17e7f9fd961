"""Registry of the RTL units: what each is, how to build it, its name, latency and ports.

A :class:`UnitSpec` names one unit with one parameter set.  It builds the
Amaranth component, gives the Verilog top name, latency and port list, so the
Amaranth tests, the cocotb regression and the synthesis flow all share one
list of units (:func:`matrix`).  What each must compute, and its stimulus, are
:mod:`finescale.sim.references`' (``UnitSpec.reference`` / ``random_inputs``
call them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import re
import warnings
from typing import Callable

from amaranth.hdl import Shape, UnusedElaboratable
from amaranth.lib import data, wiring

from finescale import golden

__all__ = ["UnitSpec", "UNITS", "matrix", "spec", "formatscope_dp32"]

SCALE_FORMATS = golden.blockformat.SCALE_FORMATS


@dataclasses.dataclass(frozen=True)
class Unit:
    """One kind of unit: its builder and parameter defaults (its golden reference and stimulus
    are :mod:`finescale.sim.references`')."""

    build: Callable
    defaults: dict


def _default_rule(params):
    return golden.blockformat.scale_rule(params["scale_format"])


def _build_scale(p):
    from .scale import ScaleUnit
    return ScaleUnit(scale_format=p["scale_format"], block_size=p["block_size"],
                     input_format=p["input_format"], rule=p["rule"],
                     prevent_zero=p["prevent_zero"], pipelined=p["pipelined"])


def _build_quantizer(p):
    from .quantizer import Quantizer
    return Quantizer(scale_format=p["scale_format"], block_size=p["block_size"],
                     input_format=p["input_format"], rule=p["rule"],
                     prevent_zero=p["prevent_zero"], pipelined=p["pipelined"])


def _build_element(p):
    from .element import ElementQuantizer
    return ElementQuantizer(scale_format=p["scale_format"], block_size=p["block_size"],
                            input_format=p["input_format"], pipelined=p["pipelined"])


def _build_dot(p):
    from .dotproduct import DotProduct
    return DotProduct(scale_format=p["scale_format"], block_size=p["block_size"],
                      lanes=p["lanes"], accumulate=p["accumulate"], headroom=p["headroom"],
                      stages=p["stages"])


def _build_4o6(p):
    from .fouroversix import FourOverSix
    return FourOverSix(scale_format=p["scale_format"], block_size=p["block_size"],
                       input_format=p["input_format"], prevent_zero=p["prevent_zero"],
                       metric=p["metric"], error_frac_bits=p["error_frac_bits"],
                       pipelined=p["pipelined"])


def _build_selector(p):
    from .predictor import GapPredictor
    from .selector import CandidateSearch
    unit = GapPredictor if golden.selectors.parse(p["rule"]).kind == "predict" else \
        CandidateSearch
    return unit(**{k: p[k] for k in ("rule", "scale_format", "block_size", "input_format",
                                     "prevent_zero", "pipelined")})


_BLOCK = dict(scale_format="e4m3", block_size=16, input_format="bf16", pipelined=False)
_SCALE = dict(_BLOCK, rule=None, prevent_zero=False)

UNITS: dict[str, Unit] = {
    "scale": Unit(_build_scale, _SCALE),
    "element": Unit(_build_element, _BLOCK),
    "quantizer": Unit(_build_quantizer, _SCALE),
    "4o6": Unit(_build_4o6, dict(_BLOCK, prevent_zero=False, metric="mse", error_frac_bits=8)),
    "dot": Unit(_build_dot, dict(scale_format="e4m3", block_size=16, lanes=None, accumulate=False,
                                 headroom=16, stages=None)),
    "selector": Unit(_build_selector, dict(_SCALE, rule=golden.selectors.FRONT[0])),
}


_DESCRIPTIONS: dict[str, tuple] = {}


@contextlib.contextmanager
def inspecting():
    """Build components only to read their signature: Amaranth's 'created but never used'
    warning (:class:`~amaranth.hdl.UnusedElaboratable`) is filtered, the documented way, until
    they are collected at the end of the block (drop every reference to them inside it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


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
        if "rule" in p and p["rule"] is None:
            p["rule"] = _default_rule(p)
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
        if "rule" in p:
            parts.append(re.sub(r"\W", "", p["rule"]))  # a Verilog-safe tag of the rule
        if p.get("prevent_zero"):
            parts.append("pz")
        if "metric" in p:
            parts.append(re.sub(r"\W", "", f"{p['metric']}f{p['error_frac_bits']}"))
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
        from finescale.sim import references
        return references.REFERENCES[self.unit](self.params, inputs)

    def random_inputs(self, rng, n: int) -> dict:
        """``n`` valid stimulus vectors for every input port (but valid_in)."""
        from finescale.sim import references
        return references.STIMULUS[self.unit](self.params, rng, n)

    def ports(self) -> list[dict]:
        """The sidecar's port list: name, dir, width, lanes, lane_width."""
        return [dict(p) for p in self._describe()[1]]

    def _describe(self):
        """(latency, ports) of a throwaway build, computed once per top name."""
        if self.name not in _DESCRIPTIONS:
            with inspecting():
                comp = self.build()
                _DESCRIPTIONS[self.name] = (comp.latency, self._ports(comp))
                del comp
        return _DESCRIPTIONS[self.name]

    def _ports(self, comp) -> tuple:
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
        return tuple(ports)

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
    if unit == "selector":  # the accuracy front's selectors with RTL, E4M3 only
        return [{"rule": m} for m in golden.selectors.FRONT] if fmt == "e4m3" else []
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
    FP32), selector (E4M3: each of :data:`finescale.golden.selectors.FRONT`)}: every
    registered unit kind (:data:`UNITS`).
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

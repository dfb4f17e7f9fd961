"""Ready/valid streams with backpressure around the fixed-latency pipelined units.

:class:`Streamed` gives any pipelined unit of this package (ports ``valid_in``,
``valid_out``, ``latency`` >= 1) an ``amaranth.lib.stream`` input ``i`` and
output ``o`` whose payloads are ``data.StructLayout``\\ s of the unit's data
ports.  :class:`StreamSpec` is the registry entry of a streamed unit (the
inner unit's golden reference, stimulus and latency) and :func:`matrix` the
unit source the regression takes (``--source finescale.hw.streams:matrix``):
the streamed variant is a wrapper, so ``hw/units.py`` is unchanged.
"""

from __future__ import annotations

import dataclasses

from amaranth.hdl import EnableInserter, Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import units

__all__ = ["Streamed", "StreamSpec", "matrix"]


class Streamed(wiring.Component):
    """A pipelined unit behind a ready/valid input and output stream.

    Backpressure stalls the whole pipeline: the unit's ``sync`` domain is
    wrapped in ``EnableInserter(advance)`` with ``advance = o.ready | ~o.valid``.
    While the sink refuses a valid output, every register of the unit (data,
    ``valid`` bits, beat counter, accumulator) holds, so the output and its
    payload stay put and nothing is lost or duplicated; ``i.ready`` is
    ``advance``, so the source waits too.  A bubble at the output never stalls
    (``~o.valid``), so gaps from the source are squeezed out while the sink
    waits.  No FIFO: the cost is one AND-OR gate and the enable fan-out, the
    price is a combinational path from ``o.ready`` to ``i.ready`` (allowed by
    the stream rules: ``ready`` may depend on anything but ``valid`` of the
    same stream must not depend on ``ready``, and ``o.valid`` is a register).

    Latency: ``latency`` cycles (the unit's) from a block's last accepted beat
    to its output while the sink is ready.  Throughput: one beat a cycle when
    never stalled.  Reset (``rst``) is not gated by the enable.

    Members
    -------
    i : ``In(stream.Signature(StructLayout))``
        one beat: the unit's input ports but ``valid_in``, by name.
    o : ``Out(stream.Signature(StructLayout))``
        one block's result: the unit's output ports but ``valid_out``.
    """

    def __new__(cls, unit, *args, **kwargs):
        # refused before the component exists, so that no "never used" warning follows
        if not isinstance(unit, wiring.Component):
            raise TypeError(f"unit must be an Amaranth wiring.Component, got {unit!r}")
        members = unit.signature.members
        if "valid_in" not in members or "valid_out" not in members:
            raise ValueError(f"{type(unit).__name__} has no valid_in / valid_out ports")
        latency = int(getattr(unit, "latency", 0))
        if latency < 1:
            raise ValueError(f"{type(unit).__name__} has latency {latency}; a stream "
                             "needs a pipelined unit (latency >= 1)")
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, unit: wiring.Component):
        members = unit.signature.members
        self.unit = unit
        self._latency = int(unit.latency)
        ins = {n: m.shape for n, m in members.items() if m.flow == In and n != "valid_in"}
        outs = {n: m.shape for n, m in members.items() if m.flow == Out and n != "valid_out"}
        super().__init__({"i": In(stream.Signature(data.StructLayout(ins))),
                          "o": Out(stream.Signature(data.StructLayout(outs)))})

    @property
    def latency(self) -> int:
        return self._latency

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.submodules.unit = EnableInserter({"sync": advance})(self.unit)
        u = self.unit
        m.d.comb += [advance.eq(self.o.ready | ~self.o.valid),
                     self.i.ready.eq(advance),
                     u.valid_in.eq(self.i.valid & advance),
                     self.o.valid.eq(u.valid_out)]
        self.connect_payloads(m)
        return m

    def connect_payloads(self, m):
        """Payload fields to the unit's ports of the same names, and back."""
        for name in self.i.payload.shape().members:
            m.d.comb += getattr(self.unit, name).eq(getattr(self.i.payload, name))
        for name in self.o.payload.shape().members:
            m.d.comb += getattr(self.o.payload, name).eq(getattr(self.unit, name))


@dataclasses.dataclass(frozen=True, eq=False)
class StreamSpec:
    """A :class:`~.units.UnitSpec` behind :class:`Streamed`: the same parameters, golden
    reference, stimulus, latency and beats; top name ``<unit name>_stream``."""

    base: units.UnitSpec
    stream = True

    def __post_init__(self):
        if not isinstance(self.base, units.UnitSpec):
            raise TypeError(f"base must be a UnitSpec, got {self.base!r}")

    unit = property(lambda self: self.base.unit)
    params = property(lambda self: self.base.params)
    latency = property(lambda self: self.base.latency)
    beats = property(lambda self: self.base.beats)
    stateful = property(lambda self: self.base.stateful)
    clocked = True

    @property
    def name(self) -> str:
        return f"{self.base.name}_stream"

    def __repr__(self):
        return f"StreamSpec({self.name})"

    def build(self) -> Streamed:
        return Streamed(self.base.build())

    def reference(self, inputs: dict) -> dict:
        return self.base.reference(inputs)

    def sidecar(self) -> dict:
        """The base unit's sidecar under this top name, its ports the flattened stream ports
        (``i__valid``, ``i__payload``, ...) as the Verilog names them."""
        ports = [dict(name=n, dir="in", width=1, lanes=None, lane_width=None)
                 for n in ("clk", "rst")]
        with units.inspecting():  # built to read its signature only
            comp = self.build()
            for path, member, _ in comp.signature.flatten(comp):
                ports.append(dict(name="__".join(map(str, path)),
                                  dir="in" if member.flow == wiring.In else "out",
                                  width=Shape.cast(member.shape).width, lanes=None,
                                  lane_width=None))
            del comp
        return dict(self.base.sidecar(), top=self.name, stream=True, ports=ports)

    def random_inputs(self, rng, n: int) -> dict:
        return self.base.random_inputs(rng, n)


def pipelined(spec) -> bool:
    """Whether ``spec`` has pipeline registers (``pipelined``, or dot-product ``stages``)."""
    return bool(spec.params.get("pipelined") or spec.params.get("stages"))


def matrix(which: str = "default") -> list[StreamSpec]:
    """The streamed variant of every pipelined unit of :func:`.units.matrix` (``which``)."""
    return [StreamSpec(s) for s in units.matrix(which) if pipelined(s)]

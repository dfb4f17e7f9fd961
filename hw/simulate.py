"""Run a unit in Amaranth's simulator on many vectors: numpy arrays in, numpy arrays out.

Inputs and outputs are the unit's ports by name, with a leading vector axis
and a lane axis for lane ports (the layout of :meth:`UnitSpec.reference`).
A combinational unit is evaluated vector by vector; a pipelined one gets a
new vector every cycle and its outputs are collected ``latency`` cycles
later, checking ``valid_out`` on the way.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data, wiring
from amaranth.sim import Simulator

__all__ = ["simulate", "pack_lanes", "unpack_lanes"]


def _lanes(port):
    """(lanes, lane width) of a lane port, (None, width) of a plain one."""
    shape = port.shape()
    if isinstance(shape, data.ArrayLayout):
        return shape.length, Shape.cast(shape.elem_shape).width
    return None, Shape.cast(shape).width


def pack_lanes(values, width: int) -> list[int]:
    """Rows of lane values -> one integer per row, lane i in bits [w*i+w-1 : w*i]."""
    values = np.asarray(values, dtype=np.uint64)
    out = [0] * values.shape[0]
    for lane in reversed(range(values.shape[1])):
        col = values[:, lane].tolist()
        out = [(o << width) | c for o, c in zip(out, col)]
    return out


def unpack_lanes(words, lanes: int, width: int) -> np.ndarray:
    mask = (1 << width) - 1
    return np.array([[(w >> (width * i)) & mask for i in range(lanes)] for w in words],
                    dtype=np.uint64)


def simulate(dut, inputs: dict[str, np.ndarray], *, latency: int = 0) -> dict[str, np.ndarray]:
    """Outputs of ``dut`` (every ``Out`` port but ``valid_out``) for the vectors in ``inputs``."""
    sig = dut.signature
    ins = {n: m for n, m in sig.members.items() if m.flow == wiring.In and n != "valid_in"}
    outs = {n: m for n, m in sig.members.items() if m.flow == wiring.Out and n != "valid_out"}
    missing = set(ins) - set(inputs)
    if missing:
        raise ValueError(f"inputs missing for port(s) {sorted(missing)}")
    n = len(next(iter(inputs.values())))
    words = {}
    for name in ins:
        lanes, width = _lanes(getattr(dut, name))
        arr = np.asarray(inputs[name])
        words[name] = pack_lanes(arr, width) if lanes else [int(v) for v in arr.tolist()]
    got = {name: [] for name in outs}
    valids = []
    has_valid = "valid_in" in sig.members

    async def bench(ctx):
        def sample():
            for name in outs:
                got[name].append(ctx.get(getattr(dut, name).as_value()
                                         if hasattr(getattr(dut, name), "as_value")
                                         else getattr(dut, name)))
            if has_valid:
                valids.append(ctx.get(dut.valid_out))

        for k in range(n + latency):
            for name in ins:
                port = getattr(dut, name)
                target = port.as_value() if hasattr(port, "as_value") else port
                ctx.set(target, words[name][k] if k < n else 0)
            if has_valid:
                ctx.set(dut.valid_in, int(k < n))
            if latency:
                await ctx.tick()
                if k + 1 >= latency and k + 1 - latency < n:
                    sample()
            else:
                await ctx.delay(1e-9)
                sample()

    sim = Simulator(dut)
    if latency:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    if has_valid and not all(valids):
        raise AssertionError("valid_out was low for a valid vector")
    result = {}
    for name in outs:
        lanes, width = _lanes(getattr(dut, name))
        result[name] = (unpack_lanes(got[name], lanes, width) if lanes
                        else np.array(got[name], dtype=np.uint64))
    return result

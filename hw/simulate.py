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
    """Outputs of ``dut`` (every ``Out`` port but ``valid_out``) for the vectors in ``inputs``.

    A lane port narrower than its input array (a dot product with fewer lanes
    than the block) gets the vector in consecutive beats of that many lanes;
    other inputs are held for all of a vector's beats.  A unit with a clock
    (``latency``, beats, or state such as an accumulator) runs one beat a cycle
    from reset, and the cycles ``valid_out`` is high must be exactly those
    ``latency`` after each vector's last beat.
    """
    sig = dut.signature
    ins = {n: m for n, m in sig.members.items() if m.flow == wiring.In and n != "valid_in"}
    outs = {n: m for n, m in sig.members.items() if m.flow == wiring.Out and n != "valid_out"}
    missing = set(ins) - set(inputs)
    if missing:
        raise ValueError(f"inputs missing for port(s) {sorted(missing)}")
    n = len(next(iter(inputs.values())))
    beats = 1
    words = {}  # port -> one list of beat words per vector
    for name in ins:
        lanes, width = _lanes(getattr(dut, name))
        arr = np.asarray(inputs[name])
        if lanes:
            if arr.shape[1] % lanes:
                raise ValueError(f"{name}: {arr.shape[1]} lanes do not split into beats of {lanes}")
            beats = arr.shape[1] // lanes
            arr = arr.reshape(n * beats, lanes)
            words[name] = np.array(pack_lanes(arr, width), dtype=object).reshape(n, beats)
        else:
            words[name] = np.array([int(v) for v in arr.tolist()], dtype=object)[:, None]
    words = {k: np.broadcast_to(v, (n, beats)).reshape(-1).tolist() for k, v in words.items()}
    clocked = bool(latency) or beats > 1 or bool(getattr(dut, "accumulate", False))
    got = {name: [] for name in outs}
    valid_at = []
    has_valid = "valid_in" in sig.members
    cycles = n * beats

    async def bench(ctx):
        def sample(k):
            if has_valid and not ctx.get(dut.valid_out):
                return
            valid_at.append(k)
            for name in outs:
                port = getattr(dut, name)
                got[name].append(ctx.get(port.as_value() if hasattr(port, "as_value") else port))

        for k in range(cycles + latency):
            for name in ins:
                port = getattr(dut, name)
                target = port.as_value() if hasattr(port, "as_value") else port
                ctx.set(target, words[name][k] if k < cycles else 0)
            if has_valid:
                ctx.set(dut.valid_in, int(k < cycles))
            if not clocked:
                await ctx.delay(1e-9)
            if not latency:
                sample(k)
            if clocked:
                await ctx.tick()
            if latency:
                sample(k - latency + 1)

    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = [i * beats + beats - 1 for i in range(n)] if has_valid else list(range(cycles))
    if valid_at != want:
        raise AssertionError(f"valid_out high in cycles {valid_at[:8]}..., expected {want[:8]}...")
    result = {}
    for name in outs:
        lanes, width = _lanes(getattr(dut, name))
        if lanes:
            result[name] = unpack_lanes(got[name], lanes, width)
        else:
            words = [v % (1 << width) for v in got[name]]  # signed ports as their bits
            result[name] = np.array(words, dtype=np.uint64 if width <= 64 else object)
    return result


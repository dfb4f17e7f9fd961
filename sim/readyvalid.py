"""Per-cycle source, sink and checks of a ready/valid unit, for any simulator.

:class:`StreamBench` decides, cycle by cycle, what a source with random gaps
and a sink with random stalls drive, and checks what the unit answered
(settled values before the clock edge): the stream rules (a valid output is
held, payload unchanged, until taken), one output per block in order with
nothing lost or duplicated, and, in the first ``calm`` cycles (no gaps, no
stalls), one beat accepted every cycle and each block out exactly ``latency``
cycles after its last beat.  The cocotb ``TB`` and the Amaranth tests drive it.

:func:`pack_payload` / :func:`unpack_payload` turn port arrays into payload
integers of a ``data.StructLayout`` and back (fields at their layout offsets,
lane ``i`` of an array field ``W*i`` bits above its start).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data


def fields(layout: data.StructLayout) -> list[tuple]:
    """(name, offset, lanes or None, lane width) of each field of ``layout``."""
    out = []
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.ArrayLayout):
            out.append((name, field.offset, shape.length, Shape.cast(shape.elem_shape).width))
        else:
            out.append((name, field.offset, None, Shape.cast(shape).width))
    return out


def pack_payload(layout: data.StructLayout, rows: dict, beats: int = 1) -> list[int]:
    """One payload int per beat: lane fields split into ``beats`` beats, others held."""
    words = None
    for name, offset, lanes, lw in fields(layout):
        v = np.asarray(rows[name]).astype(np.uint64)
        n = len(v)
        if lanes is None:
            col = np.repeat(v, beats).astype(object) << offset
        else:
            v = v.reshape(n * beats, lanes)
            col = np.zeros(n * beats, object)
            for lane in range(lanes):
                col |= v[:, lane].astype(object) << (offset + lw * lane)
        words = col if words is None else words | col
    return [int(w) for w in words]


def unpack_payload(layout: data.StructLayout, words) -> dict:
    """Port -> array (as :func:`.scoreboard.unpack` gives) from payload ints."""
    words = np.array(list(words) + [0], dtype=object)[:-1]
    out = {}
    for name, offset, lanes, lw in fields(layout):
        mask = (1 << lw) - 1
        if lanes is None:
            col = (words >> offset) & mask
            out[name] = col if lw > 64 else col.astype(np.uint64)
        else:
            out[name] = np.stack([((words >> (offset + lw * i)) & mask).astype(np.uint64)
                                  for i in range(lanes)], axis=-1).reshape(len(words), lanes)
    return out


class StreamBench:
    """Source gaps, sink stalls and the checks of one ready/valid stream of ``n`` blocks.

    Each cycle: :meth:`drive` returns (``i.valid``, ``i.payload``, ``o.ready``)
    to drive, then :meth:`observe` takes the settled ``i.ready``, ``o.valid`` and
    ``o.payload`` before the clock edge.  ``payloads`` holds one int per beat.
    """

    def __init__(self, payloads: list[int], *, beats: int, latency: int, rng, gap=0.3,
                 stall=0.3, calm: int = 0):
        self.payloads, self.beats, self.latency = payloads, beats, latency
        self.blocks = len(payloads) // beats
        self.rng, self.gap, self.stall, self.calm = rng, gap, stall, calm
        self.t = 0            # cycle
        self.k = 0            # next beat to offer
        self.offering = False
        self.ready = True
        self.last_in: list[int] = []   # cycle each block's last beat was accepted
        self.outputs: list[int] = []
        self.out_cycle: list[int] = []
        self.errors: list[str] = []
        self.held = None      # (payload) of a valid output the sink refused last cycle
        self.tail = 0         # cycles run after the last block came out

    @property
    def done(self) -> bool:
        """All blocks out and ``latency + 4`` quiet cycles after them (a duplicate shows)."""
        return (len(self.outputs) >= self.blocks and self.tail > self.latency + 4) or \
            len(self.errors) > 20 or self.t > 20 * (len(self.payloads) + self.latency) + 100

    def drive(self) -> tuple[int, int, int]:
        calm = self.t < self.calm
        if not self.offering and self.k < len(self.payloads):
            self.offering = calm or self.rng.random() >= self.gap
        self.ready = calm or self.rng.random() >= self.stall
        word = self.payloads[self.k] if self.offering else 0
        return int(self.offering), word, int(self.ready)

    def observe(self, i_ready: int, o_valid: int, o_payload: int) -> None:
        t, calm = self.t, self.t < self.calm
        if self.held is not None and (not o_valid or o_payload != self.held):
            self.errors.append(f"cycle {t}: a refused output was dropped or changed")
        self.held = o_payload if (o_valid and not self.ready) else None
        if calm and self.offering and not i_ready:
            self.errors.append(f"cycle {t}: input not ready with the sink always ready")
        if self.offering and i_ready:  # beat k is taken at this edge
            if self.k % self.beats == self.beats - 1:
                self.last_in.append(t)
            self.k += 1
            self.offering = False
        if o_valid and self.ready:
            j = len(self.outputs)
            if j >= self.blocks:
                self.errors.append(f"cycle {t}: output {j + 1} for {self.blocks} blocks")
            elif j >= len(self.last_in) or self.last_in[j] + self.latency > t:
                self.errors.append(f"cycle {t}: output {j} before its block went in")
            elif self.last_in[j] + self.latency < t and t < self.calm:
                self.errors.append(f"cycle {t}: block {j} out {t - self.last_in[j]} cycles "
                                   f"after its last beat, latency is {self.latency}")
            self.outputs.append(o_payload)
            self.out_cycle.append(t)
        if len(self.outputs) >= self.blocks:
            self.tail += 1
        self.t += 1

    def finish(self) -> list[str]:
        """Errors, with a lost-block check; call when :attr:`done`."""
        if len(self.outputs) < self.blocks:
            self.errors.append(f"{len(self.outputs)} of {self.blocks} blocks came out "
                               f"after {self.t} cycles")
        return self.errors

"""The cocotb testbench of every unit: a ``TB`` that drives blocks and a test that checks them.

The runner (:mod:`.runner`) starts the simulator with the unit's name, seed,
vector count and mode in ``FINESCALE_*`` environment variables; the test
rebuilds the UnitSpec from the registry, generates the stimulus
(:func:`.stimulus.for_spec`, all up front as integers), drives it, collects the
outputs and checks them once at the end against ``spec.reference``, then
writes a JSON report for the runner and fails on a mismatch or a missed
coverage goal.

Combinational units get one vector per 1 ns step.  Clocked units get one beat
a clock (a block is ``spec.beats`` beats of the lane ports, other inputs held)
with random valid gaps and a reset in the middle of the stream; outputs are
matched to the block whose last beat went in ``spec.latency`` cycles earlier
and ``valid_out`` is checked every cycle.  Blocks a reset takes from a
pipeline are sent again; a unit with state across blocks or beats
(``spec.stateful``: an accumulator, a block in several beats) is reset only
between blocks with its pipeline drained and, if it accumulates, just before
a block that clears the sum, so the reset is invisible to the reference.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque

import cocotb
import numpy as np
from amaranth.hdl import Shape
from amaranth.lib.wiring import Flow
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from . import coverage, scoreboard, stimulus, units


def unsigned(value) -> int:
    """A port value as an unsigned integer (one-bit ports are ``Logic``, wider ``LogicArray``)."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class TB:
    """Owns the unit's clock, reset and input drivers and samples its outputs."""

    def __init__(self, dut, spec):
        self.dut, self.spec = dut, spec
        self.latency = int(spec.latency)
        self.beats = int(getattr(spec, "beats", 1))
        self.stateful = bool(getattr(spec, "stateful", False))
        self.clocked = bool(getattr(spec, "clocked", self.latency > 0))
        sig = spec.build().signature
        self.widths = {n: Shape.cast(m.shape).width for n, m in sig.members.items()}
        self.inputs = [n for n, m in sig.members.items() if m.flow == Flow.In]
        self.outputs = [n for n, m in sig.members.items() if m.flow == Flow.Out]
        self.data_in = [n for n in self.inputs if n != "valid_in"]
        self.data_out = [n for n in self.outputs if n != "valid_out"]
        self.errors: list[str] = []
        self.resets = 0  # mid-stream resets driven

    def words(self, inputs: dict) -> dict:
        """Port -> per vector the list of its beats' words (lane ports split into beats)."""
        out = {}
        for p in self.data_in:
            v = np.asarray(inputs[p])
            n = len(v)
            if v.ndim > 1:
                lanes = v.shape[1] // self.beats
                flat = scoreboard.pack(v.reshape(n * self.beats, lanes), self.widths[p] // lanes)
                out[p] = [flat[i * self.beats:(i + 1) * self.beats] for i in range(n)]
            else:
                out[p] = [[int(x)] * self.beats for x in v]
        return out

    def _handles(self, names):
        return [getattr(self.dut, n) for n in names]

    async def start(self):
        """Start the clock (clocked units) and hold reset for two cycles."""
        if self.clocked:
            Clock(self.dut.clk, 10, unit="ns").start()
            self.dut.rst.value = 1
            self._valid(0)
            for _ in range(2):
                await FallingEdge(self.dut.clk)
            self.dut.rst.value = 0

    def _valid(self, v):
        if "valid_in" in self.inputs:
            self.dut.valid_in.value = v

    async def run_comb(self, words: dict) -> dict:
        """Drive every vector for 1 ns and sample the outputs; returns port -> list of ints."""
        ins = list(zip(self._handles(self.data_in), (words[n] for n in self.data_in)))
        outs = self._handles(self.data_out)
        got = [[] for _ in outs]
        vo = getattr(self.dut, "valid_out", None)
        self._valid(1)
        step = Timer(1, unit="ns")
        for i in range(len(ins[0][1])):
            for h, w in ins:
                h.value = w[i][0]
            await step
            for g, h in zip(got, outs):
                g.append(unsigned(h.value))
            if vo is not None and not vo.value:
                self.errors.append(f"valid_out low for vector {i} with valid_in high")
        return dict(zip(self.data_out, got))

    async def run_stream(self, words: dict, rng: random.Random, *, gap=0.2) -> dict:
        """Stream every block beat by beat (valid gaps, a mid-stream reset); port -> ints."""
        dut, lat, beats = self.dut, self.latency, self.beats
        n = len(words[self.data_in[0]])
        ins = list(zip(self._handles(self.data_in), (words[p] for p in self.data_in)))
        outs = self._handles(self.data_out)
        got = {p: [None] * n for p in self.data_out}
        clears = words.get("acc_clear")
        queue = deque(range(n))
        cur, beat = -1, 0     # block being fed and its next beat
        fed: list[int] = []   # block whose last beat was driven at each falling edge (-1: none)
        rst: list[bool] = []  # reset driven at each falling edge
        killed: set[int] = set()
        reset_left, reset_done = 0, False
        done, sent, t = 0, 0, 0

        def sample(k):
            exp = fed[k] if k >= 0 and not any(rst[k:t + (lat == 0)]) else -1
            vo = int(dut.valid_out.value)
            if vo != (exp >= 0):
                self.errors.append(f"cycle {t}: valid_out={vo}, expected {int(exp >= 0)}")
            if exp >= 0:
                for p, h in zip(self.data_out, outs):
                    got[p][exp] = unsigned(h.value)
            return int(exp >= 0)

        def quiet() -> bool:
            """A reset now is invisible: between blocks, nothing in flight, a clear next."""
            return (cur < 0 and done == sent and bool(queue)
                    and (clears is None or clears[queue[0]][0] == 1))

        while done < n:
            if t > 4 * (n * beats + lat) + 100:
                self.errors.append(f"stream stalled: {done} of {n} blocks out after {t} cycles")
                break
            await FallingEdge(dut.clk)
            if lat:  # the block whose last beat went in `lat` edges ago, unless a reset took it
                done += sample(t - lat)
            # drive the next cycle: a two-cycle reset once half the blocks are out
            if not reset_done and done >= n // 2 and (not self.stateful or quiet()):
                reset_done, reset_left = True, 2
                self.resets += 1
            if reset_left:
                reset_left -= 1
                dut.rst.value = 1
                self._valid(0)
                rst.append(True)
                fed.append(-1)
                for j in range(max(0, t - lat + 1), t):  # in flight: lost, send again
                    if fed[j] >= 0 and j not in killed:
                        killed.add(j)
                        queue.append(fed[j])
            else:
                dut.rst.value = 0
                rst.append(False)
                if cur < 0 and queue and rng.random() >= gap:
                    cur, beat = queue.popleft(), 0
                drive = cur >= 0 and (beat == 0 or rng.random() >= gap)
                self._valid(int(drive))
                fed.append(cur if drive and beat == beats - 1 else -1)
                if drive:
                    for h, w in ins:
                        h.value = w[cur][beat]
                    beat += 1
                    if beat == beats:
                        cur, sent = -1, sent + 1
            if not lat:  # combinational output of this edge's beat
                await Timer(1, unit="ns")
                done += sample(t)
            t += 1
        self._valid(0)
        return got


def _env(name, default=None):
    return os.environ.get(f"FINESCALE_{name}", default)


@cocotb.test()
async def regress_unit(dut):
    """Drive the stimulus of one unit and compare every output with the golden model."""
    t_start = time.perf_counter()
    spec = units.find(_env("SPEC"), _env("SOURCE", units.DEFAULT_SOURCE), _env("PARAMS"))
    seed, n = int(_env("SEED", "1")), int(_env("VECTORS", "1000"))
    full = _env("FULL", "0") == "1"
    rng = np.random.default_rng(seed)
    inputs = stimulus.for_spec(spec, rng, n, full=full)
    tb = TB(dut, spec)
    words = tb.words(inputs)
    await tb.start()
    t0 = time.perf_counter()
    if tb.clocked:
        got = await tb.run_stream(words, random.Random(seed))
    else:
        got = await tb.run_comb(words)
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = scoreboard.check(spec, inputs, got, tb.widths, seed=seed)
    cov = coverage.measure(spec, inputs, res.got)
    goal = coverage.goals(spec, set(res.expected))
    miss = coverage.missed(cov, goal)
    report = {"name": spec.name, "unit": spec.unit, "params": spec.params,
              "latency": tb.latency, "beats": tb.beats, "resets": tb.resets, "seed": seed,
              "vectors": res.vectors,
              "mismatches": res.mismatches, "first_mismatches": res.first,
              "protocol_errors": tb.errors[:10], "coverage": cov, "goals": goal,
              "missed": miss, "summary": coverage.summary(cov, goal),
              "setup_s": t0 - t_start, "check_s": time.perf_counter() - t1,
              "seconds": elapsed, "vectors_per_s": res.vectors / max(elapsed, 1e-9)}
    with open(_env("REPORT", "finescale_report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    for text in res.first:
        dut._log.error(text)
    assert not tb.errors, f"{spec.name}: {len(tb.errors)} handshake errors, first: {tb.errors[0]}"
    assert res.ok, (f"{spec.name}: {res.mismatches} of {res.vectors} vectors mismatch "
                    f"(replay with --seed {seed})")
    assert not miss, f"{spec.name}: coverage goals missed: {miss}"

"""The cocotb testbench of every unit: a ``TB`` that drives blocks and a test that checks them.

The runner (:mod:`.runner`) starts the simulator with the unit's name, seed,
vector count and mode in ``FINESCALE_*`` environment variables; the test
rebuilds the UnitSpec from the registry, generates the stimulus
(:func:`.stimulus.for_spec`, all up front as integers), drives it, collects the
outputs and checks them once at the end against ``spec.reference``, then
writes a JSON report for the runner and fails on a mismatch or a missed
coverage goal.

When the top is the unit's harness (:mod:`.harness`, the runner's default),
every vector goes through it: numpy writes the stimulus files, the harness
clocks one beat a cycle (random valid gaps) in the simulator and writes the
responses with the cycle each came out, numpy reads them; then the first
:data:`PROTOCOL_VECTORS` vectors go again through the per-cycle drivers below,
after a reset.  A streamed unit (``spec.stream``, :mod:`finescale.hw.streams`)
is driven through its ready/valid ports with random source gaps and sink
stalls (:mod:`.readyvalid`).

Per cycle, combinational units get one vector per 1 ns step.  Clocked units get one beat
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
from pathlib import Path

import cocotb
import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from amaranth.lib.wiring import Flow
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

from . import coverage, harness, readyvalid, scoreboard, stimulus, units


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
        comp = spec.build()
        self.stream = bool(getattr(spec, "stream", False))  # ready/valid (hw.streams)
        if self.stream:  # the payload fields stand for the ports
            self.layouts = {"i": comp.i.payload.shape(), "o": comp.o.payload.shape()}
            fields = {d: readyvalid.fields(lay) for d, lay in self.layouts.items()}
            self.widths = {f[0]: f[3] * (f[2] or 1) for fs in fields.values() for f in fs}
            self.lanes = {f[0]: f[2] for fs in fields.values() for f in fs}
            self.inputs = [f[0] for f in fields["i"]]
            self.outputs = [f[0] for f in fields["o"]]
        else:
            sig = comp.signature
            self.widths = {n: Shape.cast(m.shape).width for n, m in sig.members.items()}
            self.lanes = {n: m.shape.length if isinstance(m.shape, data.ArrayLayout) else None
                          for n, m in sig.members.items()}
            self.inputs = [n for n, m in sig.members.items() if m.flow == Flow.In]
            self.outputs = [n for n, m in sig.members.items() if m.flow == Flow.Out]
        self.data_in = [n for n in self.inputs if n != "valid_in"]
        self.data_out = [n for n in self.outputs if n != "valid_out"]
        self.errors: list[str] = []
        self.resets = 0  # mid-stream resets driven
        self.harnessed = hasattr(dut, "h_start")  # the top is the harness of .harness
        self.clock = None
        self.harness_stats: dict = {}

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
        """Start the clock (clocked units, any harness) and hold reset for two cycles."""
        if self.clocked or self.harnessed:
            self.clock = Clock(self.dut.clk, 10, unit="ns")
            self.clock.start()
            if self.harnessed:
                self.dut.h_start.value = 0
                self.dut.h_free.value = 0
                self.dut.h_rows.value = 0
            await self.reset()

    async def reset(self):
        """Hold ``rst`` for two cycles (valid low), released at a falling edge."""
        self.dut.rst.value = 1
        self._valid(0)
        for _ in range(2):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    def _beat_rows(self, inputs: dict) -> dict:
        """Port -> one row per beat (lane ports split into beats, other ports repeated)."""
        rows = {}
        for p in self.data_in:
            v = np.asarray(inputs[p])
            n = len(v)
            rows[p] = v.reshape(n * self.beats, -1) if v.ndim > 1 else np.repeat(v, self.beats)
        return rows

    async def run_harness(self, inputs: dict, rng: np.random.Generator, *, gap=0.05,
                          depth=harness.DEPTH, free=True) -> dict:
        """Stream every block through the DUT-side harness (:mod:`.harness`), in chunks of
        at most ``depth`` rows: numpy writes the stimulus files, the simulator clocks
        them through, numpy reads the responses.  Port -> numpy array (as
        :func:`.scoreboard.unpack` gives).  Checks that each chunk gave one response
        a block, each ``latency`` cycles after its last beat went in."""
        dut, beats, lat = self.dut, self.beats, self.latency
        n = len(next(iter(inputs.values())))
        beat_rows = self._beat_rows(inputs)
        got = {p: [] for p in self.data_out}
        per_chunk = max(1, depth // (2 * beats))  # a gap before a beat at most: rows <= depth
        cycles = count = 0
        t0, c0 = time.perf_counter(), time.process_time()
        spent = {"write_s": 0.0, "simulate_s": 0.0, "read_s": 0.0,  # wall, and CPU:
                 "write_cpu_s": 0.0, "simulate_cpu_s": 0.0, "read_cpu_s": 0.0}
        for b0 in range(0, n, per_chunk):
            nb = min(per_chunk, n - b0)
            t_chunk, c_chunk = time.perf_counter(), time.process_time()
            rows, valid = harness.schedule(nb, beats, rng, gap)
            src = rows + b0 * beats
            for p in ["cycle", *self.data_out]:  # no stale responses
                Path(harness.resp_file(p)).unlink(missing_ok=True)
            Path(harness.stim_file("valid")).write_bytes(harness.hex_lines(valid, 1))
            for p in self.data_in:
                Path(harness.stim_file(p)).write_bytes(
                    harness.hex_lines(beat_rows[p][src], self.widths[p]))
            t_sim, c_sim = time.perf_counter(), time.process_time()
            spent["write_s"] += t_sim - t_chunk
            spent["write_cpu_s"] += c_sim - c_chunk
            dut.h_rows.value = len(rows)
            await FallingEdge(dut.clk)
            dut.h_start.value = 1
            await RisingEdge(dut.clk)
            await FallingEdge(dut.clk)
            dut.h_start.value = 0
            if free:  # the harness clocks itself: cocotb's clock stops (low) meanwhile
                self.clock.stop()
                dut.h_free.value = 1
            await RisingEdge(dut.h_done)
            if free:
                dut.h_free.value = 0
                await Timer(5, unit="ns")
                self.clock.start(start_high=False)
            t_read, c_read = time.perf_counter(), time.process_time()
            spent["simulate_s"] += t_read - t_sim
            spent["simulate_cpu_s"] += c_read - c_sim
            k = unsigned(dut.h_count.value)
            count, cycles = count + k, cycles + len(rows) + lat + 2
            if k != nb:
                self.errors.append(f"harness chunk at block {b0}: {k} responses for {nb} blocks")
                break
            last = np.flatnonzero(valid & (rows % beats == beats - 1))
            stamp = harness.read_responses("cycle", harness.CYCLE_BITS)
            late = np.flatnonzero(stamp != last + lat)
            if len(late):
                j = late[0]
                self.errors.append(f"harness: block {b0 + j} came out at cycle {stamp[j]}, "
                                   f"expected {last[j] + lat} (latency {lat})")
            for p in self.data_out:
                got[p].append(harness.read_responses(p, self.widths[p], self.lanes[p]))
            spent["read_s"] += time.perf_counter() - t_read
            spent["read_cpu_s"] += time.process_time() - c_read
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        for p, v in got.items():  # responses missing (an error above): zeros, so they mismatch
            short = n - sum(len(c) for c in v)
            if short > 0:
                v.append(np.zeros((short, self.lanes[p]) if self.lanes[p] else short,
                                  object if self.widths[p] > 64 else np.uint64))
        self.harness_stats = {"blocks": n, "responses": count, "cycles": cycles,
                              "gap": gap, "seconds": elapsed, **spent,
                              "blocks_per_s": n / max(elapsed, 1e-9), "cpu_s": cpu,
                              "blocks_per_cpu_s": n / max(cpu, 1e-9)}
        return {p: np.concatenate(v) for p, v in got.items()}

    def _valid(self, v):
        if "valid_in" in self.inputs:
            self.dut.valid_in.value = v
        if self.stream:
            self.dut.i__valid.value = v
            self.dut.o__ready.value = 1

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

    async def run_ready_valid(self, inputs: dict, rng: random.Random, *, gap=0.3, stall=0.3,
                              calm=64) -> dict:
        """Stream every block through a ready/valid unit (:mod:`finescale.hw.streams`): a
        source with random gaps, a sink with random stalls, the checks of
        :class:`.readyvalid.StreamBench` (no gaps or stalls in the first ``calm``
        cycles: one beat a cycle, exact latency).  Port -> array of the outputs."""
        dut = self.dut
        payloads = readyvalid.pack_payload(self.layouts["i"], inputs, self.beats)
        sb = readyvalid.StreamBench(payloads, beats=self.beats, latency=self.latency, rng=rng,
                                    gap=gap, stall=stall, calm=calm)
        while not sb.done:
            await FallingEdge(dut.clk)
            valid, word, ready = sb.drive()
            dut.i__valid.value, dut.i__payload.value, dut.o__ready.value = valid, word, ready
            await ReadOnly()
            sb.observe(int(dut.i__ready.value), int(dut.o__valid.value),
                       unsigned(dut.o__payload.value))
        self.errors += sb.finish()
        out = (sb.outputs + [0] * sb.blocks)[:sb.blocks]  # missing blocks mismatch as zeros
        return readyvalid.unpack_payload(self.layouts["o"], out)

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
                drain = (not reset_done and self.stateful and done >= n // 2 and cur < 0
                         and bool(queue) and (clears is None or clears[queue[0]][0] == 1))
                if cur < 0 and queue and not drain and rng.random() >= gap:
                    cur, beat = queue.popleft(), 0  # (drain: let a deep pipeline empty)
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


#: vectors of the per-cycle protocol run that follows a harness run (gaps, a reset)
PROTOCOL_VECTORS = 400


@cocotb.test()
async def regress_unit(dut):
    """Drive the stimulus of one unit and compare every output with the golden model.

    With the harness top (:mod:`.harness`) every vector goes through the harness
    and the first :data:`PROTOCOL_VECTORS` again through the per-cycle drivers
    (after a reset); otherwise all of them through the per-cycle drivers.
    """
    t_start = time.perf_counter()
    spec = units.find(_env("SPEC"), _env("SOURCE", units.DEFAULT_SOURCE), _env("PARAMS"))
    seed, n = int(_env("SEED", "1")), int(_env("VECTORS", "1000"))
    full = _env("FULL", "0") == "1"
    rng = np.random.default_rng(seed)
    inputs = stimulus.for_spec(spec, rng, n, full=full)
    tb = TB(dut, spec)
    await tb.start()
    t0, c0 = time.perf_counter(), time.process_time()
    proto_in = inputs
    if tb.stream:
        await FallingEdge(dut.clk)
        got = await tb.run_ready_valid(inputs, random.Random(seed))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        proto_in, proto = {}, None
    elif tb.harnessed:
        got = await tb.run_harness(inputs, np.random.default_rng(seed + 1))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        corrupt = _env("CORRUPT")  # self-test: flip a bit of one response read back
        if corrupt is not None:
            port = tb.data_out[0]
            got[port][int(corrupt)] ^= 1
        proto_in = {k: v[:PROTOCOL_VECTORS] for k, v in inputs.items()}
        if tb.clocked:
            await tb.reset()
    t_proto = time.perf_counter()
    if not tb.stream:
        words = tb.words(proto_in)
        if tb.clocked:
            proto = await tb.run_stream(words, random.Random(seed))
        else:
            proto = await tb.run_comb(words)
    if not (tb.harnessed or tb.stream):
        got, elapsed, cpu = proto, time.perf_counter() - t0, time.process_time() - c0
    proto_s = time.perf_counter() - t_proto
    t1 = time.perf_counter()
    res = scoreboard.check(spec, inputs, got, tb.widths, seed=seed)
    if tb.harnessed:  # the per-cycle run's mismatches count as the unit's too
        res_p = scoreboard.check(spec, proto_in, proto, tb.widths, seed=seed)
        res.mismatches += res_p.mismatches
        res.first += [f"(per-cycle run) {t}" for t in res_p.first][:max(0, 5 - len(res.first))]
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
              "seconds": elapsed, "vectors_per_s": res.vectors / max(elapsed, 1e-9),
              "cpu_s": cpu, "vectors_per_cpu_s": res.vectors / max(cpu, 1e-9),
              "harness": tb.harness_stats or None,
              "protocol_vectors": len(next(iter(proto_in.values()), [])), "protocol_s": proto_s}
    with open(_env("REPORT", "finescale_report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    for text in res.first:
        dut._log.error(text)
    assert not tb.errors, f"{spec.name}: {len(tb.errors)} handshake errors, first: {tb.errors[0]}"
    assert res.ok, (f"{spec.name}: {res.mismatches} of {res.vectors} vectors mismatch "
                    f"(replay with --seed {seed})")
    assert not miss, f"{spec.name}: coverage goals missed: {miss}"

"""Ready/valid streams with backpressure (finescale.hw.streams): in Amaranth simulation with
random source gaps and sink stalls against the golden model, a broken wrapper caught, and a
streamed unit through cocotb + Verilator."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module
from amaranth.sim import Simulator

from finescale.hw import streams
from finescale.hw.units import spec
from finescale.sim import readyvalid, runner, units

SOURCE = "finescale.hw.streams:matrix"
#: pipelined, in beats, accumulating: small enough for Amaranth's simulator
UNITS = [spec("scale", scale_format="e8m0", block_size=4, pipelined=True),
         spec("quantizer", scale_format="e4m3", block_size=4, pipelined=True),
         spec("dot", scale_format="e4m3", block_size=8, lanes=4, stages=4),
         spec("dot", scale_format="ue5m3", block_size=4, accumulate=True)]


def run_amaranth(dut, stream_spec, inputs, *, seed=1, gap=0.3, stall=0.3, calm=40):
    """Drive ``dut`` (a Streamed) with a StreamBench; returns (bench, output port arrays)."""
    payloads = readyvalid.pack_payload(dut.i.payload.shape(), inputs, stream_spec.beats)
    sb = readyvalid.StreamBench(payloads, beats=stream_spec.beats, latency=dut.latency,
                                rng=random.Random(seed), gap=gap, stall=stall, calm=calm)

    async def bench(ctx):
        while not sb.done:
            valid, word, ready = sb.drive()
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload.as_value(), word)
            ctx.set(dut.o.ready, ready)
            sb.observe(ctx.get(dut.i.ready), ctx.get(dut.o.valid),
                       ctx.get(dut.o.payload.as_value()))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    sb.finish()
    return sb, readyvalid.unpack_payload(dut.o.payload.shape(), sb.outputs)


@pytest.mark.parametrize("base", UNITS, ids=lambda s: s.name)
def test_streamed_unit_under_gaps_and_stalls(base):
    s = streams.StreamSpec(base)
    dut = s.build()
    assert dut.latency == base.latency >= 1
    inputs = s.random_inputs(np.random.default_rng(3), 150)
    sb, got = run_amaranth(dut, s, inputs)
    assert not sb.errors, sb.errors[:3]
    assert len(sb.outputs) == 150  # none lost, none duplicated (StreamBench ran on after)
    for port, exp in s.reference(inputs).items():
        np.testing.assert_array_equal(np.asarray(got[port]).astype(object),
                                      np.asarray(exp).astype(object), err_msg=port)
    # never stalled (the calm start): a beat a cycle and each block out `latency` later
    calm = [j for j, t in enumerate(sb.out_cycle) if t < 40]
    assert len(calm) >= 40 // s.beats - s.latency - 1
    assert all(sb.last_in[j] == sb.last_in[0] + j * s.beats for j in calm)
    assert all(sb.out_cycle[j] == sb.last_in[j] + s.latency for j in calm)
    # and the stalls really happened: more cycles than blocks
    assert sb.t > 1.3 * 150 * s.beats


class NoBackpressure(streams.Streamed):
    """A broken wrapper: the pipeline runs on when the sink is not ready."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = u = self.unit
        m.d.comb += [self.i.ready.eq(1), u.valid_in.eq(self.i.valid),
                     self.o.valid.eq(u.valid_out)]
        self.connect_payloads(m)
        return m


def test_the_bench_catches_a_wrapper_without_backpressure():
    s = streams.StreamSpec(UNITS[1])
    inputs = s.random_inputs(np.random.default_rng(0), 60)
    bad = NoBackpressure(s.base.build())
    sb, _ = run_amaranth(bad, s, inputs)
    assert any("dropped or changed" in e for e in sb.errors)
    assert any("blocks came out" in e for e in sb.errors)
    sb, _ = run_amaranth(NoBackpressure(s.base.build()), s, inputs, stall=0.0)
    assert not sb.errors  # without stalls it is right: the checks are about backpressure


def test_streamed_refuses_combinational_units_and_non_components():
    comb = spec("scale", scale_format="e4m3", block_size=4).build()
    Fragment.get(comb, None)  # elaborated: no unused-component warning
    with pytest.raises(ValueError, match="latency 0"):
        streams.Streamed(comb)
    with pytest.raises(TypeError, match="wiring.Component"):
        streams.Streamed(object())
    with pytest.raises(TypeError, match="UnitSpec"):
        streams.StreamSpec("fs_scale")


def test_stream_matrix_is_the_pipelined_units():
    names = {s.base.name for s in streams.matrix("all")}
    want = {s.name for s in units.matrix("all") if streams.pipelined(s)}
    assert names == want and len(names) > 50
    assert not streams.matrix("default") or all(s.latency for s in streams.matrix("default"))


def test_payload_round_trip():
    s = streams.StreamSpec(UNITS[2])
    dut = s.build()
    Fragment.get(dut, None)
    inputs = s.random_inputs(np.random.default_rng(0), 20)
    words = readyvalid.pack_payload(dut.i.payload.shape(), inputs, s.beats)
    assert len(words) == 20 * s.beats
    back = readyvalid.unpack_payload(dut.i.payload.shape(), words)
    np.testing.assert_array_equal(back["a"].reshape(20, -1), inputs["a"])
    np.testing.assert_array_equal(back["scale_a"][::s.beats], inputs["scale_a"])


# --- through cocotb + Verilator ----------------------------------------------------------------

@pytest.mark.parametrize("base", [UNITS[2], spec("dot", scale_format="e4m3", block_size=4,
                                                 accumulate=True)], ids=lambda s: s.name)
def test_streamed_unit_through_cocotb(base, tmp_path):
    s = units.find(streams.StreamSpec(base).name, SOURCE)
    rep = runner.run_unit(s, vectors=300, build_root=tmp_path, source=SOURCE, harness=False)
    assert rep["passed"] and rep["mismatches"] == 0, rep["first_mismatches"]
    assert not rep["protocol_errors"] and not rep["missed"], rep
    assert rep["vectors"] > 300


@pytest.mark.slow
def test_every_streamed_unit_through_cocotb(tmp_path):
    for s in streams.matrix("all"):
        rep = runner.run_unit(s, vectors=2000, build_root=tmp_path, source=SOURCE,
                              harness=False)
        assert rep["passed"] and not rep["protocol_errors"], (s.name, rep["protocol_errors"])

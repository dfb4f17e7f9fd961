"""Dot-product unit against golden.dotproduct (Amaranth simulator)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale import golden
from finescale.hw.dotproduct import Align, Normalise
from finescale.hw.simulate import simulate
from finescale.hw.units import matrix, spec


def check(s, inputs):
    """Every output port of the simulated unit equals the golden model's, code for code."""
    got = simulate(s.build(), inputs, latency=s.latency)
    want = s.reference(inputs)
    assert set(got) == set(want)
    for port in want:
        bad = np.flatnonzero(got[port] != want[port].astype(got[port].dtype))
        assert bad.size == 0, (f"{s.name}.{port}: {bad.size} mismatches; first: "
                               f"{ {k: v[bad[0]] for k, v in inputs.items()} } "
                               f"got {got[port][bad[0]]:#x} want {want[port][bad[0]]:#x}")
    return got


@pytest.mark.parametrize("fmt", ["e4m3", "ue5m3", "e8m0"])
def test_every_fp4_product_and_every_scale_code(fmt):
    """All 16 x 16 code pairs (one a vector), then every scale code against a spread of others."""
    s = spec("dot", scale_format=fmt, block_size=1)
    codes = np.arange(16, dtype=np.uint8)
    a, b = (g.reshape(-1, 1) for g in np.meshgrid(codes, codes, indexing="ij"))
    one = int(golden.formats.get(fmt).encode(1.0))
    check(s, {"a": a, "b": b, "scale_a": np.full(256, one, np.uint8),
              "scale_b": np.full(256, one, np.uint8)})
    rng = np.random.default_rng(5)
    sa = np.repeat(np.arange(256, dtype=np.uint8), 3)
    sb = rng.integers(0, 256, sa.size).astype(np.uint8)
    sb[::3] = 255 - sa[::3]  # extreme pairs: overflow and underflow with E8M0
    n = sa.size
    check(s, {"a": rng.integers(0, 16, (n, 1)).astype(np.uint8),
              "b": rng.integers(0, 16, (n, 1)).astype(np.uint8), "scale_a": sa, "scale_b": sb})


@pytest.mark.parametrize("fmt", ["e4m3", "e8m0"])
@pytest.mark.parametrize("block_size,lanes,stages", [(16, 16, 0), (32, 32, 2), (16, 4, 0),
                                                     (32, 8, 4), (8, 1, 1)])
def test_random_blocks(fmt, block_size, lanes, stages):
    s = spec("dot", scale_format=fmt, block_size=block_size, lanes=lanes, stages=stages)
    assert s.latency == stages and s.beats == block_size // lanes
    check(s, s.random_inputs(np.random.default_rng(block_size + lanes), 150))


@pytest.mark.parametrize("fmt,block_size,lanes,stages", [
    ("e4m3", 16, 16, 1), ("ue5m3", 16, 4, 2), ("e8m0", 32, 8, 4), ("e4m3", 4, 1, 3)])
def test_accumulating_sequences(fmt, block_size, lanes, stages):
    """Running sums with clears, NaN scales and (E8M0) results beyond FP32, port for port."""
    s = spec("dot", scale_format=fmt, block_size=block_size, lanes=lanes, accumulate=True,
             stages=stages)
    inputs = s.random_inputs(np.random.default_rng(7), 250)
    want = s.reference(inputs)
    assert 0 < inputs["acc_clear"].sum() < 250
    assert np.isnan(want["result"].view(np.float32)).any()  # a NaN scale was seen
    check(s, inputs)


def test_accumulator_rounds_a_sum_past_float64_precision_once():
    """The golden corner of test_golden_dotproduct (a float64 double rounding would go to even)."""
    s = spec("dot", scale_format="e8m0", block_size=1, accumulate=True)
    got = check(s, {"a": np.array([[2], [2], [1], [1]], np.uint8),
                    "b": np.array([[2], [2], [2], [1]], np.uint8),
                    "scale_a": np.array([126, 114, 100, 99], np.uint8),
                    "scale_b": np.array([126, 114, 100, 100], np.uint8),
                    "acc_clear": np.array([1, 0, 0, 0], np.uint8)})
    assert got["result"][-1] == np.nextafter(np.float32(0.25), 1).view(np.uint32)


def test_accumulator_overflow_wraps_and_sticks_until_clear():
    """headroom 0: two largest-magnitude blocks overflow; the flag holds until a clear."""
    s = spec("dot", block_size=4, accumulate=True, headroom=0)
    top = golden.formats.get("e4m3").max_code
    six = 0x7  # E2M1 6.0
    n = 5
    inputs = {"a": np.full((n, 4), six, np.uint8), "b": np.full((n, 4), six, np.uint8),
              "scale_a": np.full(n, top, np.uint8), "scale_b": np.full(n, top, np.uint8),
              "acc_clear": np.array([1, 0, 0, 1, 0], np.uint8)}
    got = check(s, inputs)
    # independent: one block is 4 * 36 * 448**2; the accumulator's range is +-2**(width-1) LSBs
    width = next(p["width"] for p in s.ports() if p["name"] == "acc_out")
    block = 4 * 36 * 448 ** 2 * 2 ** 20  # in LSBs of 2**-20
    assert block < 2 ** (width - 1) <= 2 * block
    assert got["acc_overflow"].tolist() == [0, 1, 1, 0, 1]
    assert int(got["acc_out"][0]) == block
    assert int(got["acc_out"][1]) == (2 * block) % (1 << width)


@pytest.mark.parametrize("fmt,block_size,lanes,stages", [
    ("e4m3", 4, 4, 1), ("ue5m3", 16, 4, 2), ("e8m0", 32, 32, 1), ("e8m0", 8, 2, 4)])
def test_fp32_accumulating_sequences_and_corners(fmt, block_size, lanes, stages):
    """Random running sums (clears, NaN scales, banded scales) then every FP32 corner sequence
    the format can express (ties, carry, cancellation, zeros, inf, subnormals, sticky)."""
    from finescale.sim.stimulus import fp32_corners
    s = spec("dot", scale_format=fmt, block_size=block_size, lanes=lanes, accumulate="fp32",
             stages=stages)
    assert s.latency == stages and {p["name"] for p in s.ports()} >= {"acc_clear", "nan"}
    inputs = s.random_inputs(np.random.default_rng(9), 200)
    corners = fp32_corners(fmt, block_size)
    inputs = {p: np.concatenate([v, corners[p].astype(v.dtype)]) for p, v in inputs.items()}
    want = s.reference(inputs)
    assert want["nan"].any() and not want["nan"].all()
    check(s, inputs)


def test_formatscope_dp32_scope():
    """FormatScope's DP32 scope: 32 lanes a clock, E8M0, the FP32 total one clock later."""
    from finescale.hw.units import formatscope_dp32
    s = formatscope_dp32()
    ports = {p["name"]: p for p in s.ports()}
    assert (s.latency, s.beats) == (1, 1)
    assert ports["a"]["lanes"] == 32 and ports["a"]["lane_width"] == 4
    assert ports["result"]["width"] == 32 and ports["nan"]["width"] == 1
    assert s in matrix()


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_lanes_and_stages_are_validated():
    from finescale.hw.dotproduct import DotProduct
    with pytest.raises(ValueError, match="divide"):
        DotProduct(block_size=16, lanes=3)
    with pytest.raises(ValueError, match="stages"):
        DotProduct(stages=5)
    with pytest.raises(ValueError, match="stages"):
        DotProduct(accumulate=True, stages=0)
    with pytest.raises(TypeError, match="accumulate"):
        DotProduct(accumulate=1)
    with pytest.raises(TypeError, match="accumulate"):
        DotProduct(accumulate="fp16")
    with pytest.raises(ValueError, match="stages"):
        DotProduct(accumulate="fp32", stages=0)
    with pytest.raises(ValueError, match="lanes"):
        DotProduct(lanes=0)


class _AddRound(wiring.Component):
    """The FP32 unit's feedback loop alone: Align then Normalise (one rounding)."""

    def __init__(self, n_width, x_width):
        self.align = Align(n_width=n_width, x_width=x_width)
        self.norm = Normalise(n_width=len(self.align.window), x_width=len(self.align.x_out))
        super().__init__({"acc": In(32), "n": In(n_width), "neg": In(1), "x": In(signed(x_width)),
                          "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.align, m.submodules.norm = al, nm = self.align, self.norm
        m.d.comb += [al.acc.eq(self.acc), al.n.eq(self.n), al.neg.eq(self.neg), al.x.eq(self.x),
                     nm.n.eq(al.window), nm.x.eq(al.x_out), nm.neg.eq(al.neg_out), nm.nan.eq(0),
                     self.result.eq(Mux(al.inf, self.acc, nm.result))]
        return m


def test_fp32_loop_adds_any_total_and_block_value_like_golden():
    """Random FP32 totals (zeros, subnormals, near the largest, inf) plus block values of up to
    24 bits whose exponents straddle the total's: bit for bit golden's fp32_add_exact."""
    from finescale.golden.dotproduct import fp32_add_exact
    rng = np.random.default_rng(21)
    n = 1500
    efield = rng.choice([0, 1, 2, 60, 127, 150, 253, 254, 255], n)
    efield = np.where(rng.random(n) < 0.5, rng.integers(0, 256, n), efield)
    acc = (rng.integers(0, 2, n) << 31) | (efield << 23) | rng.integers(0, 1 << 23, n)
    acc[efield == 255] &= 0xFF800000  # inf, never NaN
    acc[rng.random(n) < 0.05] &= 0x80000000  # zeros
    width = rng.integers(0, 25, n)
    nv = rng.integers(0, 1 << 24, n) >> (24 - width)
    top = efield.astype(np.int64) - 150 + 23  # the total's top bit, then a spread around it
    x = np.clip(top - width + rng.integers(-30, 31, n), -300, 280)
    neg = rng.integers(0, 2, n)
    dut = _AddRound(24, 10)
    got = simulate(dut, {"acc": acc, "n": nv, "neg": neg, "x": x & 0x3FF})["result"]
    want = [fp32_add_exact(np.uint32(a).view(np.float32), bool(s), int(v), int(e))
            for a, s, v, e in zip(acc, neg, nv, x)]
    want = np.array(want, np.float32).view(np.uint32)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(acc[i]), int(neg[i]), int(nv[i]), int(x[i]), hex(int(got[i])),
                            hex(int(want[i]))) for i in bad[:5]]

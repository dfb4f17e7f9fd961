"""4-over-6 unit and pipelined variants against the golden model (Amaranth simulator)."""

import numpy as np
import pytest

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale.hw.fouroversix import square
from finescale.hw.simulate import simulate
from finescale.hw.units import spec


def check(s, n, seed=0):
    inputs = s.random_inputs(np.random.default_rng(seed), n)
    got = simulate(s.build(), inputs, latency=s.latency)
    want = s.reference(inputs)
    for port in want:
        np.testing.assert_array_equal(got[port], want[port], err_msg=f"{s.name}: port {port}")
    return want


@pytest.mark.parametrize("fmt,params", [("e4m3", {}), ("ue5m3", {"metric": "mae"}),
                                        ("e8m0", {"prevent_zero": True, "error_frac_bits": 3}),
                                        ("e4m3", {"pipelined": True, "prevent_zero": True})])
def test_fouroversix(fmt, params):
    want = check(spec("4o6", scale_format=fmt, block_size=8, **params), 120)
    assert 0 < want["choice"].sum() < len(want["choice"])  # both candidates win sometimes


@pytest.mark.parametrize("unit,latency", [("scale", 2), ("element", 1), ("quantizer", 3)])
def test_pipelined_variants(unit, latency):
    s = spec(unit, scale_format="ue5m3", block_size=4, pipelined=True, input_format="fp32")
    assert s.latency == latency
    check(s, 100)


class Square(wiring.Component):
    def __init__(self, width):
        super().__init__({"a": In(width), "y": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(square(self.a))
        return m


@pytest.mark.parametrize("width", [1, 2, 5, 10])
def test_square_exhaustive(width):
    a = np.arange(1 << width, dtype=np.uint64)
    got = simulate(Square(width), {"a": a})["y"]
    np.testing.assert_array_equal(np.asarray(got, np.uint64), a * a)

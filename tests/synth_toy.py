"""A tiny Amaranth unit with named submodules, to test the synthesis flow without the hw units."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Products(wiring.Component):
    """``lanes`` unsigned 3x3-bit products, combinational."""

    def __init__(self, *, lanes: int):
        self.lanes = lanes
        super().__init__({"a": In(3 * lanes), "b": In(3 * lanes), "p": Out(6 * lanes)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            m.d.comb += self.p[6 * i: 6 * i + 6].eq(self.a[3 * i: 3 * i + 3] * self.b[3 * i: 3 * i + 3])
        return m


class ToyDot(wiring.Component):
    """Sum of ``lanes`` 3x3-bit products, registered once (latency 1)."""

    def __init__(self, *, lanes: int):
        self.lanes = lanes
        super().__init__({"a": In(3 * lanes), "b": In(3 * lanes), "result": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.products = products = Products(lanes=self.lanes)
        m.d.comb += [products.a.eq(self.a), products.b.eq(self.b)]
        total = sum(products.p[6 * i: 6 * i + 6] for i in range(self.lanes))
        m.d.sync += self.result.eq(total)
        return m


def toy_design(lanes: int):
    from finescale.synth.designs import from_component
    return from_component(f"toy_dot_l{lanes}", ToyDot(lanes=lanes), unit="dot",
                          params={"lanes": lanes, "scale_format": "e4m3"}, latency=1)

"""A tiny stand-in unit that follows the hardware contract, for testing the regression itself.

``mx`` scale unit for E8M0 over BF16 blocks: code = max(e(amax) - 2, 0), with e the
BF16 exponent field of the block's largest magnitude (the OCP MX rule
2**(floor(log2 amax) - 2)).  Its reference is the golden model.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale import golden


class MxScale(wiring.Component):
    def __init__(self, *, block_size, pipelined, mutation=None):
        self._n, self._pipe, self._mut = block_size, pipelined, mutation
        super().__init__({"valid_in": In(1), "x": In(16 * block_size),
                          "valid_out": Out(1), "scale": Out(8)})

    def elaborate(self, platform):
        m = Module()
        mags = [self.x[16 * i:16 * i + 15] for i in range(self._n)]
        amax = mags[0]
        for i, v in enumerate(mags[1:]):
            nxt = Signal(15, name=f"amax{i}")
            m.d.comb += nxt.eq(Mux(v > amax, v, amax))
            amax = nxt
        e = amax[7:15]
        off = 1 if self._mut == "exp-off-by-one" else 2
        code = Mux(e >= 2, e - off, 0)[:8]
        dom = m.d.sync if self._pipe else m.d.comb
        dom += [self.scale.eq(code), self.valid_out.eq(self.valid_in)]
        return m


@dataclasses.dataclass(frozen=True)
class StandinSpec:
    unit: str
    params: dict
    mutation: str | None = None

    @property
    def name(self):
        return f"fs_standin_{self.unit}_b{self.params['block_size']}" + (
            "_p" if self.params["pipelined"] else "")

    @property
    def latency(self):
        return int(self.params["pipelined"])

    def build(self):
        return MxScale(block_size=self.params["block_size"], pipelined=self.params["pipelined"],
                       mutation=self.mutation)

    def reference(self, inputs):
        x = np.asarray(inputs["x"], np.uint16).view(ml_dtypes.bfloat16)
        q = golden.quantize(x, element="e2m1", scale="e8m0", method="mx",
                            block_size=x.shape[-1])
        return {"scale": q.scale_codes[:, 0].astype(np.uint8), "valid_out": np.ones(len(x), np.uint8)}

    def random_inputs(self, rng, n):
        x = (rng.standard_normal((n, self.params["block_size"])) * 0.01).astype(ml_dtypes.bfloat16)
        return {"x": x.view(np.uint16), "valid_in": np.ones(n, np.uint8)}


def matrix(which="default"):
    return [StandinSpec("scale", {"block_size": 16, "input_format": "bf16", "scale_format": "e8m0",
                                  "method": "mx", "pipelined": p}) for p in (False, True)]

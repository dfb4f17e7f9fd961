"""The block quantizer: scale-selection unit followed by the element quantizer.

::

    x ──┬─► ScaleUnit (amax │ RoundSF) ──┬──────────────► scale
        │                                ▼
        └─► delay (latency of ScaleUnit) ─► ElementQuantizer ─► codes

Latency: ScaleUnit's + ElementQuantizer's (0 combinational, 2 + 1 = 3 pipelined).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .element import ElementQuantizer
from .pipeline import check_flag, cut
from .scale import ScaleUnit

__all__ = ["Quantizer"]


class Quantizer(wiring.Component):
    """Block in, scale code and element codes out: ``golden.quantize`` for one block.

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    x: In(ArrayLayout(16 or 32, block_size)) -- the block.
    scale: Out(8) -- the scale code.
    codes: Out(ArrayLayout(4, block_size)) -- the element codes.
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 input_format: str = "bf16", rule: str = "abs-max", prevent_zero: bool = False,
                 pipelined: bool = False):
        self.pipelined = check_flag("pipelined", pipelined)
        self.scale_unit = ScaleUnit(
            scale_format=scale_format, block_size=block_size, input_format=input_format,
            rule=rule, prevent_zero=prevent_zero, pipelined=pipelined)
        self.element_unit = ElementQuantizer(
            scale_format=scale_format, block_size=block_size, input_format=input_format,
            pipelined=pipelined)
        super().__init__({"valid_in": In(1), "x": In(self.scale_unit.x.shape()),
                          "valid_out": Out(1), "scale": Out(8),
                          "codes": Out(self.element_unit.codes.shape())})

    @property
    def latency(self) -> int:
        return self.scale_unit.latency + self.element_unit.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.scale = su = self.scale_unit
        m.submodules.element = eq = self.element_unit
        m.d.comb += [su.valid_in.eq(self.valid_in), su.x.eq(self.x)]
        x = self.x
        for k in range(su.latency):
            x = cut(m, x, name=f"x_delay{k}", registered=True)
        m.d.comb += [eq.valid_in.eq(su.valid_out), eq.x.eq(x), eq.scale.eq(su.scale)]
        scale = cut(m, su.scale, name="scale_delay", registered=eq.latency > 0)
        m.d.comb += [self.scale.eq(scale), self.codes.eq(eq.codes),
                     self.valid_out.eq(eq.valid_out)]
        return m

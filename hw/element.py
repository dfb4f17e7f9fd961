"""Element quantization without a divider: ``code = RNE(x / S)`` by threshold compares.

Round-to-nearest-even of ``x / S`` onto E2M1 is the number of midpoints
``S * {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5}`` that ``|x|`` passes; at an exact
tie the even code wins, so a midpoint whose upper neighbour has an even code
is passed on ``>=``, the others only on ``>``.  Past the last midpoint the
code saturates at 6.  The midpoints and tie directions are derived from the
golden element format's value grid, not typed in.

Exactness: with integer midpoints ``c_k`` (the midpoints times ``2**t``) and
``S = s_sig * 2**s_e``, ``|x| = x_sig * 2**x_e``, the lane compares
``x_sig * 2**(x_e - s_e + t)`` with ``s_sig * c_k``: ``x_sig`` is shifted by
``u = clamp(x_e - s_e + t + P, 0, cw + P)`` (P = input significand bits,
cw = width of ``s_sig * c_k``) and its top bits compared with ``s_sig * c_k``,
the low ``P`` bits deciding ties.  The clamps only cut shifts where every
compare is already decided.  ``S = 0`` gives ±0 for every element; the sign
bit of ``x`` is kept (negative values that round to 0 give ``-0``, code 0x8).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from finescale.golden import formats

from .floats import fields, unpack
from .pipeline import Cuts, check_flag, cut
from .scale import block_port, check_block_size, input_fields, scale_fmt

__all__ = ["ElementQuantizer", "align", "midpoints"]



def midpoints(efmt: formats.Format):
    """``(c, t, ge, codes)``: integer midpoints ``c`` (= midpoint * 2**t), whether each is
    passed on ``>=`` (its upper neighbour's code is even) and the codes of the values."""
    vals, codes = efmt.grid.values, efmt.grid.codes
    keep = vals >= 0
    vals, codes = vals[keep], codes[keep]
    mids = (vals[:-1] + vals[1:]) / 2
    t = 0
    while not np.all(mids * 2.0 ** t == np.floor(mids * 2.0 ** t)):
        t += 1
    c = [int(v) for v in mids * 2.0 ** t]
    ge = [bool(code % 2 == 0) for code in codes[1:]]
    return c, t, ge, [int(v) for v in codes]


def align(m, x, ff, s_exp, *, t: int, cw: int, name: str):
    """``(sign, top, frac)`` of one lane ``x`` against a scale of exponent ``s_exp``:
    ``top`` is ``|x| * 2**t / 2**s_exp`` truncated (to be compared with ``s_sig * c`` of at
    most ``cw`` bits), ``frac`` whether bits were cut (see the module docstring)."""
    P = ff.sig_bits
    sign, x_sig, x_exp = unpack(x, ff)
    u = Signal(range(cw + P + 1), name=f"shift{name}")
    e = x_exp - s_exp + (t + P)
    m.d.comb += u.eq(Mux(e < 0, 0, Mux(e > cw + P, cw + P, e)))
    aligned = Signal(2 * P + cw, name=f"aligned{name}")
    m.d.comb += aligned.eq(x_sig << u)
    return sign, aligned[P:], aligned[:P] != 0


class ElementQuantizer(Cuts, wiring.Component):
    """Block of BF16 / FP32 values and a scale code in, E2M1 codes out.

    Combinational core; with ``pipelined`` the codes are registered (latency 1).

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    x: In(ArrayLayout(16 or 32, block_size)) -- the block.
    scale: In(8) -- the scale code (a value of ``scale_format``; NaN codes undefined).
    codes: Out(ArrayLayout(4, block_size)) -- element codes, sign in bit 3.
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 input_format: str = "bf16", element: str = "e2m1", pipelined: bool = False):
        self.block_size = check_block_size(block_size)
        self.sfmt, self.ff = scale_fmt(scale_format), input_fields(input_format)
        self.efmt = formats.get(element)
        if (self.efmt.integer or not self.efmt.signed or self.efmt.specials != "none"
                or midpoints(self.efmt)[3] != list(range(1 << (self.efmt.bits - 1)))):
            raise ValueError(f"element format must be a signed float format whose magnitude "
                             f"codes count its values (like e2m1), not {element!r}")
        self.pipelined = check_flag("pipelined", pipelined)
        super().__init__({
            "valid_in": In(1), "x": In(block_port(self.ff, self.block_size)), "scale": In(8),
            "valid_out": Out(1),
            "codes": Out(data.ArrayLayout(self.efmt.bits, self.block_size))})

    #: the one cut: the codes register
    CUTS = ("codes_reg",)

    def elaborate(self, platform):
        m = Module()
        c, t, ge, mag_codes = midpoints(self.efmt)
        sf = fields(self.sfmt)
        _, s_sig, s_exp = unpack(self.scale[:sf.bits], sf)
        s_zero = s_sig == 0
        # the midpoints scaled by the block's scale significand, shared by every lane
        cw = ((1 << sf.sig_bits) * max(c)).bit_length()
        thresholds = []
        for k, ck in enumerate(c):
            th = Signal(cw, name=f"mid{k}")
            m.d.comb += th.eq(s_sig * ck)
            thresholds.append(th)
        codes = Signal(self.codes.shape(), name="codes_comb")
        for lane in range(self.block_size):
            sign, top, frac = align(m, self.x[lane], self.ff, s_exp, t=t, cw=cw, name=str(lane))
            passed = [(top >= th) if g else (top > th) | ((top == th) & frac)
                      for th, g in zip(thresholds, ge)]
            count = Signal(range(len(c) + 1), name=f"count{lane}")
            m.d.comb += count.eq(Mux(s_zero, 0, sum(p.as_unsigned() for p in passed)))
            m.d.comb += codes[lane].eq(Cat(count[:self.efmt.bits - 1], sign))
        m.d.comb += self.codes.eq(cut(m, codes, name=self.CUTS[0], registered=self.pipelined))
        m.d.comb += self.valid_out.eq(cut(m, self.valid_in, name="valid_reg",
                                          registered=self.pipelined))
        return m

"""Predictor selectors (``rule="pg<t>-m<M0>_<M1>[-up]"``) in RTL: no error unit.

The golden rule (:mod:`finescale.golden.selectors`): candidate 1 if at least ``t``
elements of the block fall in the element format's top gap under candidate 0's scale
``S0`` (``level * S0 < |x| < amax``, level 4 for E2M1's 4-to-6 gap), else candidate 0;
then one quantization with the chosen scale.  Built from the search's parts, a
:class:`GapCount` in place of the error units::

    x ─► BlockAmax ─┬─► ScaleRound(M0) ──────────────────► c0 ─┬─► GapCount ─► hit ? c1 : c0 ─► EQ ─►
                    └─► ScaleRound(M1) ─► max(., c0 + 1) ─► c1 ─┘
           (cut 1)                                    (cut 2)                   (cut 3)      (cut 4)

(EQ: ElementQuantizer.)  ``choice`` is the candidate's index.  Latency 0, or 4 with
``pipelined``, a new block every cycle.
"""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale.golden import selectors as gsel

from .element import ElementQuantizer, align
from .floats import fields, magnitude, unpack
from .fouroversix import amax_front
from .pipeline import Cuts, check_flag, cut
from .scale import BlockAmax, ScaleRound, block_port, check_block_size, input_fields, \
    scale_fmt, split_divisor
from .selector import candidate_scales, code_range

__all__ = ["GapCount", "GapPredictor", "check_predictor"]


def check_predictor(rule) -> gsel.Selector:
    """The parsed predictor, refused unless the RTL builds it (gap statistic, two M)."""
    sel = gsel.parse(rule)
    if sel.kind != "predict" or sel.stat != "gap" or len(sel.ms) != 2:
        raise ValueError(f"predictor RTL builds gap predictors of two candidates by M "
                         f"(pg<t>-m<M>_<M>[-up]), not {rule!r}")
    for M in sel.ms:
        if M != int(M):
            raise ValueError(f"predictor RTL: M must be 2**j or 3 * 2**j, got {M}")
        split_divisor(int(M))
    return sel


class GapCount(wiring.Component):
    """Whether at least ``count`` elements lie strictly between ``level * S`` and amax
    (combinational): per lane an exact compare of ``|x|`` with ``level * S`` (the
    ElementQuantizer's alignment, :func:`~finescale.hw.element.align`) and an integer
    compare of the magnitude bits with amax; then an OR (``count`` 1) or a population count.

    Members
    -------
    x: In(block); amax: In(input bits - 1) -- its amax magnitude bits.
    scale: In(8) -- the scale code ``S`` (a value of ``scale_format``).
    hit: Out(1).
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 input_format: str = "bf16", level: float = 4.0, count: int = 1):
        self.block_size = check_block_size(block_size)
        self.sfmt, self.ff = scale_fmt(scale_format), input_fields(input_format)
        self.count = operator.index(count)
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        t = 0
        while t <= 8 and level * 2 ** t != int(level * 2 ** t):
            t += 1
        if not level > 0 or t > 8:
            raise ValueError(f"level must be a positive multiple of 2**-8, got {level}")
        self.level, self.t, self.c = level, t, int(level * 2 ** t)
        super().__init__({"x": In(block_port(self.ff, self.block_size)),
                          "amax": In(self.ff.bits - 1), "scale": In(8), "hit": Out(1)})

    def elaborate(self, platform):
        m = Module()
        sf = fields(self.sfmt)
        _, s_sig, s_exp = unpack(self.scale[:sf.bits], sf)
        cw = ((1 << sf.sig_bits) * self.c).bit_length()
        th = Signal(cw, name="level")
        m.d.comb += th.eq(s_sig * self.c)
        flags = []
        for lane in range(self.block_size):
            _, top, frac = align(m, self.x[lane], self.ff, s_exp, t=self.t, cw=cw,
                                 name=str(lane))
            f = Signal(name=f"gap{lane}")
            m.d.comb += f.eq(((top > th) | ((top == th) & frac))
                             & (magnitude(self.x[lane], self.ff) < self.amax))
            flags.append(f)
        m.d.comb += self.hit.eq(functools.reduce(operator.or_, flags) if self.count == 1 else
                                sum(f.as_unsigned() for f in flags) >= self.count)
        return m


class GapPredictor(Cuts, wiring.Component):
    """Block in; scale code, element codes and the candidate taken (0 or 1) out.

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    x: In(ArrayLayout(16 or 32, block_size)).
    scale: Out(8); codes: Out(ArrayLayout(4, block_size)); choice: Out(1).
    """

    def __init__(self, *, rule: str = "pg1-m6_4-up", scale_format: str = "e4m3",
                 block_size: int = 16, input_format: str = "bf16", prevent_zero: bool = False,
                 pipelined: bool = False):
        self.sel = check_predictor(rule)
        self.pipelined = check_flag("pipelined", pipelined)
        self.amax_unit = BlockAmax(block_size=block_size, input_format=input_format)
        self.rounders = [ScaleRound(scale_format=scale_format, input_format=input_format,
                                    M=int(M), prevent_zero=prevent_zero) for M in self.sel.ms]
        self.gap = GapCount(scale_format=scale_format, block_size=block_size,
                            input_format=input_format, level=self.sel.level,
                            count=self.sel.count)
        self.quantizer = q = ElementQuantizer(scale_format=scale_format, block_size=block_size,
                                              input_format=input_format)
        self.code_range = code_range(q.sfmt, prevent_zero, bool(self.sel.up))
        super().__init__({"valid_in": In(1), "x": In(q.x.shape()), "valid_out": Out(1),
                          "scale": Out(8), "codes": Out(q.codes.shape()), "choice": Out(1)})

    #: after the amax tree, after the candidate scales, after the choice, at the outputs
    CUTS = ("amax", "scales", "choice", "outputs")

    def elaborate(self, platform):
        m = Module()
        reg = self.pipelined
        amax1, amax2, x2, valid2 = amax_front(m, self, registered=reg)
        cands = candidate_scales(m, self.rounders, amax1, self.sel.up, *self.code_range)
        c0, c1 = (cut(m, c, name=f"scale{j}_2", registered=reg) for j, c in enumerate(cands))
        m.submodules.gap = gap = self.gap
        m.d.comb += [gap.x.eq(x2), gap.amax.eq(amax2), gap.scale.eq(c0)]
        choice = cut(m, gap.hit, name="choice3", registered=reg)
        scale = cut(m, Mux(gap.hit, c1, c0), name="scale3", registered=reg)
        x3 = cut(m, x2, name="x3", registered=reg)
        valid3 = cut(m, valid2, name="valid3", registered=reg)
        m.submodules.quant = q = self.quantizer
        m.d.comb += [q.x.eq(x3), q.scale.eq(scale), q.valid_in.eq(valid3)]
        m.d.comb += [
            self.choice.eq(cut(m, choice, name="choice4", registered=reg)),
            self.scale.eq(cut(m, scale, name="scale4", registered=reg)),
            self.codes.eq(cut(m, q.codes, name="codes4", registered=reg)),
            self.valid_out.eq(cut(m, valid3, name="valid4", registered=reg)),
        ]
        return m

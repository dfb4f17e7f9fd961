"""Block dot product: FP4 codes of two blocks and their scale codes -> FP32.

::

    a[i], b[i] ─► 2*E2M1 decode ─► |products| (4b x 4b) ─► signed adder tree ─┐ (cut 1)
    scale_a, scale_b ─► unpack ──────────────────────────────────────────────────┤
                                        |sum| * sig_a * sig_b, exp_a + exp_b - 2 ─► Rounder(FP32) ─► result (cut 2)

``2 * E2M1`` is an integer in {0, 1, 2, 3, 4, 6, 8, 12}, so the block sum of
``4 * A_i * B_i`` is exact (|sum| <= 144 * block_size).  The scales'
significands multiply that integer exactly and their exponents add; the one
rounding is :class:`~finescale.hw.floats.Rounder` to FP32 (RNE, subnormals,
overflow to ±inf).  A NaN scale code gives 0x7FC00000; the sign is the sum's
sign xor the scales' signs (a zero sum gives +0 times them).  This is
:func:`finescale.golden.dotproduct.block_dot` bit for bit.

Latency 0 (combinational) or 2 with ``pipelined`` (after the adder tree and
at the output); a new pair of blocks every cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

import numpy as np

from finescale.golden import formats

from .floats import FP32, Rounder, fields, unpack
from .pipeline import check_flag, cut
from .scale import check_block_size, scale_fmt

__all__ = ["DotProduct"]


class DotProduct(wiring.Component):
    """Scaled dot product of two FP4 blocks.

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    a, b: In(ArrayLayout(4, block_size)) -- E2M1 codes.
    scale_a, scale_b: In(8) -- scale codes of ``scale_format``.
    result: Out(32) -- FP32 bits.
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 element: str = "e2m1", pipelined: bool = False):
        self.block_size = check_block_size(block_size)
        self.sfmt, self.efmt = scale_fmt(scale_format), formats.get(element)
        twice = 2 * self.efmt.table
        if not np.all(np.isfinite(twice) & (twice == np.round(twice))):
            raise ValueError(f"element format {element!r} must have half-integer values")
        self.pipelined = check_flag("pipelined", pipelined)
        lanes = data.ArrayLayout(self.efmt.bits, self.block_size)
        super().__init__({"valid_in": In(1), "a": In(lanes), "b": In(lanes), "scale_a": In(8),
                          "scale_b": In(8), "valid_out": Out(1), "result": Out(32)})

    @property
    def latency(self) -> int:
        return 2 if self.pipelined else 0

    def elaborate(self, platform):
        m = Module()
        reg = self.pipelined
        efmt, sf = self.efmt, fields(self.sfmt)
        half = 1 << (efmt.bits - 1)
        twice = [int(abs(v)) for v in 2 * efmt.table[:half]]  # |2 * value| by magnitude code
        mw = max(twice).bit_length()

        def decode(code, name):
            mag = Signal(mw, name=name)
            with m.Switch(code[:efmt.bits - 1]):
                for c, v in enumerate(twice):
                    with m.Case(c):
                        m.d.comb += mag.eq(v)
            return mag

        # stage 1: exact integer products and their signed sum
        pw = 2 * mw
        sw = pw + 1 + (self.block_size - 1).bit_length()
        terms = []
        for i in range(self.block_size):
            p = Signal(pw, name=f"prod{i}")
            m.d.comb += p.eq(decode(self.a[i], f"a{i}") * decode(self.b[i], f"b{i}"))
            t = Signal(signed(sw), name=f"term{i}")
            neg = self.a[i][efmt.bits - 1] ^ self.b[i][efmt.bits - 1]
            m.d.comb += t.eq(Mux(neg, -p, p))
            terms.append(t)
        while len(terms) > 1:
            nxt = []
            for k in range(0, len(terms) - 1, 2):
                s = Signal(signed(sw), name=f"sum{len(terms)}_{k // 2}")
                m.d.comb += s.eq(terms[k] + terms[k + 1])
                nxt.append(s)
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        total = cut(m, terms[0], name="total1", registered=reg)
        scale_a = cut(m, self.scale_a, name="scale_a1", registered=reg)
        scale_b = cut(m, self.scale_b, name="scale_b1", registered=reg)
        valid1 = cut(m, self.valid_in, name="valid1", registered=reg)

        # stage 2: |sum| * sig_a * sig_b at exponent exp_a + exp_b - 2, one rounding to FP32
        sign_a, sig_a, exp_a = unpack(scale_a[:sf.bits], sf)
        sign_b, sig_b, exp_b = unpack(scale_b[:sf.bits], sf)
        mag = Signal(sw - 1, name="sum_mag")
        m.d.comb += mag.eq(Mux(total < 0, -total, total))
        n = Signal(sw - 1 + 2 * sf.sig_bits, name="exact_sig")
        m.d.comb += n.eq(mag * sig_a * sig_b)
        x = Signal(signed(12), name="exact_exp")
        m.d.comb += x.eq(exp_a + exp_b - 2)
        m.submodules.round = rnd = Rounder(FP32, n_width=len(n), x_width=len(x),
                                           overflow="inf")
        m.d.comb += [rnd.n.eq(n), rnd.sticky.eq(0), rnd.x.eq(x)]
        nan_codes = [int(c) for c in np.flatnonzero(np.isnan(self.sfmt.table))]
        is_nan = Const(0, 1)
        for c in nan_codes:
            is_nan = is_nan | (scale_a[:sf.bits] == c) | (scale_b[:sf.bits] == c)
        sign = (total < 0) ^ sign_a ^ sign_b
        result = Mux(is_nan, 0x7FC00000, Cat(rnd.code[:31], sign))
        m.d.comb += [self.result.eq(cut(m, result, name="result2", registered=reg)),
                     self.valid_out.eq(cut(m, valid1, name="valid2", registered=reg))]
        return m

"""Four-over-six: quantize a block with both M = 6 and M = 4, keep the lower block error.

::

    x ─► BlockAmax ─┬─► ScaleRound(M=6) ─► s6 ─► ElementQuantizer ─► c6 ─► BlockError ─► e6 ─┐
                    │                                                                         ├─► e4 < e6 ? (s4, c4) : (s6, c6)
                    └─► ScaleRound(M=4) ─► s4 ─► ElementQuantizer ─► c4 ─► BlockError ─► e4 ─┘
           (cut 1)                     (cut 2)                                          (cut 3)

Block error, the hardware definition (golden/kernels.py ``block_error_fixed``):
with ``Eb = floor(log2 amax)`` and ``F = error_frac_bits`` fractional bits,
``X_i = floor(|x_i| * 2**(F - Eb))``, ``Y_i = floor(|q_i * S| * 2**(F - Eb))``
(``2 * |q_i|`` is an integer, so ``|q_i * S|`` is ``(2|q_i| * sig_S) * 2**(exp_S - 1)``),
``e_i = X_i - Y_i``; the error is ``sum e_i**2`` (mse) or ``sum |e_i|`` (mae), exact
integers.  ``|x_i| <= amax < 2**(Eb + 1)`` bounds ``X_i < 2**(F + 1)``; ``Y_i`` stays
below ``2**(F + 2)``.  M = 4 is taken only if its error is strictly lower (ties
and all-zero blocks keep 6); ``choice`` = 1 when M = 4 was taken.

Latency 0, or 3 with ``pipelined`` (the cuts above), a new block every cycle.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .element import ElementQuantizer
from .floats import fields, leading_one, unpack
from .pipeline import check_flag, cut
from .scale import BlockAmax, ScaleRound

__all__ = ["BlockError", "FourOverSix", "METRICS"]

METRICS = ("mse", "mae")


class BlockError(wiring.Component):
    """Fixed-point block error of one candidate (combinational; see the module docstring).

    Members
    -------
    x: In(block) -- the block; amax: In(input bits - 1) -- its amax magnitude bits.
    codes: In(E2M1 lanes) -- the candidate's codes; scale: In(8) -- its scale code.
    error: Out(width) -- the exact integer error.
    """

    def __init__(self, *, quantizer: ElementQuantizer, metric: str = "mse",
                 error_frac_bits: int = 8):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {list(METRICS)}, not {metric!r}")
        frac = operator.index(error_frac_bits)
        if not 0 <= frac <= 20:
            raise ValueError(f"error_frac_bits must be in 0..20, got {frac}")
        self.q, self.metric, self.frac = quantizer, metric, frac
        n = quantizer.block_size
        ew = frac + 4  # |e| < 2**(F + 2), plus sign
        width = (2 * ew if metric == "mse" else ew) + n.bit_length()
        super().__init__({"x": In(quantizer.x.shape()), "amax": In(quantizer.ff.bits - 1),
                          "codes": In(quantizer.codes.shape()), "scale": In(8),
                          "error": Out(width)})

    def elaborate(self, platform):
        m = Module()
        ff, sf, efmt, F = self.q.ff, fields(self.q.sfmt), self.q.efmt, self.frac
        _, a_sig, a_exp = unpack(self.amax, ff)
        eb = Signal(signed(12), name="amax_log2")
        m.d.comb += eb.eq(a_exp + leading_one(m, a_sig, "amax_lead"))
        _, s_sig, s_exp = unpack(self.scale[:sf.bits], sf)
        half = 1 << (efmt.bits - 1)
        twice = [int(2 * v) for v in efmt.table[:half]]

        def frame(sig, shift, limit, name):
            """floor(sig * 2**shift), with shift clamped where the result is already decided."""
            p = len(sig)
            t = Signal(range(limit + p + 1), name=f"{name}_shift")
            e = shift + p
            m.d.comb += t.eq(Mux(e < 0, 0, Mux(e > limit + p, limit + p, e)))
            v = Signal(limit + 2 * p, name=f"{name}_wide")
            m.d.comb += v.eq(sig << t)
            return v[p:]

        ew = F + 4
        terms = []
        for i in range(self.q.block_size):
            _, x_sig, x_exp = unpack(self.x[i], ff)
            X = frame(x_sig, x_exp + F - eb, F + 1, f"X{i}")
            mag = Signal(range(max(twice) + 1), name=f"q{i}")
            with m.Switch(self.codes[i][:efmt.bits - 1]):
                for c, v in enumerate(twice):
                    with m.Case(c):
                        m.d.comb += mag.eq(v)
            prod = Signal(len(mag) + len(s_sig), name=f"qs{i}")
            m.d.comb += prod.eq(mag * s_sig)
            Y = frame(prod, s_exp - 1 + F - eb, F + 2, f"Y{i}")
            e = Signal(signed(ew), name=f"e{i}")
            m.d.comb += e.eq(X - Y)
            a = Signal(ew - 1, name=f"abs_e{i}")
            m.d.comb += a.eq(Mux(e < 0, -e, e))
            term = Signal(len(self.error), name=f"term{i}")
            m.d.comb += term.eq(a * a if self.metric == "mse" else a)
            terms.append(term)
        m.d.comb += self.error.eq(sum(terms))
        return m


class FourOverSix(wiring.Component):
    """Block in; scale code, element codes and the choice (1 = M=4) out.

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    x: In(ArrayLayout(16 or 32, block_size)).
    scale: Out(8); codes: Out(ArrayLayout(4, block_size)); choice: Out(1).
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 input_format: str = "bf16", prevent_zero: bool = False, metric: str = "mse",
                 error_frac_bits: int = 8, pipelined: bool = False):
        self.pipelined = check_flag("pipelined", pipelined)
        self.amax_unit = BlockAmax(block_size=block_size, input_format=input_format)
        self.rounders, self.quantizers, self.errors = {}, {}, {}
        for M in (6, 4):
            self.rounders[M] = ScaleRound(scale_format=scale_format, input_format=input_format,
                                          M=M, prevent_zero=prevent_zero)
            self.quantizers[M] = ElementQuantizer(scale_format=scale_format,
                                                  block_size=block_size,
                                                  input_format=input_format)
            self.errors[M] = BlockError(quantizer=self.quantizers[M], metric=metric,
                                        error_frac_bits=error_frac_bits)
        q = self.quantizers[6]
        super().__init__({"valid_in": In(1), "x": In(q.x.shape()), "valid_out": Out(1),
                          "scale": Out(8), "codes": Out(q.codes.shape()), "choice": Out(1)})

    @property
    def latency(self) -> int:
        return 3 if self.pipelined else 0

    def elaborate(self, platform):
        m = Module()
        reg = self.pipelined
        m.submodules.amax = amax = self.amax_unit
        m.d.comb += amax.x.eq(self.x)
        amax1 = cut(m, amax.amax, name="amax1", registered=reg)
        x1 = cut(m, self.x, name="x1", registered=reg)
        valid1 = cut(m, self.valid_in, name="valid1", registered=reg)
        amax2 = cut(m, amax1, name="amax2", registered=reg)
        x2 = cut(m, x1, name="x2", registered=reg)
        valid2 = cut(m, valid1, name="valid2", registered=reg)
        scale, codes, error = {}, {}, {}
        for M in (6, 4):
            m.submodules[f"round{M}"] = rnd = self.rounders[M]
            m.submodules[f"quant{M}"] = q = self.quantizers[M]
            m.submodules[f"error{M}"] = err = self.errors[M]
            m.d.comb += rnd.amax.eq(amax1)
            scale[M] = cut(m, rnd.scale, name=f"scale{M}_2", registered=reg)
            m.d.comb += [q.x.eq(x2), q.scale.eq(scale[M]), q.valid_in.eq(valid2),
                         err.x.eq(x2), err.amax.eq(amax2), err.codes.eq(q.codes),
                         err.scale.eq(scale[M])]
            codes[M], error[M] = q.codes, err.error
        take4 = error[4] < error[6]
        m.d.comb += [
            self.choice.eq(cut(m, take4, name="choice3", registered=reg)),
            self.scale.eq(cut(m, Mux(take4, scale[4], scale[6]), name="scale3", registered=reg)),
            self.codes.eq(cut(m, Mux(take4, codes[4].as_value(), codes[6].as_value()),
                              name="codes3", registered=reg)),
            self.valid_out.eq(cut(m, valid2, name="valid3", registered=reg)),
        ]
        return m

"""Four-over-six: quantize a block with both M = 6 and M = 4, keep the lower block error.

::

    x ─► BlockAmax ─┬─► ScaleRound(M=6) ─► s6 ─► ElementQuantizer ─► c6 ─► BlockError ─► e6 ─┐
                    │                                                                         ├─► e4 < e6 ? (s4, c4) : (s6, c6)
                    └─► ScaleRound(M=4) ─► s4 ─► ElementQuantizer ─► c4 ─► BlockError ─► e4 ─┘
           (cut 1)                     (cut 2)                                          (cut 3)

Block error, the hardware definition (golden/kernels.py ``four_over_six`` with ``fixed``):
with ``Eb = floor(log2 amax)`` and ``F = error_frac_bits`` fractional bits,
``X_i = floor(|x_i| * 2**(F - Eb))``, ``Y_i = floor(|q_i * S| * 2**(F - Eb))``
(``2 * |q_i|`` is an integer, so ``|q_i * S|`` is ``(2|q_i| * sig_S) * 2**(exp_S - 1)``),
``e_i = X_i - Y_i``; the error is ``sum e_i**2`` (mse), ``sum |e_i|`` (mae) or ``max |e_i|``
(max-abs), exact integers.  ``|x_i| <= amax < 2**(Eb + 1)`` bounds ``X_i < 2**(F + 1)``; ``Y_i`` stays
below ``2**(F + 2)`` for the codes the quantizer gives.  M = 4 is taken only if its
error is strictly lower (ties and all-zero blocks keep 6); ``choice`` = 1 when M = 4 was taken.

The error unit forms ``Y`` the way the golden model does, as a table ``T[code]`` built once
per block and candidate, so a lane costs a shift (``X_i``), a table lookup, a subtraction and
a square; see :class:`BlockError`.

Latency 0, or 3 with ``pipelined`` (the cuts above), a new block every cycle.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale.golden.blockformat import BlockFormat

from .element import ElementQuantizer
from .floats import fields, leading_one, unpack
from .pipeline import Cuts, check_flag, cut
from .scale import BlockAmax, ScaleRound

__all__ = ["BlockError", "FourOverSix", "METRICS", "amax_front"]

METRICS = ("mse", "mae", "max-abs")


def square(a):
    """``a * a`` with each cross product ``a_j a_k`` (j < k) formed once:
    ``sum_j a_j 4**j + sum_{j<k} a_j a_k 2**(j+k+1)``, half the partial products of ``a * a``."""
    w = len(a)
    rows = [Cat(*(Cat(a[j], Const(0, 1)) for j in range(w)))]
    rows += [(a[j + 1:] & a[j].replicate(w - j - 1)) << (2 * j + 2) for j in range(w - 1)]
    return sum(rows)


class BlockError(wiring.Component):
    """Fixed-point block error of one candidate (combinational; see the module docstring).

    Members
    -------
    x: In(block) -- the block; amax: In(input bits - 1) -- its amax magnitude bits.
    codes: In(E2M1 lanes) -- the candidate's codes; scale: In(8) -- its scale code.
    error: Out(width) -- the exact integer error.

    Per block, one shift ``W = floor(sig_S * 2**(sh + G))`` (``sh = exp_S - 1 + F - Eb``)
    gives the table ``T[c] = floor(k_c * W / 2**G) = Y`` of every code ``c``
    (``k_c = 2|value_c|``; exact, as ``k_c * sig_S < 2**G`` makes both sides 0 when
    ``sh < -G``).  Per lane, ``|e_i|`` is ``a + neg`` (``a`` the ones' complement of a
    negative ``e_i``), and the mse term ``a**2 + neg * (2a + 1)`` uses :func:`square`.
    """

    def __init__(self, *, quantizer: ElementQuantizer, metric: str = "mse",
                 error_frac_bits: int = 8):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {list(METRICS)}, not {metric!r}")
        frac = operator.index(error_frac_bits)
        if not 0 <= frac <= 20:
            raise ValueError(f"error_frac_bits must be in 0..20, got {frac}")
        self.q, self.metric, self.frac = quantizer, metric, frac
        term = 2 * (frac + 2) if metric == "mse" else frac + 2  # |e_i| < 2**(F + 2)
        width = term + (quantizer.block_size - 1).bit_length() * (metric != "max-abs")
        super().__init__({"x": In(quantizer.x.shape()), "amax": In(quantizer.ff.bits - 1),
                          "codes": In(quantizer.codes.shape()), "scale": In(8),
                          "error": Out(width)})

    def elaborate(self, platform):
        m = Module()
        ff, sf, efmt, F = self.q.ff, fields(self.q.sfmt), self.q.efmt, self.frac
        _, a_sig, a_exp = unpack(self.amax, ff)
        eb = Signal(signed(12), name="amax_log2")
        m.d.comb += eb.eq(a_exp + leading_one(m, a_sig, "amax_lead"))

        def frame(sig, shift, bits, name):
            """floor(sig * 2**shift) mod 2**bits, the shift clamped where that is decided."""
            p = len(sig)
            t = Signal(range(bits + p + 1), name=f"{name}_shift")
            e = shift + p
            m.d.comb += t.eq(Mux(e < 0, 0, Mux(e > bits + p, bits + p, e)))
            v = Signal(bits, name=name)
            m.d.comb += v.eq((sig << t)[p:])
            return v

        # T[c] = Y of code c, mod 2**(F + 2) (see the class docstring)
        _, s_sig, s_exp = unpack(self.scale[:sf.bits], sf)
        twice = [int(2 * v) for v in efmt.table[:1 << (efmt.bits - 1)]]
        G = max(twice).bit_length() + len(s_sig)
        W = frame(s_sig, s_exp - 1 + F - eb + G, G + F + 2, "W")
        table = Array((k * W)[G:G + F + 2] for k in twice)

        terms = []
        for i in range(self.q.block_size):
            _, x_sig, x_exp = unpack(self.x[i], ff)
            X = frame(x_sig, x_exp + F - eb, F + 1, f"X{i}")
            e = Signal(signed(F + 3), name=f"e{i}")
            m.d.comb += e.eq(X - table[self.codes[i][:efmt.bits - 1]])
            neg = e[-1]
            a = Signal(F + 2, name=f"ones_e{i}")
            m.d.comb += a.eq(e[:F + 2] ^ neg.replicate(F + 2))
            term = Signal(len(self.error), name=f"term{i}")
            m.d.comb += term.eq(square(a) + Cat(neg, a & neg.replicate(F + 2))
                                if self.metric == "mse" else a + neg)
            terms.append(term)
        if self.metric == "max-abs":  # a tree of compares
            while len(terms) > 1:
                terms = [Mux(a >= b, a, b) for a, b in zip(terms[::2], terms[1::2])] + \
                    terms[len(terms) - len(terms) % 2:]
        m.d.comb += self.error.eq(sum(terms))
        return m


def amax_front(m, unit, *, registered: bool):
    """Cuts 1 and 2 of a candidate search: ``unit.amax_unit`` on ``unit.x``; returns the amax
    after cut 1 (for the ScaleRounds), and the amax, block and valid after cut 2."""
    m.submodules.amax = amax = unit.amax_unit
    m.d.comb += amax.x.eq(unit.x)
    amax1 = cut(m, amax.amax, name="amax1", registered=registered)
    x1 = cut(m, unit.x, name="x1", registered=registered)
    valid1 = cut(m, unit.valid_in, name="valid1", registered=registered)
    amax2 = cut(m, amax1, name="amax2", registered=registered)
    x2 = cut(m, x1, name="x2", registered=registered)
    valid2 = cut(m, valid1, name="valid2", registered=registered)
    return amax1, amax2, x2, valid2


class FourOverSix(Cuts, wiring.Component):
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
        #: the two M, the element format's two largest values (6 and 4 for E2M1)
        self.candidates = tuple(int(M) for M in BlockFormat(scale_format=scale_format).candidates)
        for M in self.candidates:
            self.rounders[M] = ScaleRound(scale_format=scale_format, input_format=input_format,
                                          M=M, prevent_zero=prevent_zero)
            self.quantizers[M] = ElementQuantizer(scale_format=scale_format,
                                                  block_size=block_size,
                                                  input_format=input_format)
            self.errors[M] = BlockError(quantizer=self.quantizers[M], metric=metric,
                                        error_frac_bits=error_frac_bits)
        q = self.quantizers[self.candidates[0]]
        super().__init__({"valid_in": In(1), "x": In(q.x.shape()), "valid_out": Out(1),
                          "scale": Out(8), "codes": Out(q.codes.shape()), "choice": Out(1)})

    #: the cuts of the drawing: after the amax tree, after the scales, at the outputs
    CUTS = ("amax", "scales", "outputs")

    def elaborate(self, platform):
        m = Module()
        reg = self.pipelined
        amax1, amax2, x2, valid2 = amax_front(m, self, registered=reg)
        scale, codes, error = {}, {}, {}
        for M in self.candidates:
            m.submodules[f"round{M}"] = rnd = self.rounders[M]
            m.submodules[f"quant{M}"] = q = self.quantizers[M]
            m.submodules[f"error{M}"] = err = self.errors[M]
            m.d.comb += rnd.amax.eq(amax1)
            scale[M] = cut(m, rnd.scale, name=f"scale{M}_2", registered=reg)
            m.d.comb += [q.x.eq(x2), q.scale.eq(scale[M]), q.valid_in.eq(valid2),
                         err.x.eq(x2), err.amax.eq(amax2), err.codes.eq(q.codes),
                         err.scale.eq(scale[M])]
            codes[M], error[M] = q.codes, err.error
        m6, m4 = self.candidates
        take4 = error[m4] < error[m6]
        m.d.comb += [
            self.choice.eq(cut(m, take4, name="choice3", registered=reg)),
            self.scale.eq(cut(m, Mux(take4, scale[m4], scale[m6]), name="scale3", registered=reg)),
            self.codes.eq(cut(m, Mux(take4, codes[m4].as_value(), codes[m6].as_value()),
                              name="codes3", registered=reg)),
            self.valid_out.eq(cut(m, valid2, name="valid3", registered=reg)),
        ]
        return m

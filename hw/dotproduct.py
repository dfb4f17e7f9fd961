"""Block dot product: two blocks of FP4 codes and their scale codes -> FP32, optionally accumulated.

::

    a[i], b[i] (lanes per beat) ─► products ─►(products)─► adder_tree ─► Σ beats ─►(sum)─┐
    scale_a, scale_b ─► scales: sig_a*sig_b, shift, sign, NaN ───────────────────────────┤
                                                     apply_scale: |T| * sig ─►(scaled)─┤
      plain:       normalise: |T| sig * 2**(shift + lsb) ─► Rounder(FP32) ─► result ─►(result)
      kulisch:     accumulator: ±|T| sig << shift + acc ─►[acc]─► normalise ─► result, acc_out
      fp32:        align: [acc] ± |T| sig 2**x ─► normalise: Rounder(FP32) ─►[acc]─► result, nan

``2 * E2M1`` is an integer in {0, 1, 2, 3, 4, 6, 8, 12}, so the block sum
``T = sum 4 * A_i * B_i`` is exact (``|T| <= 144 * block_size``).  A scale is
``sig * 2**(q + s)`` with ``2**q`` the scale format's quantum and ``s >= 0``,
so the block's value is the integer ``T * sig_a * sig_b`` times
``2**(s_a + s_b + lsb)``, ``lsb = 2 q - 2``.  The plain unit rounds that once
to FP32 (:class:`~finescale.hw.floats.Rounder`: RNE, subnormals, overflow to
±inf): :func:`finescale.golden.dotproduct.block_dot` bit for bit.  A NaN scale
code gives 0x7FC00000; the sign is T's sign xor the scales' signs (a zero sum
gives +0 times them).

``accumulate="kulisch"`` (or ``True``) adds each block's value, shifted left by ``s_a + s_b``, to
a two's-complement accumulator of :func:`~finescale.golden.dotproduct.accumulator_layout`
bits (LSB ``2**lsb``: exact for ``2**headroom`` blocks, then it wraps and
``acc_overflow`` sticks).  ``acc_clear`` with a block starts a new sum with it;
``result`` is the accumulator rounded once to FP32, NaN after a NaN scale until
the next clear: :func:`~finescale.golden.dotproduct.accumulate_dot` bit for bit.

``accumulate="fp32"`` keeps the running total in a 32-bit FP32 register and
adds each block's exact value to it with one round-to-nearest-even, the
correctly rounded IEEE sum (a fused align-add-normalise-round in the
register's feedback loop, :class:`Align` then :class:`Normalise`):
:func:`~finescale.golden.dotproduct.accumulate_fp32` bit for bit.

* Alignment window: the block value's ``n`` is normalised to a 24-bit field
  (leading one on top); the register's significand is a 24-bit field as it is.
  The field with the larger top exponent fills bits 26..3 of a 27-bit window,
  the other is shifted right by the difference of the top exponents; bits 2
  and 1 are the guard and round positions, and every bit shifted below the
  window is OR-ed into bit 0 (sticky).  A zero field never leads.  The signed
  sum has 28 bits plus a sign; :class:`~finescale.hw.floats.Rounder` (RNE,
  subnormals, overflow to inf) normalises and rounds it.
* Why that is the exact sum's RNE: a field that loses bits lies below
  ``2**(t - 2)`` (``t`` the leading field's top), so the sum's leading one is at
  most one place below the leading field's and the result's rounding
  boundaries (half its quantum, at least ``2**(t - 26)``, or ``2**-150`` for
  subnormal results) are multiples of two sticky-bit units; the exact sum and
  the window's value (the lost bits replaced by the sticky bit) lie strictly
  between the same two such multiples, so they round alike.
* Overflow: ±inf, as IEEE RNE (at or above ``2**128 - 2**103``); ±inf then stays
  (the block values are finite) until a clear.
* Underflow: FP32 subnormals are kept, no flush; a nonzero sum below half the
  smallest subnormal rounds to a zero of its own sign.
* NaN: a NaN scale code sets the sticky ``nan`` flag; the block adds nothing
  and ``result`` reads 0x7FC00000 until the next clear.
* Zeros: an exact cancellation gives +0, (-0) + (-0) gives -0 (a zero block's
  sign is T's sign xor the scales'), a clear starts the total from -0 (IEEE's
  additive identity), so a clearing block's result is its own rounded value.

``lanes`` pairs of elements arrive per cycle, a block in ``block_size / lanes``
beats counted from reset; the scale codes and ``acc_clear`` are read on the
last beat.  ``stages`` registers are placed at the cuts in parentheses, taken
in the order of :data:`CUTS` (accumulate: :data:`ACC_CUTS`, whose ``result``
is the accumulator itself, so at least 1).  ``latency`` = ``stages``: the
result appears that many cycles after the block's last beat; one beat a cycle.
"""

from __future__ import annotations

import operator

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from finescale.golden import formats
from finescale.golden.dotproduct import accumulator_layout

from .floats import FP32, Rounder, fields, leading_one, unpack
from .pipeline import cut
from .scale import check_block_size, scale_fmt

__all__ = ["DotProduct", "CUTS", "ACC_CUTS", "ACCUMULATE"]

#: register cuts of the plain unit, in the order ``stages`` takes them
CUTS = ("sum", "result", "scaled", "products")
#: the accumulating unit's cuts; ``result`` is the accumulator register
ACC_CUTS = ("result", "sum", "scaled", "products")

NAN32 = 0x7FC00000
NEG_ZERO32 = 0x80000000
#: accumulation modes; ``True`` is an alias of ``"kulisch"``
ACCUMULATE = (False, "kulisch", "fp32")


def _twice(efmt) -> list[int]:
    """``|2 * value|`` of each magnitude code of a half-integer element format."""
    twice = 2 * efmt.table
    if not np.all(np.isfinite(twice) & (twice == np.round(twice))):
        raise ValueError(f"element format {efmt.name!r} must have half-integer values")
    return [int(abs(v)) for v in twice[:1 << (efmt.bits - 1)]]


class LanePairs(wiring.Component):
    """Per lane the exact signed product ``4 * A_i * B_i`` of two element codes."""

    def __init__(self, *, element, lanes: int):
        self.efmt, self.twice = element, _twice(element)
        self.pw = 2 * max(self.twice).bit_length() + 1
        codes = data.ArrayLayout(element.bits, lanes)
        super().__init__({"a": In(codes), "b": In(codes),
                          "terms": Out(data.ArrayLayout(signed(self.pw), lanes))})

    def elaborate(self, platform):
        m = Module()
        top = self.efmt.bits - 1
        for i in range(len(self.a)):
            mags = []
            for side in (self.a, self.b):
                mag = Signal(range(max(self.twice) + 1), name=f"{'ab'[len(mags)]}{i}")
                with m.Switch(side[i][:top]):
                    for code, v in enumerate(self.twice):
                        with m.Case(code):
                            m.d.comb += mag.eq(v)
                mags.append(mag)
            p = mags[0] * mags[1]
            m.d.comb += self.terms[i].eq(Mux(self.a[i][top] ^ self.b[i][top], -p, p))
        return m


class AdderTree(wiring.Component):
    """Sum of ``count`` signed terms, a balanced tree of two-input adders."""

    def __init__(self, *, width: int, count: int):
        self.width_out = width + (count - 1).bit_length()
        super().__init__({"terms": In(data.ArrayLayout(signed(width), count)),
                          "total": Out(signed(self.width_out))})

    def elaborate(self, platform):
        m = Module()
        level = [self.terms[i] for i in range(len(self.terms))]
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for k in range(0, len(level) - 1, 2):
                s = Signal(signed(self.width_out), name=f"s{depth}_{k // 2}")
                m.d.comb += s.eq(level[k] + level[k + 1])
                nxt.append(s)
            level = nxt + level[len(level) - len(level) % 2:]
        m.d.comb += self.total.eq(level[0])
        return m


class ScalePair(wiring.Component):
    """Two scale codes -> ``sig_a * sig_b``, ``shift = s_a + s_b``, the sign and NaN-ness."""

    def __init__(self, *, scale_format):
        self.sf = fields(scale_format)
        self.nan_codes = [int(c) for c in np.flatnonzero(np.isnan(scale_format.table))]
        top = float(np.max(np.abs(scale_format.table[np.isfinite(scale_format.table)])))
        self.shift_max = 2 * (int(np.floor(np.log2(top))) - self.sf.mbits - self.sf.emin)
        super().__init__({"scale_a": In(8), "scale_b": In(8), "sig": Out(2 * self.sf.sig_bits),
                          "shift": Out(range(self.shift_max + 1)), "sign": Out(1),
                          "nan": Out(1)})

    def elaborate(self, platform):
        m = Module()
        sf = self.sf
        codes = (self.scale_a[:sf.bits], self.scale_b[:sf.bits])
        (sign_a, sig_a, exp_a), (sign_b, sig_b, exp_b) = (unpack(c, sf) for c in codes)
        nan = Const(0, 1)
        for code in self.nan_codes:
            nan = nan | (codes[0] == code) | (codes[1] == code)
        m.d.comb += [self.sig.eq(sig_a * sig_b), self.shift.eq(exp_a + exp_b - 2 * sf.emin),
                     self.sign.eq(sign_a ^ sign_b), self.nan.eq(nan)]
        return m


class ApplyScale(wiring.Component):
    """``n = |T| * sig_a * sig_b`` and its sign ``neg`` (T's sign xor the scales')."""

    def __init__(self, *, total_width: int, sig_width: int):
        super().__init__({"total": In(signed(total_width)), "sig": In(sig_width), "sign": In(1),
                          "n": Out(total_width - 1 + sig_width), "neg": Out(1)})

    def elaborate(self, platform):
        m = Module()
        mag = Mux(self.total < 0, -self.total, self.total)[:len(self.total) - 1]
        m.d.comb += [self.n.eq(mag * self.sig), self.neg.eq((self.total < 0) ^ self.sign)]
        return m


class Normalise(wiring.Component):
    """``(-1)**neg * n * 2**x`` rounded once to FP32 bits (NaN when ``nan``)."""

    def __init__(self, *, n_width: int, x_width: int):
        self.n_width, self.x_width = n_width, x_width
        super().__init__({"n": In(n_width), "x": In(signed(x_width)), "neg": In(1), "nan": In(1),
                          "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.round = rnd = Rounder(FP32, n_width=self.n_width, x_width=self.x_width,
                                           overflow="inf")
        m.d.comb += [rnd.n.eq(self.n), rnd.sticky.eq(0), rnd.x.eq(self.x),
                     self.result.eq(Mux(self.nan, NAN32, Cat(rnd.code[:31], self.neg)))]
        return m


class Accumulator(wiring.Component):
    """``acc <- (clear ? 0 : acc) ± (n << shift)`` on ``valid``, with sticky overflow and NaN."""

    def __init__(self, *, width: int, n_width: int, shift_max: int):
        self.width = width
        super().__init__({"valid": In(1), "clear": In(1), "n": In(n_width), "neg": In(1),
                          "shift": In(range(shift_max + 1)), "nan": In(1),
                          "acc": Out(signed(width)), "overflow": Out(1), "nan_out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        w = self.width
        aligned = Signal(w, name="aligned")
        m.d.comb += aligned.eq(Mux(self.nan, 0, self.n << self.shift))
        value = Signal(signed(w), name="value")
        m.d.comb += value.eq(Mux(self.neg, -aligned, aligned))
        base = Mux(self.clear, 0, self.acc)
        nxt = Signal(signed(w), name="next")
        m.d.comb += nxt.eq(base + value)
        # two's-complement overflow: operands of one sign, a sum of the other
        wrapped = (base[w - 1] == value[w - 1]) & (nxt[w - 1] != value[w - 1])
        with m.If(self.valid):
            m.d.sync += [self.acc.eq(nxt),
                         self.overflow.eq(Mux(self.clear, 0, self.overflow) | wrapped),
                         self.nan_out.eq(Mux(self.clear, 0, self.nan_out) | self.nan)]
        return m


class Align(wiring.Component):
    """The exact sum of an FP32 total and a block value ``(-1)**neg * n * 2**x``, in a window.

    Combinational.  The block value is normalised first (leading one of ``n`` to
    the top of a 24-bit field), the register's value is taken as it is (a
    subnormal as a field with exponent field 1).  The field with the larger top
    exponent ``e_hi`` goes to bits 26..3 of a 27-bit window, the other is
    shifted right by the exponent difference and its bits below the window are
    OR-ed into bit 0 (sticky; bits 2 and 1 are the guard and round positions).
    The signed sum of the two is ``(-1)**neg_out * (window + f) * 2**x_out``
    with its RNE equal to that of the exact sum (module docstring); ``neg_out``
    is the IEEE sign of a zero sum; ``inf`` when ``acc`` is ±inf (it then stays).

    Members
    -------
    acc: In(32) -- the FP32 total (-0 after a clear).
    n: In(n_width), neg: In(1), x: In(signed(x_width)) -- the block value.
    window: Out(WINDOW + 1), x_out: Out(signed), neg_out: Out(1), inf: Out(1).
    """

    #: bits of the aligned fields: FP32's 24-bit significand, guard, round, sticky
    WINDOW = FP32.sig_bits + 3

    def __init__(self, *, n_width: int, x_width: int):
        if n_width > FP32.sig_bits:
            raise ValueError(f"a block value of {n_width} bits does not fit FP32's significand")
        self.n_width, self.x_width = n_width, x_width
        self.xw = max(x_width, 10) + 2
        super().__init__({"acc": In(32), "n": In(n_width), "neg": In(1),
                          "x": In(signed(x_width)), "window": Out(self.WINDOW + 1),
                          "x_out": Out(signed(self.xw)), "neg_out": Out(1), "inf": Out(1)})

    def elaborate(self, platform):
        m = Module()
        sig, ww, xw = FP32.sig_bits, self.WINDOW, self.xw
        r_neg, r_sig, r_x = unpack(self.acc, FP32)
        m.d.comb += self.inf.eq(self.acc[23:31] == 0xFF)
        # the block value normalised: its leading one at the top of a 24-bit field
        lead = leading_one(m, self.n, "lead")
        v_sig, up = Signal(sig, name="v_sig"), Signal(range(sig), name="v_shift")
        m.d.comb += [up.eq(sig - 1 - lead), v_sig.eq(self.n << up)]
        v_top, r_top = Signal(signed(xw), name="v_top"), Signal(signed(xw), name="r_top")
        m.d.comb += [v_top.eq(self.x + lead), r_top.eq(r_x + sig - 1)]
        # the field whose top weighs more leads (a zero one never does)
        v_hi = Signal(name="v_hi")
        m.d.comb += v_hi.eq((r_sig == 0) | ((self.n != 0) & (v_top > r_top)))
        hi, lo = Signal(sig, name="hi"), Signal(sig, name="lo")
        hi_top = Signal(signed(xw), name="hi_top")
        hi_neg, lo_neg = Signal(name="hi_neg"), Signal(name="lo_neg")
        m.d.comb += [hi.eq(Mux(v_hi, v_sig, r_sig)), lo.eq(Mux(v_hi, r_sig, v_sig)),
                     hi_top.eq(Mux(v_hi, v_top, r_top)),
                     hi_neg.eq(Mux(v_hi, self.neg, r_neg)), lo_neg.eq(Mux(v_hi, r_neg, self.neg))]
        # {lo, 3 zeros, spill} >> d: the window part and the sticky spill (diff < 0 only
        # when lo is zero, so its wrapped shift is harmless)
        d = Signal(range(ww + 1), name="d")
        diff = Mux(v_hi, v_top - r_top, r_top - v_top)
        m.d.comb += d.eq(Mux(diff > ww, ww, diff))
        spread = Signal(2 * ww, name="spread")
        m.d.comb += spread.eq(Cat(Const(0, ww + 3), lo) >> d)
        aligned = Signal(ww, name="aligned")
        m.d.comb += aligned.eq(spread[ww:] | (spread[:ww] != 0))
        hi_w = Cat(Const(0, 3), hi)
        total = Signal(signed(ww + 2), name="total")
        m.d.comb += total.eq(Mux(hi_neg, -hi_w, hi_w) + Mux(lo_neg, -aligned, aligned))
        m.d.comb += [self.window.eq(Mux(total < 0, -total, total)),
                     self.x_out.eq(hi_top - (ww - 1)),
                     self.neg_out.eq(Mux(total == 0, r_neg & self.neg, total < 0))]
        return m


def _positive(name, value, *, allow_zero=False):
    v = operator.index(value)
    if isinstance(value, bool) or v < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                         f"integer, got {value!r}")
    return v


class DotProduct(wiring.Component):
    """Scaled dot product of two FP4 blocks (see the module docstring).

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    a, b: In(ArrayLayout(4, lanes)) -- E2M1 codes of one beat.
    scale_a, scale_b: In(8) -- scale codes of ``scale_format`` (read on the last beat).
    acc_clear: In(1) -- accumulating only: this block starts a new sum (FormatScope's ``clear``,
    which instead zeroes the total and drops its block).
    valid_in also serves as the accumulating unit's ``en``: a beat without it is not taken
    and the total holds.
    result: Out(32) -- FP32 bits (accumulating: the registered running total).
    acc_out: Out(signed(width)), acc_overflow: Out(1) -- ``accumulate="kulisch"`` only.
    nan: Out(1) -- ``accumulate="fp32"`` only: the sticky NaN flag (cleared by a clear).
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 lanes: int | None = None, accumulate: bool | str = False, headroom: int = 16,
                 stages: int | None = None, element: str = "e2m1"):
        self.block_size = check_block_size(block_size)
        self.lanes = self.block_size if lanes is None else _positive("lanes", lanes)
        if self.block_size % self.lanes:
            raise ValueError(f"lanes ({self.lanes}) must divide block_size ({self.block_size})")
        self.beats = self.block_size // self.lanes
        if accumulate is True:
            accumulate = "kulisch"
        if not (accumulate is False or accumulate in ACCUMULATE[1:]):
            raise TypeError(f"accumulate must be one of {ACCUMULATE} (True: 'kulisch'), "
                            f"got {accumulate!r}")
        self.accumulate = accumulate
        self.sfmt, self.efmt = scale_fmt(scale_format), formats.get(element)
        order = ACC_CUTS if accumulate else CUTS
        lo = 1 if accumulate else 0
        self.stages = lo if stages is None else _positive("stages", stages, allow_zero=True)
        if not lo <= self.stages <= len(order):
            raise ValueError(f"stages must be in {lo}..{len(order)} for "
                             f"{'an accumulating' if accumulate else 'a plain'} dot product, "
                             f"got {stages!r}")
        self.cuts = frozenset(order[:self.stages])
        self.layout = accumulator_layout(self.sfmt, self.block_size, headroom=headroom,
                                         element=self.efmt)
        # the parts, built here so their widths size the ports
        self.pairs = LanePairs(element=self.efmt, lanes=self.lanes)
        self.tree = AdderTree(width=self.pairs.pw, count=self.lanes)
        self.scales = ScalePair(scale_format=self.sfmt)
        total_width = self.pairs.pw + (self.block_size - 1).bit_length()
        self.apply = ApplyScale(total_width=total_width, sig_width=len(self.scales.sig))
        n_width = len(self.apply.n)
        span = max(abs(self.layout.lsb), self.scales.shift_max + self.layout.lsb)
        if accumulate == "kulisch":
            w = self.layout.width
            self.acc = Accumulator(width=w, n_width=n_width, shift_max=self.scales.shift_max)
            self.normalise = Normalise(n_width=w, x_width=abs(self.layout.lsb).bit_length() + 2)
        elif accumulate == "fp32":
            self.align = Align(n_width=n_width, x_width=span.bit_length() + 2)
            self.normalise = Normalise(n_width=len(self.align.window),
                                       x_width=len(self.align.x_out))
        else:
            self.normalise = Normalise(n_width=n_width, x_width=span.bit_length() + 2)
        codes = data.ArrayLayout(self.efmt.bits, self.lanes)
        ports = {"valid_in": In(1), "a": In(codes), "b": In(codes), "scale_a": In(8),
                 "scale_b": In(8)}
        if accumulate:
            ports["acc_clear"] = In(1)
        ports |= {"valid_out": Out(1), "result": Out(32)}
        if accumulate == "kulisch":
            ports |= {"acc_out": Out(signed(self.layout.width)), "acc_overflow": Out(1)}
        elif accumulate == "fp32":
            ports["nan"] = Out(1)
        super().__init__(ports)

    @property
    def latency(self) -> int:
        return self.stages

    def elaborate(self, platform):
        m = Module()

        def stage(name, **values):
            return {k: cut(m, v, name=f"{k}_{name}", registered=name in self.cuts)
                    for k, v in values.items()}

        last = Const(1, 1)
        if self.beats > 1:  # beats of a block, counted from reset
            beat = Signal(range(self.beats), name="beat")
            last = beat == self.beats - 1
            with m.If(self.valid_in):
                m.d.sync += beat.eq(Mux(last, 0, beat + 1))
        m.submodules.products = pairs = self.pairs
        m.submodules.scales = scales = self.scales
        m.d.comb += [pairs.a.eq(self.a), pairs.b.eq(self.b),
                     scales.scale_a.eq(self.scale_a), scales.scale_b.eq(self.scale_b)]
        clear = self.acc_clear if self.accumulate else Const(0, 1)
        s = stage("products", terms=pairs.terms, valid=self.valid_in, last=last, sig=scales.sig,
                  shift=scales.shift, sign=scales.sign, nan=scales.nan, clear=clear)

        m.submodules.adder_tree = tree = self.tree
        m.d.comb += tree.terms.eq(s["terms"])
        total = Signal(signed(len(self.apply.total)), name="block_total")
        if self.beats > 1:  # the sum of the block's earlier beats
            part = Signal(signed(len(total)), name="partial")
            m.d.comb += total.eq(part + tree.total)
            with m.If(s["valid"]):
                m.d.sync += part.eq(Mux(s["last"], 0, total))
        else:
            m.d.comb += total.eq(tree.total)
        s = stage("sum", total=total, valid=s["valid"] & s["last"], sig=s["sig"],
                  shift=s["shift"], sign=s["sign"], nan=s["nan"], clear=s["clear"])

        m.submodules.apply_scale = apply = self.apply
        m.d.comb += [apply.total.eq(s["total"]), apply.sig.eq(s["sig"]), apply.sign.eq(s["sign"])]
        s = stage("scaled", n=apply.n, neg=apply.neg, shift=s["shift"], nan=s["nan"],
                  valid=s["valid"], clear=s["clear"])

        m.submodules.normalise = norm = self.normalise
        if self.accumulate == "fp32":
            self._fp32_total(m, s, norm)
        elif self.accumulate:
            m.submodules.accumulator = acc = self.acc
            m.d.comb += [acc.valid.eq(s["valid"]), acc.clear.eq(s["clear"]), acc.n.eq(s["n"]),
                         acc.neg.eq(s["neg"]), acc.shift.eq(s["shift"]), acc.nan.eq(s["nan"])]
            m.d.sync += self.valid_out.eq(s["valid"])
            mag = Mux(acc.acc < 0, -acc.acc, acc.acc)
            m.d.comb += [norm.n.eq(mag[:self.layout.width]), norm.x.eq(self.layout.lsb),
                         norm.neg.eq(acc.acc < 0), norm.nan.eq(acc.nan_out),
                         self.result.eq(norm.result), self.acc_out.eq(acc.acc),
                         self.acc_overflow.eq(acc.overflow)]
        else:
            m.d.comb += [norm.n.eq(s["n"]), norm.x.eq(s["shift"] + self.layout.lsb),
                         norm.neg.eq(s["neg"]), norm.nan.eq(s["nan"])]
            out = stage("result", result=norm.result, valid=s["valid"])
            m.d.comb += [self.result.eq(out["result"]), self.valid_out.eq(out["valid"])]
        return m

    def _fp32_total(self, m, s, norm):
        """The FP32 register and its feedback loop: align, add, normalise and round once."""
        acc = Signal(32, name="acc", init=NEG_ZERO32)  # reset: -0, as after a clear
        nan = Signal(name="nan_flag")
        base = Signal(32, name="base")
        m.d.comb += base.eq(Mux(s["clear"], NEG_ZERO32, acc))
        m.submodules.align = align = self.align
        m.d.comb += [align.acc.eq(base), align.n.eq(s["n"]), align.neg.eq(s["neg"]),
                     align.x.eq(s["shift"] + self.layout.lsb),
                     norm.n.eq(align.window), norm.x.eq(align.x_out), norm.neg.eq(align.neg_out),
                     norm.nan.eq(0)]
        with m.If(s["valid"]):  # a NaN block adds nothing; inf stays
            m.d.sync += [acc.eq(Mux(s["nan"] | align.inf, base, norm.result)),
                         nan.eq(Mux(s["clear"], 0, nan) | s["nan"])]
        m.d.sync += self.valid_out.eq(s["valid"])
        m.d.comb += [self.result.eq(Mux(nan, NAN32, acc)), self.nan.eq(nan)]

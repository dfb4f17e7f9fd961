"""Scale selection: block amax, then ``S = RoundSF(amax / M)`` into the scale format.

``amax / M`` is never approximated.  With ``|amax| = sig * 2**e``:

* ``M = 2**j`` (4 for the MX rule): the quotient is ``sig * 2**(e - j)``, an
  exponent shift;
* ``M = 3 * 2**j`` (6 for abs-max): ``sig * 2**K`` goes through a restoring
  divide-by-3 chain (a 2-bit remainder per bit), giving the quotient
  ``floor(sig * 2**K / 3)`` and an exact sticky bit (remainder != 0); ``K`` is
  chosen so the quotient keeps ``mbits + 3`` significant bits for every input,
  subnormal BF16 included.

:class:`~finescale.hw.floats.Rounder` then rounds the exact quotient (RNE, or
floor for ``rule="mx"``) with subnormals, saturation at the format max and,
for E8M0, clamping to its smallest value.  ``prevent_zero`` replaces a zero
scale by the smallest subnormal.  This is the golden model's
``round_scale`` / ``apply_prevent_zero`` bit for bit.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from finescale.golden import formats
from finescale.golden.blockformat import BlockFormat, Rule

from .floats import Rounder, fields, magnitude, unpack
from .pipeline import Cuts, check_flag, cut

__all__ = ["BlockAmax", "ScaleRound", "ScaleUnit", "RULES", "check_block_size",
           "scale_fmt", "input_fields", "block_port"]

#: the rules this unit implements: rule -> (M, RoundSF rounding), as the golden model
#: derives them from the E2M1 grid (6 and "rne"; the largest power of two, 4, and "floor")
RULES = {r: (int(BlockFormat(rule=Rule(r)).M), Rule(r).scale_rounding) for r in ("abs-max", "mx")}


def check_block_size(block_size) -> int:
    if isinstance(block_size, bool) or operator.index(block_size) < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    return operator.index(block_size)


def scale_fmt(name) -> formats.Format:
    """A scale format of the golden model: a float format of at most 8 bits."""
    fmt = formats.get(name)
    if fmt.integer:
        raise ValueError(f"scale format must be a float format, not {fmt.name!r}")
    return fmt


def input_fields(name: str) -> formats.Format:
    """A block input format (BF16, FP32) of the golden model."""
    return formats.get_input(name)


def block_port(ff, block_size):
    """Layout of a block input: ``block_size`` lanes of ``ff``'s bit patterns, lane 0 lowest."""
    return data.ArrayLayout(unsigned(ff.bits), block_size)


def split_divisor(M) -> tuple[int, int]:
    """``(t, j)`` with ``M = 3**t * 2**j``, t in {0, 1}: the divisors the unit can do exactly."""
    M = operator.index(M)
    t = 1 if M % 3 == 0 else 0
    rest = M // 3 ** t
    if M < 1 or rest & (rest - 1):
        raise ValueError(f"M must be 2**j or 3 * 2**j, got {M}")
    return t, rest.bit_length() - 1


class BlockAmax(wiring.Component):
    """Largest magnitude of a block: a balanced tree of integer compares.

    Combinational.  IEEE magnitudes (the bits below the sign) compare as
    unsigned integers, so no unpacking is needed.

    Members
    -------
    x: In(ArrayLayout(input bits, block_size)) -- the block.
    amax: Out(input bits - 1) -- magnitude bits of the largest |x|.
    """

    def __init__(self, *, block_size: int, input_format: str = "bf16"):
        self.block_size = check_block_size(block_size)
        self.ff = input_fields(input_format)
        super().__init__({"x": In(block_port(self.ff, self.block_size)),
                          "amax": Out(self.ff.bits - 1)})

    def elaborate(self, platform):
        m = Module()
        level = [magnitude(self.x[i], self.ff) for i in range(self.block_size)]
        depth = 0
        while len(level) > 1:
            nxt = []
            for k in range(0, len(level) - 1, 2):
                a, b = level[k], level[k + 1]
                s = Signal(len(self.amax), name=f"max{depth}_{k // 2}")
                m.d.comb += s.eq(Mux(a >= b, a, b))
                nxt.append(s)
            if len(level) % 2:
                nxt.append(level[-1])
            level, depth = nxt, depth + 1
        m.d.comb += self.amax.eq(level[0])
        return m


class ScaleRound(wiring.Component):
    """``RoundSF(amax / M)``: the scale code of a block from its amax (combinational).

    Members
    -------
    amax: In(input bits - 1) -- magnitude bits of the block maximum.
    scale: Out(8) -- the scale code (a positive value of ``scale_format``).
    """

    def __init__(self, *, scale_format: str = "e4m3", input_format: str = "bf16", M: int = 6,
                 rounding: str = "rne", prevent_zero: bool = False):
        self.sfmt = scale_fmt(scale_format)
        self.ff = input_fields(input_format)
        self.three, self.shift = split_divisor(M)
        if rounding not in ("rne", "floor"):
            raise ValueError(f"rounding must be 'rne' or 'floor', not {rounding!r}")
        self.rounding = rounding
        self.prevent_zero = check_flag("prevent_zero", prevent_zero)
        super().__init__({"amax": In(self.ff.bits - 1), "scale": Out(8)})

    def elaborate(self, platform):
        m = Module()
        sf = fields(self.sfmt)
        _, sig, exp = unpack(self.amax, self.ff)
        if self.three:
            # sig * 2**K / 3 by a restoring chain: quotient bits and an exact remainder
            K = sf.mbits + 4
            dividend = Cat(Const(0, K), sig)
            qbits, rem = [], Const(0, 2)
            for i in reversed(range(len(dividend))):
                part = Cat(dividend[i], rem)
                ge = part >= 3
                qbits.append(ge)
                rem = Signal(2, name=f"rem{i}")  # a signal a step: the chain stays linear
                m.d.comb += rem.eq(Mux(ge, part - 3, part))
            n, sticky, x = Cat(*reversed(qbits)), rem != 0, exp - K - self.shift
        else:
            n, sticky, x = sig, Const(0, 1), exp - self.shift
        xs = Signal(range(-(1 << 12), 1 << 12), name="quot_exp")
        m.d.comb += xs.eq(x)
        m.submodules.round = rnd = Rounder(
            sf, n_width=len(n), x_width=len(xs), mode=self.rounding)
        m.d.comb += [rnd.n.eq(n), rnd.sticky.eq(sticky), rnd.x.eq(xs)]
        code = rnd.code
        if self.prevent_zero and self.sfmt.zero_code is not None:
            floor = int(self.sfmt.encode(self.sfmt.min_subnormal))
            code = Mux(rnd.code == 0, floor, rnd.code)
        m.d.comb += self.scale.eq(code)
        return m


class ScaleUnit(Cuts, wiring.Component):
    """Scale-selection unit: block in, scale code out.

    ``x -> BlockAmax -> | -> ScaleRound -> | -> scale``; each ``|`` is a
    register when ``pipelined`` (latency 2, a new block every cycle), a wire
    otherwise (latency 0, no clock).

    Members
    -------
    valid_in: In(1), valid_out: Out(1) -- ``valid_in`` delayed by :attr:`latency`.
    x: In(ArrayLayout(16 or 32, block_size)) -- BF16 / FP32 bit patterns, lane i in
        bits ``[W*i+W-1 : W*i]``.
    scale: Out(8) -- the scale code.
    """

    def __init__(self, *, scale_format: str = "e4m3", block_size: int = 16,
                 input_format: str = "bf16", rule: str = "abs-max", prevent_zero: bool = False,
                 pipelined: bool = False):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {list(RULES)}, not {rule!r}")
        self.pipelined = check_flag("pipelined", pipelined)
        self.amax_unit = BlockAmax(block_size=block_size, input_format=input_format)
        M, rounding = RULES[rule]
        self.round_unit = ScaleRound(scale_format=scale_format, input_format=input_format, M=M,
                                     rounding=rounding, prevent_zero=prevent_zero)
        super().__init__({"valid_in": In(1), "x": In(self.amax_unit.x.shape()),
                          "valid_out": Out(1), "scale": Out(8)})

    #: the cuts, in datapath order: after the amax tree, after rounding
    CUTS = ("amax1", "scale2")

    def elaborate(self, platform):
        m = Module()
        reg = self.pipelined
        m.submodules.amax = amax = self.amax_unit
        m.submodules.round = rnd = self.round_unit
        m.d.comb += amax.x.eq(self.x)
        c_amax, c_scale = self.CUTS
        valid1 = cut(m, self.valid_in, name="valid1", registered=reg)
        m.d.comb += rnd.amax.eq(cut(m, amax.amax, name=c_amax, registered=reg))
        m.d.comb += [self.valid_out.eq(cut(m, valid1, name="valid2", registered=reg)),
                     self.scale.eq(cut(m, rnd.scale, name=c_scale, registered=reg))]
        return m

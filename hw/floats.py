"""Float fields in hardware: unpacking BF16 / FP32 / minifloat codes, and one rounder.

Every datapath here works on numbers written as ``sig * 2**exp`` with an
unsigned integer significand and a signed exponent; these helpers turn bit
patterns into that form and back:

* every format, the block inputs (BF16, FP32, :data:`INPUTS`), :data:`FP32` the dot
  product's result and the 8-bit scale and element formats, is a
  :class:`~finescale.golden.formats.Format` of :mod:`finescale.golden.formats`.
* :func:`unpack` gives ``(sign, sig, exp)`` of an IEEE / minifloat bit
  pattern; :func:`magnitude` its bits without the sign (which compare as
  integers in the order of the values).
* :class:`Rounder` rounds ``(N + f) * 2**X`` (``f`` in ``[0, 1)``, known only
  through a sticky bit) to a code of a float format, exactly: round-to-nearest-
  even or floor, subnormals, saturation or overflow to infinity, clamping below
  the smallest value of a format without zero (E8M0).

Helpers that take ``m`` add their logic to the module being elaborated.
"""

from __future__ import annotations


from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale.golden import formats
from finescale.golden.formats import Format

__all__ = ["INPUTS", "FP32", "fields", "unpack", "magnitude", "leading_one",
           "Rounder"]


def fields(fmt: Format) -> Format:
    """A golden-model float format (its fields are the one source of the unit's constants)."""
    if fmt.integer:
        raise ValueError(f"format {fmt.name!r} is an integer format, not a float")
    return fmt


#: block input formats (IEEE binary16-brain and binary32); Inf / NaN inputs are not defined
INPUTS = formats.INPUTS
FP32 = INPUTS["fp32"]


def magnitude(value, ff: Format):
    """Bits of ``value`` without the sign: unsigned integers ordered like the magnitudes."""
    return value[:ff.ebits + ff.mbits]


def unpack(value, ff: Format):
    """``(sign, sig, exp)`` with ``|value| = sig * 2**exp`` (finite codes; Inf/NaN undefined).

    ``value`` may be a magnitude without its sign bit (the sign is then 0).

    ``sig`` is unsigned of :attr:`Format.sig_bits` bits (the hidden bit set
    for normal numbers), ``exp`` signed and wide enough for every exponent.
    """
    man = value[:ff.mbits]
    efield = value[ff.mbits:ff.mbits + ff.ebits]
    top = ff.ebits + ff.mbits
    sign = value[top] if ff.signed and len(value) > top else Const(0, 1)
    ew = max(ff.ebits, (abs(ff.emin) + (1 << ff.ebits)).bit_length()) + 2
    if ff.subnormals:
        normal = efield != 0
        sig = Mux(normal, Const(1 << ff.mbits, ff.sig_bits) | man, man)
        exp = Mux(normal, efield, 1) - (ff.bias + ff.mbits)
    else:
        sig = Const(1 << ff.mbits, ff.sig_bits) | man
        exp = efield - (ff.bias + ff.mbits)
    return sign, sig[:ff.sig_bits], exp.as_signed()[:ew].as_signed()


def leading_one(m: Module, n, name: str):
    """Index of the highest set bit of ``n`` (0 when ``n`` is 0): a priority encoder built as a
    balanced tree (the upper half's index if it has a one, else the lower half's)."""
    def lead(bits):
        if len(bits) == 1:
            return Const(0, 1)
        half = 1 << ((len(bits) - 1).bit_length() - 1)  # lower part: a power of two
        lo, hi = bits[:half], bits[half:]
        return Mux(hi.any(), half + lead(hi), lead(lo))

    pos = Signal(range(max(len(n), 2)), name=name)
    m.d.comb += pos.eq(lead(n))
    return pos


class Rounder(wiring.Component):
    """Round ``(n + f) * 2**x`` to a float code (``f`` in [0, 1), ``sticky`` = ``f != 0``).

    Combinational.  The result is the code of the nearest value (ties to the
    even code; ``mode="floor"``: the largest value not above), computed as a
    float rounder does: the leading one of ``n`` fixes the exponent, the kept
    bits are ``n`` shifted to that exponent's quantum (fixed at the smallest
    exponent for subnormals), and ``code = (field - 1) << mbits + kept`` so the
    rounding carry walks into the exponent.  Above the largest finite value
    the code saturates (``overflow="saturate"``) or becomes +inf
    (``overflow="inf"``); below the smallest value of a format without zero it
    clamps to code 0.  ``n = 0`` gives code 0.  The sign is the caller's.

    A nonzero ``sticky`` needs ``n`` to carry at least ``mbits + 2`` significant
    bits (the callers guarantee it).

    Members
    -------
    n: In(n_width) -- integer part of the value's significand.
    sticky: In(1) -- the value has a nonzero fraction below ``n``'s LSB.
    x: In(signed(x_width)) -- exponent of ``n``'s LSB.
    code: Out(bits) -- the rounded code (sign bit 0).
    """

    def __init__(self, ff: Format, *, n_width: int, x_width: int, mode: str = "rne",
                 overflow: str = "saturate"):
        if mode not in ("rne", "floor"):
            raise ValueError(f"Rounder mode must be 'rne' or 'floor', not {mode!r}")
        if overflow not in ("saturate", "inf"):
            raise ValueError(f"Rounder overflow must be 'saturate' or 'inf', not {overflow!r}")
        if overflow == "inf" and ff.inf_code is None:
            raise ValueError(f"format {ff.name!r} has no infinity")
        self.ff, self.mode, self.overflow = ff, mode, overflow
        self.n_width, self.x_width = n_width, x_width
        super().__init__({"n": In(n_width), "sticky": In(1), "x": In(signed(x_width)),
                          "code": Out(ff.bits)})

    def elaborate(self, platform):
        m = Module()
        ff, w = self.ff, self.n_width
        p = leading_one(m, self.n, "lead")
        iw = max(self.x_width, (w + abs(ff.emin) + (1 << ff.ebits)).bit_length()) + 3
        # biased exponent of the leading one, and the shift to the quantum of the result
        be = Signal(signed(iw))
        shift = Signal(signed(iw))
        m.d.comb += be.eq(p + self.x + (ff.bias))
        if ff.subnormals:
            sub_shift = ff.emin - self.x  # quantum 2**emin for subnormal results
            m.d.comb += shift.eq(Mux(be >= 1, p - ff.mbits, sub_shift))
            field = Mux(be >= 1, be, 1)
        else:
            m.d.comb += shift.eq(p - ff.mbits)
            field = be
        # right shift (clamped past every bit) or exact left shift
        rs = Signal(range(w + 2))
        ls = Signal(range(ff.mbits + 2))
        m.d.comb += [rs.eq(Mux(shift > w + 1, w + 1, Mux(shift > 0, shift, 0))),
                     ls.eq(Mux(shift < 0, -shift, 0))]
        # n with a zero bit below it: after the shift, bit 0 is the round bit
        n2 = Cat(Const(0, 1), self.n)
        shifted = Signal(w + 1)
        kept = Signal(ff.mbits + 2)
        low = Signal()
        ones = Const((1 << (w + 1)) - 1, w + 1)
        m.d.comb += [
            shifted.eq(n2 >> rs),
            kept.eq(Mux(shift < 0, self.n << ls, shifted[1:])),
            low.eq(((n2 & ~(ones << rs)[:w + 1]) != 0) | self.sticky),
        ]
        rbit = shifted[0]
        cw = iw + ff.mbits + 2
        trunc = Signal(signed(cw))
        m.d.comb += trunc.eq(((field - 1) << ff.mbits) + kept)
        inc = (rbit & (low | trunc[0])) if self.mode == "rne" else Const(0, 1)
        full = Signal(signed(cw))
        m.d.comb += full.eq(trunc + inc)
        top = ff.inf_code if self.overflow == "inf" else ff.max_code
        with m.If(self.n == 0):
            m.d.comb += self.code.eq(0)
        with m.Elif(full < 0):
            m.d.comb += self.code.eq(0)
        with m.Elif(full > ff.max_code):
            m.d.comb += self.code.eq(top)
        with m.Else():
            m.d.comb += self.code.eq(full)
        return m

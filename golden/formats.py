"""Number formats: one description for every element and scale format.

A :class:`Format` is a handful of fields (exponent bits, mantissa bits, bias,
signedness, how special values are encoded); everything else (value table,
max, smallest normal and subnormal, NaN code) is derived.  The golden model's
encoder and decoder, the Amaranth units (field widths, bias, saturation
constant), the cocotb scoreboard and the synthesis labels all read these
objects, so adding a format is one line in :data:`FORMATS`.  :data:`INPUTS` describes
the wider formats the hardware's blocks arrive in (BF16, FP32) with the same class.

Codes are ``uint8``; unsigned formats leave the top bits zero, so the code of
a UE4M3 scale equals the code of the positive E4M3 value.
"""

from __future__ import annotations

import dataclasses
import functools
import operator

import numpy as np

from . import rounding as _rounding

__all__ = ["Format", "FORMATS", "SCALE_FORMATS", "INPUTS", "get", "get_input", "names", "ROUNDING_MODES",
           "OVERFLOW_MODES"]

ROUNDING_MODES = _rounding.MODES
OVERFLOW_MODES = _rounding.OVERFLOWS

#: How the codes a format sets aside for special values are laid out.
SPECIALS = {
    "none": "every code is a finite value",
    "nan-ones": "only the all-ones magnitude code is NaN (OCP E4M3 'fn', E8M0)",
    "nan-top-exponent": "every code with the top exponent is NaN (no infinities)",
    "ieee": "top exponent: zero mantissa is infinity, others NaN (E5M2)",
}


@dataclasses.dataclass(frozen=True)
class Format:
    """A minifloat (or two's-complement integer) format; codes of up to 16 bits have a value
    table (encode / decode), wider ones (FP32) only their field layout.

    Members
    -------
    name: the registry name, e.g. ``"e4m3"``.
    ebits, mbits: exponent and mantissa field widths (``ebits == 0`` for integers).
    bias: exponent bias (ignored for integers).
    signed: whether a sign bit is present (sign-magnitude; two's complement for integers).
    subnormals: whether exponent field 0 encodes subnormals (and zero).  ``False``
        for E8M0, whose code 0 is 2**-bias and which has no zero.
    specials: one of :data:`SPECIALS`.
    integer: a two's-complement integer format (INT4, INT8).
    numpy: the numpy / ml_dtypes dtype name whose bit patterns are this format's codes
        (``"bfloat16"``, ``"float32"``), or None.
    """

    name: str
    ebits: int
    mbits: int
    bias: int = 0
    signed: bool = True
    subnormals: bool = True
    specials: str = "none"
    integer: bool = False
    numpy: str | None = None

    def __post_init__(self):
        for field in ("ebits", "mbits", "bias"):
            operator.index(getattr(self, field))
        if self.specials not in SPECIALS:
            raise ValueError(f"specials must be one of {sorted(SPECIALS)}, not {self.specials!r}")
        if self.integer and self.ebits:
            raise ValueError("an integer format has no exponent field")
        if not 1 <= self.bits <= 32:
            raise ValueError(f"format {self.name!r} has {self.bits} bits; 1 to 32 are supported")

    # -- widths -------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Width of a code in bits (sign included where present)."""
        return self.ebits + self.mbits + int(self.signed)

    @property
    def sign_bit(self) -> int:
        """Mask of the sign bit (0 for unsigned formats)."""
        return 1 << (self.bits - 1) if self.signed else 0

    @property
    def emax_field(self) -> int:
        """Largest exponent field value that encodes finite numbers."""
        top = (1 << self.ebits) - 1
        return top - 1 if self.specials in ("ieee", "nan-top-exponent") else top

    @property
    def sig_bits(self) -> int:
        """Significand width with the hidden bit."""
        return self.mbits + 1

    @property
    def emin(self) -> int:
        """Exponent of the significand's LSB for the smallest exponent field (1 or 0)."""
        return (1 if self.subnormals else 0) - self.bias - self.mbits

    @property
    def dtypes(self) -> tuple[np.dtype, np.dtype]:
        """(value dtype, bit-pattern dtype) of a format that numpy / ml_dtypes holds."""
        if self.numpy is None:
            raise ValueError(f"format {self.name!r} has no numpy dtype")
        import ml_dtypes
        return np.dtype(getattr(ml_dtypes, self.numpy, self.numpy)), np.dtype(f"uint{self.bits}")

    # -- tables -------------------------------------------------------------
    @functools.cached_property
    def table(self) -> np.ndarray:
        """float64 value of every code ``0 .. 2**bits - 1`` (NaN / ±inf for specials)."""
        if self.bits > 16:
            raise ValueError(f"format {self.name!r} has {self.bits} bits: no value table "
                             "(16 bits at most)")
        codes = np.arange(1 << self.bits)
        if self.integer:
            return np.where(codes >= (1 << (self.bits - 1)) if self.signed else False,
                            codes - (1 << self.bits), codes).astype(np.float64)
        mag = codes & ((1 << (self.ebits + self.mbits)) - 1)
        exp = mag >> self.mbits
        man = mag & ((1 << self.mbits) - 1)
        sub = (exp == 0) & self.subnormals
        significand = np.where(sub, man, man + (1 << self.mbits)).astype(np.float64)
        value = np.ldexp(significand, np.where(sub, 1, exp) - self.bias - self.mbits)
        top = (1 << self.ebits) - 1
        if self.specials == "nan-ones":
            value[mag == (1 << (self.ebits + self.mbits)) - 1] = np.nan
        elif self.specials == "nan-top-exponent":
            value[exp == top] = np.nan
        elif self.specials == "ieee":
            value[(exp == top) & (man != 0)] = np.nan
            value[(exp == top) & (man == 0)] = np.inf
        if self.signed:
            value[codes & self.sign_bit != 0] *= -1
        return value

    @functools.cached_property
    def grid(self) -> _rounding.Grid:
        """Sorted finite values with their codes, as the rounding kernel wants them."""
        return _rounding.Grid.from_table(self.table, signed=self.signed and not self.integer,
                                        sign_bit=self.sign_bit, nan_code=self.nan_code,
                                        inf_code=self.inf_code, ulp_max=self.ulp_max)

    def values(self) -> np.ndarray:
        """All finite values, sorted and without a duplicate for -0 (float64)."""
        return self.grid.values.copy()

    # -- derived constants --------------------------------------------------
    @property
    def ulp_max(self) -> float:
        """Spacing just above :attr:`max`: where overflow begins (480 - 448 for E4M3)."""
        finite = self.table[np.isfinite(self.table)]
        top = float(finite.max())
        return 1.0 if self.integer else 2.0 ** (np.floor(np.log2(top)) - self.mbits)

    @property
    def max(self) -> float:
        """Largest finite value."""
        return float(self.grid.values[-1])

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value (1 for integers)."""
        if self.integer:
            return 1.0
        return float(2.0 ** ((0 if not self.subnormals else 1) - self.bias))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value: the smallest subnormal, or min_normal without subnormals."""
        return float(self.grid.values[self.grid.values > 0][0])

    @property
    def max_code(self) -> int:
        """Code of :attr:`max` (from the field layout)."""
        if self.integer:
            return int(self.grid.codes[-1])
        mag = (1 << (self.ebits + self.mbits)) - 1
        if self.specials == "nan-ones":
            return mag - 1
        if self.specials == "none":
            return mag
        return (self.emax_field << self.mbits) | ((1 << self.mbits) - 1)

    @property
    def nan_code(self) -> int | None:
        """The canonical (positive, all-ones mantissa) NaN code, or None."""
        nan = np.flatnonzero(np.isnan(self.table))
        return int(nan[nan < (self.sign_bit or (1 << self.bits))][-1]) if nan.size else None

    @property
    def inf_code(self) -> int | None:
        """Code of +inf, or None (from the field layout)."""
        return ((1 << self.ebits) - 1) << self.mbits if self.specials == "ieee" else None

    @property
    def zero_code(self) -> int | None:
        """Code of +0, or None for formats without zero (E8M0)."""
        zero = np.flatnonzero(self.table == 0)
        return int(zero[0]) if zero.size else None

    # -- codec --------------------------------------------------------------
    def encode(self, x, *, rounding: str = "rne", overflow: str = "saturate",
               seed: int | None = None, divisor=None) -> np.ndarray:
        """Round ``x`` (or ``x / divisor``) into this format and return uint8 codes.

        Rounding is exact: ``x / divisor`` is never formed; ``|x|`` is compared
        with ``divisor * boundary`` in float64, which is exact for float32 / BF16
        inputs and divisors of up to 24 significant bits.

        rounding: ``rne`` (ties to the even code), ``ties-away`` (ties away from
            zero), ``ties-down`` (ties toward zero), ``floor``, ``ceil``,
            ``stochastic`` (seeded by ``seed``).
        overflow: ``saturate`` (clamp to ±max), ``nan`` (to the NaN code, as a
            plain cast does), ``inf`` (to ±inf, formats with infinities only).
            Values below the smallest value of a format without zero (E8M0)
            clamp to that value.

        NaN in ``x`` maps to the NaN code and ±Inf to ±inf where the format has
        them (``overflow="nan"`` sends Inf to NaN, as ml_dtypes does);
        otherwise they raise ``ValueError``, as do negative values for an
        unsigned format.
        """
        return _rounding.round_to_grid(self, x, mode=rounding_mode(rounding),
                                      overflow=overflow, seed=seed, divisor=divisor)

    def decode(self, codes) -> np.ndarray:
        """Values of ``codes`` (an unsigned integer array) as float32."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "ui":
            raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
        if codes.size and (codes.min() < 0 or codes.max() >= (1 << self.bits)):
            raise ValueError(f"codes out of range for {self.bits}-bit format {self.name!r}")
        return self.table.astype(np.float32)[codes]

    def __str__(self) -> str:
        return self.name


def rounding_mode(name: str) -> str:
    if name not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {name!r}; choose one of {list(ROUNDING_MODES)}")
    return name


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("e2m1", 2, 1, bias=1),
    Format("e2m3", 2, 3, bias=1),
    Format("e3m2", 3, 2, bias=3),
    Format("e4m3", 4, 3, bias=7, specials="nan-ones"),
    Format("ue4m3", 4, 3, bias=7, signed=False, specials="nan-ones"),
    Format("ue4m3-480", 4, 3, bias=7, signed=False),
    Format("ue5m3", 5, 3, bias=15, signed=False, specials="nan-top-exponent"),
    Format("ue5m3-ptx", 5, 3, bias=15, signed=False, specials="nan-ones"),
    Format("e5m2", 5, 2, bias=15, specials="ieee"),
    Format("e8m0", 8, 0, bias=127, signed=False, subnormals=False, specials="nan-ones"),
    Format("int4", 0, 3, integer=True),
    Format("int8", 0, 7, integer=True),
]}
#: the block-scale formats the hardware matrix, the synthesis study and the trade-off compare
SCALE_FORMATS = ("e4m3", "ue5m3", "e8m0")


#: the block input formats of the hardware (IEEE binary32 and its top half, BF16)
INPUTS: dict[str, Format] = {f.name: f for f in [
    Format("bf16", 8, 7, bias=127, specials="ieee", numpy="bfloat16"),
    Format("fp32", 8, 23, bias=127, specials="ieee", numpy="float32"),
]}


def get_input(name: str | Format) -> Format:
    """A block input format (:data:`INPUTS`) by name (a :class:`Format` passes through)."""
    return _lookup(INPUTS, name, f"input_format must be one of {list(INPUTS)}, not {name!r}")


def names() -> list[str]:
    """Registered format names."""
    return list(FORMATS)


def get(fmt: str | Format) -> Format:
    """Look up a format by name (a :class:`Format` passes through)."""
    return _lookup(FORMATS, fmt, f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")


def _lookup(table: dict, fmt, error: str) -> Format:
    if isinstance(fmt, Format):
        return fmt
    try:
        return table[str(fmt).lower()]
    except KeyError:
        raise ValueError(error) from None

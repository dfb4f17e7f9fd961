"""Block quantization: ``quantize(x, ...) -> QuantizedTensor`` and its inverse.

A tensor is cut into blocks of ``block_size`` consecutive elements along
``axis``; each block gets one scale (a code of the scale format) chosen by a
rule of :mod:`.scaling`, and its elements become codes of the element format:
``code = Round(x / (g * S))`` with ``g`` the optional float32 per-tensor or
per-row scale.  Rounding is exact (see :mod:`.rounding`) unless
``arith="f32"`` asks for the float32 order of operations some anchors use.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import anchors, kernels, scaling, selectors
from .blockformat import BlockFormat
from .formats import Format
from .rounding import comparator_args, round_to_grid

__all__ = ["quantize", "QuantizedTensor", "pack", "unpack"]


@dataclasses.dataclass(frozen=True)
class QuantizedTensor:
    """Codes, scales and the recipe that made them.

    element_codes: uint8, the shape of x.
    scale_codes: uint8, the shape of x with ``axis`` cut to the number of blocks.
    scale_values: float64 values of scale_codes (without the global scale).
    global_scale: float32 per-tensor scale (0-d) or per-row scales (shape of
        scale_codes with the block axis of length 1), or None.
    choice: for ``4o6`` the M each block took (uint8, 6 or 4), else None.
    dequant: how :meth:`dequantize` forms ``v * S * g`` (see :mod:`.anchors`):
        "exact" (rounded once), "scale-first" (``v * fl32(g S)``), "amax-last"
        (``fl32(fl32(v S) amax) / C``), "f16-product" (``fl16(v S)``, no g).
    tensor_amax, tensor_const: ``amax`` and ``C`` of "amax-last".
    """

    element_codes: np.ndarray
    scale_codes: np.ndarray
    scale_values: np.ndarray
    global_scale: np.ndarray | None
    choice: np.ndarray | None
    element: Format
    scale_format: Format
    block_size: int
    axis: int
    dtype: np.dtype
    dequant: str = "exact"
    tensor_amax: float | None = None
    tensor_const: float | None = None

    def dequantize(self, dtype=None) -> np.ndarray:
        """element value * scale * global in the order ``dequant`` names, as ``dtype``.

        "exact" rounds once to ``dtype`` (default: x's dtype); the float32 orders
        round each step to float32 and then convert.
        """
        dtype = np.dtype(dtype or self.dtype)
        if self.dequant != "exact":
            return self._dequantize_f32().astype(dtype, copy=False)
        codes = np.moveaxis(self.element_codes, self.axis, -1)
        n = codes.shape[-1]
        nb = self.scale_codes.shape[self.axis]
        padded = nb * self.block_size
        if padded != n:
            codes = np.concatenate(
                [codes, np.zeros(codes.shape[:-1] + (padded - n,), np.uint8)], axis=-1)
        out = np.empty(codes.shape, np.float64 if dtype.itemsize > 4 else np.float32)
        rows = np.ascontiguousarray(codes).reshape(-1, self.block_size)
        if self.global_scale is None or not np.ndim(self.global_scale):
            # one g: every (scale code, element code) value, v * (S * g) rounded once, looked up
            g = 1.0 if self.global_scale is None else float(self.global_scale)
            with np.errstate(invalid="ignore", over="ignore"):
                values = (self.element.table * (self.scale_format.table * g)[:, None]).astype(
                    out.dtype)
            sc = np.ascontiguousarray(np.moveaxis(self.scale_codes, self.axis, -1)).reshape(-1)
            kernels.dequantize_by_scale(rows, sc, values, out.reshape(rows.shape))
        else:
            kernels.dequantize(rows, self.element.table, self.divisors().reshape(-1),
                               out.reshape(rows.shape))
        return np.moveaxis(out[..., :n], -1, self.axis).astype(dtype, copy=False)

    def _dequantize_f32(self) -> np.ndarray:
        v = self.element.table[self.element_codes]
        s = np.repeat(self.scale_values, self.block_size, axis=self.axis)
        s = s[tuple(slice(0, n) for n in v.shape)]
        g = None
        if self.global_scale is not None:
            g = np.asarray(self.global_scale, np.float32)
            if g.ndim:
                g = np.repeat(g, v.shape[self.axis], axis=self.axis)
        return anchors.dequantize(v, s, g, self.dequant, self.tensor_amax, self.tensor_const)

    def divisors(self) -> np.ndarray:
        """g * S per block (float64, exact), blocks along the last axis."""
        s = np.moveaxis(self.scale_values, self.axis, -1)
        if self.global_scale is None:
            return np.ascontiguousarray(s, np.float64)
        g = np.asarray(self.global_scale, np.float64)
        if g.ndim:
            g = np.moveaxis(g, self.axis, -1)
        return np.ascontiguousarray(s * g)

    def pack(self) -> np.ndarray:
        """Two 4-bit element codes a byte, low nibble first (see :func:`pack`)."""
        return pack(self.element_codes)


def pack(codes) -> np.ndarray:
    """Pack 4-bit codes two a byte along the last axis, the first in the low nibble."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise TypeError(f"codes must be uint8, got {codes.dtype}")
    if codes.shape[-1] % 2:
        raise ValueError(f"the last axis ({codes.shape[-1]}) must be even to pack two a byte")
    if codes.size and codes.max() > 15:
        raise ValueError("codes must be 4-bit (0..15) to pack")
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def unpack(packed) -> np.ndarray:
    """Inverse of :func:`pack`."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise TypeError(f"packed must be uint8, got {packed.dtype}")
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), np.uint8)
    out[..., 0::2] = packed & 0xF
    out[..., 1::2] = packed >> 4
    return out


def _check_input(x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f" and x.dtype.name != "bfloat16":
        raise TypeError(f"x must be a floating-point array (float16/32/64 or bfloat16), "
                        f"got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension")
    return x


def quantize(x, fmt: BlockFormat | None = None, *, recipe: str | None = None, axis: int = -1,
             pad: bool = False, seed: int | None = None, prune: bool = True,
             **options) -> QuantizedTensor:
    """Block-quantize ``x`` in the block format ``fmt``, or the one a recipe and options name.

    ``fmt`` is a :class:`~.blockformat.BlockFormat`; without it, ``recipe`` names a
    configuration (see :mod:`.recipes`) and keyword options override it (they
    resolve to a BlockFormat first, :func:`.recipes.block_format`):

    block_size=16, element="e2m1", scale_format="e4m3", rule="abs-max"
        (the rule: "abs-max" | "mx" | "4o6" | "brute-force" | a selector name)
    M: element maximum for abs-max (default: element max; mx: its largest power of two)
    prevent_zero=False, pz_floor=None (default: smallest nonzero scale)
    hierarchical=None | "tensor" (g = amax / (bound * M), NVFP4) | "row" (g = amax_row / bound)
    scale_bound: ``bound`` above (default: the scale format's max; 256 for NVFP4 4o6)
    rounding="rne": element rounding (any mode of :meth:`Format.encode`)
    scale_rounding: RoundSF rounding (default "rne"; "floor" for mx)
    arith="exact" | "f32": exact quotients, or every step in float32 as the
        anchors compute it (abs-max, mx and 4o6; see :mod:`.anchors`)
    f32_order="fused" | "chain": the float32 order, ``amax / (g M)`` and
        ``x * (1 / (g S))``, or ``(amax / M) / g`` and ``x * ((1 / g) / S)``
    tensor_scale="divide" | "encode": the per-tensor scale as a stored divisor
        g = amax / C, or (f32 only) as an encode scale E = C / amax multiplying
        ``amax_b / M`` (C = bound * M; elements then use g = 1 / E)
    scale_min=None: lower clamp of the block scale quotient before RoundSF
        (torchao: the smallest E4M3 normal, 2^-6)
    dequant="exact" | "scale-first" | "amax-last" | "f16-product": the order
        :meth:`QuantizedTensor.dequantize` (and the f32 4o6 error) uses
    zero_sign="x" | "positive" | "scaled": the sign of an element that rounds to
        zero: x's, always +0, or -0 only where the float32 scaled value is negative
        (an input -0, an underflow to -0 and a zero-scale block give +0)
    error_domain="dequant" | "scaled", error_sum="torch" | "sequential": the f32 4o6
        error of the dequantized candidate against x, or of ``v S`` against ``x E``
        (TransformerEngine's FP16 product domain), summed in torch's CPU order or
        element by element
    faults="exact" | "reproduce": at the named faults of the recipe's anchor
        (:mod:`.anchors`), return the rule computed exactly, or the anchor's bytes
    candidate4="amax/4" | "1.5x6" | "1.5xq6": 4o6's second candidate, RoundSF(amax / 4),
        RoundSF(1.5 * S6) or RoundSF(1.5 * the unrounded quotient of S6) (which is
        amax/4 unless arith="f32")
    metric="mse" | "mae" | "max-abs": 4o6 / brute-force block error
    error_arith="float" | "fixed": 4o6 error exactly (float64, the papers' rule), or
        in the hardware's fixed point (``error_frac_bits`` fractional bits below the
        block maximum's exponent, default 8), as the RTL specs ask for explicitly

    Call options (with ``fmt`` too): axis=-1, pad=False (pad the last block with
    zeros), seed (for ``rounding="stochastic"``), prune=True (brute force skips
    candidates that provably lose; same result as False).

    4o6's candidates are the element format's two largest values (6 and 4 for E2M1).
    """
    if fmt is None:
        from .recipes import block_format
        fmt = block_format(recipe, **options)
    elif not isinstance(fmt, BlockFormat):
        raise TypeError(f"fmt must be a BlockFormat, got {type(fmt).__name__}")
    elif recipe is not None or options:
        raise TypeError("pass either a BlockFormat or a recipe and options, not both")
    x = _check_input(x)
    axis = int(axis)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} out of range for x of {x.ndim} dimensions")
    axis %= x.ndim
    block, n = fmt.block_size, x.shape[axis]
    if n % block and not pad:
        raise ValueError(f"block_size {block} does not divide axis {axis} of length {n}; "
                         "pass pad=True to pad the last block with zeros")

    # blocks as rows: (..., nblocks, block)
    work = np.moveaxis(x, axis, -1)
    work = work.astype(np.float32 if x.dtype.itemsize <= 4 else np.float64, copy=False)
    nb = -(-n // block)
    if nb * block != n:
        work = np.concatenate(
            [work, np.zeros(work.shape[:-1] + (nb * block - n,), work.dtype)], axis=-1)
    lead = work.shape[:-1]
    xb = np.ascontiguousarray(work).reshape(-1, block)
    amax = kernels.block_amax(xb)  # NaN marks a block holding NaN or Inf
    if np.isnan(amax).any():
        bad = "NaN" if np.isnan(x).any() else "Inf"
        raise ValueError(f"x contains {bad}; block quantization needs finite inputs")

    b = _Blocks(fmt, xb, amax, nb, seed=seed, prune=prune)
    gscale = None
    if fmt.rule.hierarchical is not None:
        gscale = b.hierarchical()
        if gscale.size > 1:
            gscale = np.moveaxis(gscale.reshape(lead + (1,)), -1, axis)
        else:
            gscale = gscale[0]
    rule = _f32 if fmt.rule.f32 else _RULES.get(fmt.rule.name, _selector)
    ecodes, scodes, choice = rule(b)
    ecodes, scodes = b.finish(ecodes, scodes)

    # back to x's layout
    ecodes = np.moveaxis(ecodes.reshape(lead + (nb * block,))[..., :n], -1, axis)
    scodes = np.moveaxis(scodes.reshape(lead + (nb,)), -1, axis)
    if choice is not None:
        choice = np.moveaxis(choice.reshape(lead + (nb,)), -1, axis)
    sfmt = fmt.scale_format
    return QuantizedTensor(
        element_codes=np.ascontiguousarray(ecodes), scale_codes=np.ascontiguousarray(scodes),
        scale_values=sfmt.table[scodes], global_scale=gscale, choice=choice,
        element=fmt.element, scale_format=sfmt, block_size=block, axis=axis, dtype=x.dtype,
        dequant=fmt.rule.dequant, tensor_amax=b.tensor_amax, tensor_const=b.tensor_const)


class _Blocks:
    """Blocks as rows, their amax and per-block global scale ``g``, and the steps every
    rule shares: the scale of one M, the elements of given scales, the final sign fix-ups."""

    def __init__(self, fmt: BlockFormat, xb, amax, nb, *, seed, prune):
        self.fmt, self.rule, self.xb, self.amax, self.nb = fmt, fmt.rule, xb, amax, nb
        self.seed, self.prune = seed, prune
        self.efmt, self.sfmt = fmt.element, fmt.scale_format
        self.g = np.ones(xb.shape[0])
        self.genc = self.tensor_amax = self.tensor_const = None
        self.floor = fmt.pz_floor
        self.pz_code = -1 if self.floor is None else scaling.floor_code(self.sfmt, self.floor)
        r = self.rule.rounding
        self.cmp, self.egrid = comparator_args(self.efmt, r), self.efmt.grid.args(r)
        self.zcode = self.efmt.zero_code or 0
        self.opts = dict(fmt.options(), seed=seed)  # the flat options the anchors read

    def hierarchical(self) -> np.ndarray:
        """Set ``g`` (float64, a value a block) from the per-tensor / per-row float32 scale."""
        rule, xb, nb = self.rule, self.xb, self.nb
        rows_amax = self.amax.reshape(-1, nb).max(axis=1)
        tensor = rule.hierarchical == "tensor"
        div = self.fmt.scale_bound * self.fmt.M if tensor else self.fmt.scale_bound
        if tensor:
            rows_amax = np.array([rows_amax.max(initial=0.0)])
        if rule.arith == "f32":
            gs, es = anchors.tensor_scales(rows_amax, div, rule.tensor_scale,
                                           keep_zero=anchors.faults_of(self.opts).zero_tensor_g)
            self.genc = np.repeat(es, xb.shape[0] // es.size)
        else:
            gs = (rows_amax / div).astype(np.float32)  # double rounding is innocuous (53 >= 2*24+2)
            gs[gs == 0] = 1.0  # an all-zero tensor / row: any scale will do
        if tensor:
            self.tensor_amax, self.tensor_const = np.float32(rows_amax[0]), div
        self.g = (np.full(xb.shape[0], float(gs[0])) if gs.size == 1  # (repeat: 5x slower)
                  else np.repeat(gs.astype(np.float64), xb.shape[0] // gs.size))
        return gs

    def select(self, m):
        """Scale codes RoundSF(amax / (g m)), prevent-zero applied."""
        codes = scaling.round_scale(self.sfmt, self.amax, self.g * m,
                                    rounding=self.rule.scale_rounding, arith=self.rule.arith)
        if self.floor is not None:
            codes = scaling.apply_prevent_zero(self.sfmt, codes, self.floor)
        return codes

    def elements(self, scodes):
        """Element codes of the blocks under scale codes ``scodes``."""
        xb, efmt, rounding = self.xb, self.efmt, self.rule.rounding
        d = self.g * self.sfmt.table[scodes]
        if self.rule.arith == "f32":
            recip = (1.0 / np.where(d == 0, 1.0, d).astype(np.float32)).astype(np.float32)
            q = (xb * np.where(d == 0, 0, recip)[:, None]).astype(np.float32)
            return efmt.encode(q, rounding=rounding, seed=self.seed)
        if rounding == "stochastic":
            codes = round_to_grid(efmt, xb, mode=rounding, seed=self.seed,
                                  divisor=np.where(d == 0, 1.0, d), rows=True)
            zero = d == 0  # S = 0: every element is zero, keeping its sign
            codes[zero] = np.where(np.signbit(xb[zero]), efmt.sign_bit, 0) | self.zcode
            return codes
        codes = np.empty(xb.shape, np.uint8)
        kernels.quantize_rows(xb, d, self.cmp, self.egrid, self.zcode, codes)
        return codes

    def outputs(self):
        """Empty element codes, scale codes and 4o6 choice arrays for a kernel to fill."""
        n = self.xb.shape[0]
        return (np.empty(self.xb.shape, np.uint8), np.empty(n, np.uint8),
                np.empty(n, np.bool_))

    def finish(self, ecodes, scodes):
        """The anchor's faults (``faults="reproduce"``) and the zero-sign policy."""
        if self.rule.faults == "reproduce":
            ecodes, scodes = anchors.reproduce_faults(
                self.opts, self.xb, self.amax, ecodes, scodes, self.efmt, M=self.fmt.M,
                tensor_amax=self.tensor_amax)
        if self.rule.zero_sign != "x" and not self.rule.f32:
            ecodes = anchors.zero_sign_exact(ecodes, self.xb, self.g * self.sfmt.table[scodes],
                                             self.efmt, self.rule.zero_sign)
        return ecodes, scodes


def _choice(b: _Blocks, take4):
    """4-over-6's choice a block: the M it took (the element format's two largest values)."""
    m6, m4 = b.fmt.candidates
    return np.where(take4, np.uint8(m4), np.uint8(m6))


def _abs_max(b: _Blocks):
    """abs-max and mx: S = RoundSF(amax / (g M)) (one fused kernel when exact and deterministic)."""
    rule, M = b.rule, b.fmt.M
    if rule.arith == "f32" or "stochastic" in (rule.rounding, rule.scale_rounding):
        scodes = b.select(M)
        return b.elements(scodes), scodes, None
    ecodes, scodes, _ = b.outputs()
    kernels.abs_max(b.xb, b.amax, M, b.g, b.sfmt.table, b.sfmt.grid.args(rule.scale_rounding),
                    b.sfmt.grid.binades, b.pz_code, b.cmp, b.egrid, b.zcode, ecodes, scodes)
    return ecodes, scodes, None


def _four_over_six(b: _Blocks):
    """4o6: both candidates, the lower block error wins, ties keep 6."""
    rule = b.rule
    m6, m4 = b.fmt.candidates
    ecodes, scodes, take4 = b.outputs()
    kernels.four_over_six(b.xb, b.amax, b.g, m6, m4, rule.candidate4 == "1.5x6", b.sfmt.table,
                          b.sfmt.grid.args(rule.scale_rounding), b.sfmt.grid.binades,
                          b.pz_code, b.efmt.table, b.cmp, b.egrid, b.zcode,
                          kernels.METRICS.index(rule.metric),
                          rule.error_arith == "fixed", int(rule.error_frac_bits), ecodes, take4,
                          scodes)
    return ecodes, scodes, _choice(b, take4)


def _brute_force(b: _Blocks):
    """brute-force: every finite scale code, minimum block error, ties to the smaller scale."""
    rule, sfmt, efmt = b.rule, b.sfmt, b.efmt
    svals, scodes_all = scaling.search_scales(sfmt, rule.prevent_zero, b.floor or 0.0)
    # the search's first candidate (any index is exact; near abs-max prunes the most)
    start = np.minimum(np.searchsorted(svals, b.amax / (b.g * b.fmt.M)), svals.size - 1)
    best = np.empty(b.xb.shape[0], np.int64)
    err = np.empty(b.xb.shape[0])
    ecodes = np.empty(b.xb.shape, np.uint8)
    kernels.brute_force(b.xb, b.amax, b.g, svals, start, b.fmt.candidates[0],
                        scaling.zero_threshold(efmt, rule.rounding), efmt.table, b.cmp, b.egrid,
                        b.zcode, kernels.METRICS.index(rule.metric), bool(b.prune), best, err,
                        ecodes)
    return ecodes, scodes_all[best], None


def _selector(b: _Blocks):
    """k-candidate / predictor selectors (:mod:`.selectors`)."""
    rule = b.rule
    return selectors.apply(rule.name, b.xb, b.amax, b.g, b.efmt, b.sfmt, rounding=rule.rounding,
                           scale_rounding=rule.scale_rounding, arith=rule.arith,
                           pz_code=b.pz_code, floor=b.floor or 0.0)


def _f32(b: _Blocks):
    """abs-max and 4o6 in an anchor's float32 order (:mod:`.anchors`)."""
    rule = b.rule
    g32 = b.g.astype(np.float32)
    e32 = b.genc if b.genc is not None else np.ones_like(g32)
    xs, am = b.xb, b.amax
    if rule.hierarchical == "tensor" and rule.faults == "exact" and anchors.tensor_overflow(
            g32, e32):
        xs, am, g32, e32 = anchors.rescale(b.xb, b.amax, b.tensor_amax, b.tensor_const,
                                           rule.tensor_scale)
    ecodes, scodes, take4 = anchors.quantize_f32(
        xs, am, g32, e32, b.efmt, b.sfmt, rule=rule.name, M=b.fmt.M,
        M4=b.fmt.candidates[1], opts=b.opts, pz_code=b.pz_code,
        tensor_amax=b.tensor_amax, C=b.tensor_const)
    return ecodes, scodes, None if take4 is None else _choice(b, take4)


#: the function of each rule (any other name is a selector)
_RULES = {"abs-max": _abs_max, "mx": _abs_max, "4o6": _four_over_six, "brute-force": _brute_force}

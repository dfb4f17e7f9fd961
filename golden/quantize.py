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

from . import anchors, formats, kernels, scaling, selectors
from .rounding import comparator_args, round_to_grid
from .formats import Format

__all__ = ["quantize", "QuantizedTensor", "pack", "unpack"]

HIERARCHICAL = (None, "tensor", "row")
ARITH = ("exact", "f32")
ERROR_ARITH = ("fixed", "float")


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
    scale: Format
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
        d = self.divisors()
        out = np.empty(codes.shape, np.float64 if dtype.itemsize > 4 else np.float32)
        kernels.dequantize(np.ascontiguousarray(codes).reshape(-1, self.block_size),
                           self.element.table, d.reshape(-1), out.reshape(-1, self.block_size))
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


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(options)}")
    return value


def _anchor_options(opts, method, hier, arith):
    """Validate the float32-order, dequantization, zero-sign and fault options."""
    for name, options in (("f32_order", anchors.F32_ORDERS),
                          ("tensor_scale", anchors.TENSOR_SCALES),
                          ("dequant", anchors.DEQUANTS), ("zero_sign", anchors.ZERO_SIGNS),
                          ("faults", anchors.FAULTS), ("error_domain", anchors.ERROR_DOMAINS),
                          ("error_sum", anchors.ERROR_SUMS)):
        _choice(name, opts[name], options)
    if opts["anchor"] is not None:
        _choice("anchor", opts["anchor"], anchors.ANCHORS)
    exact_only = arith == "exact" or method == "mx"
    if exact_only and (opts["tensor_scale"] != "divide" or opts["f32_order"] != "fused"
                       or opts["scale_min"] is not None):
        raise ValueError("tensor_scale, f32_order and scale_min are float32 options: "
                         "use them with arith='f32' and abs-max or 4o6")
    if opts["tensor_scale"] == "encode" and hier != "tensor":
        raise ValueError("tensor_scale='encode' needs hierarchical='tensor'")
    if opts["dequant"] == "amax-last" and hier == "row":
        raise ValueError("dequant='amax-last' needs hierarchical='tensor' or None")
    if opts["faults"] == "reproduce" and opts["anchor"] is None:
        raise ValueError("faults='reproduce' needs an anchor recipe (fouroversix-*, torchao-*, "
                         "te-*)")


def quantize(x, *, recipe: str | None = None, **options) -> QuantizedTensor:
    """Block-quantize ``x``; ``recipe`` names a configuration (see :mod:`.recipes`).

    Keyword options (a recipe sets defaults, explicit options override them):

    block_size=16, element="e2m1", scale="e4m3", method="abs-max"
        ("abs-max" | "mx" | "4o6" | "brute-force"), axis=-1, pad=False
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
    error_arith="fixed" | "float": 4o6 error in the hardware's fixed point
        (``error_frac_bits`` fractional bits below the block maximum's exponent,
        default 8) or in float64
    seed: for ``rounding="stochastic"``
    prune=True: brute force skips candidates that provably lose (same result as False)

    4o6's candidates are the element format's two largest values (6 and 4 for E2M1).
    """
    from .recipes import resolve

    opts = resolve(recipe, options)
    x = _check_input(x)
    efmt, sfmt = formats.get(opts["element"]), formats.get(opts["scale"])
    method = opts["method"]
    if method not in scaling.METHODS:  # else a selector name (golden/selectors.py)
        selectors.parse(method)
    hier = _choice("hierarchical", opts["hierarchical"], HIERARCHICAL)
    arith = _choice("arith", opts["arith"], ARITH)
    metric = _choice("metric", opts["metric"], kernels.METRICS)
    error_arith = _choice("error_arith", opts["error_arith"], ERROR_ARITH)
    candidate4 = _choice("candidate4", opts["candidate4"], scaling.CANDIDATE4)
    rounding = formats.rounding_mode(opts["rounding"])
    scale_rounding = formats.rounding_mode(
        opts["scale_rounding"] or ("floor" if method == "mx" else "rne"))
    if "stochastic" in (rounding, scale_rounding) and method in ("4o6", "brute-force"):
        raise ValueError(f"stochastic rounding is not defined for method {method!r}")
    if arith == "f32" and method == "brute-force":
        raise ValueError("arith='f32' is implemented for abs-max, mx and 4o6, not 'brute-force'")
    _anchor_options(opts, method, hier, arith)
    block = opts["block_size"]
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"block_size must be a positive integer, got {block!r}")
    block = int(block)
    frac_bits = int(opts["error_frac_bits"])
    if not 0 <= frac_bits <= 20:
        raise ValueError(f"error_frac_bits must be in 0..20, got {frac_bits}")
    axis = int(opts["axis"])
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} out of range for x of {x.ndim} dimensions")
    axis %= x.ndim
    n = x.shape[axis]
    if n % block and not opts["pad"]:
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

    mvals = efmt.grid.values
    m_hi = float(mvals[-1])
    M = opts["M"]
    if M is None:
        M = 2.0 ** np.floor(np.log2(m_hi)) if method == "mx" else m_hi
    if not (np.isfinite(M) and M > 0):
        raise ValueError(f"M must be a positive number, got {M!r}")

    # hierarchical scale g (float32), one value a block
    bound = float(opts["scale_bound"] or sfmt.max)
    gscale = tensor_amax = tensor_const = genc = None
    g = np.ones(xb.shape[0])
    if hier is not None:
        rows_amax = amax.reshape(-1, nb).max(axis=1)
        div = bound * M if hier == "tensor" else bound
        if hier == "tensor":
            rows_amax = np.array([rows_amax.max(initial=0.0)])
        if arith == "f32":
            gs, es = anchors.tensor_scales(rows_amax, div, opts["tensor_scale"],
                                           keep_zero=anchors.faults_of(opts).zero_tensor_g)
            genc = np.repeat(es, xb.shape[0] // es.size)
        else:
            gs = (rows_amax / div).astype(np.float32)  # double rounding is innocuous (53 >= 2*24+2)
            gs[gs == 0] = 1.0  # an all-zero tensor / row: any scale will do
        if hier == "tensor":
            tensor_amax, tensor_const = np.float32(rows_amax[0]), div
        gscale = gs[0] if hier == "tensor" else np.moveaxis(gs.reshape(lead + (1,)), -1, axis)
        g = np.repeat(gs.astype(np.float64), xb.shape[0] // gs.size)

    floor = opts["pz_floor"]
    if opts["prevent_zero"] and floor is None:
        floor = sfmt.min_subnormal

    def select(m):
        codes = scaling.round_scale(sfmt, amax, g * m, rounding=scale_rounding, arith=arith)
        if opts["prevent_zero"]:
            codes = scaling.apply_prevent_zero(sfmt, codes, floor)
        return codes

    cmp = comparator_args(efmt, rounding)
    egrid = efmt.grid.args(rounding)
    zcode = efmt.zero_code or 0

    def divisors(scodes):
        return g * sfmt.table[scodes]

    def elements(scodes):
        d = divisors(scodes)
        if arith == "f32":
            recip = (1.0 / np.where(d == 0, 1.0, d).astype(np.float32)).astype(np.float32)
            q = (xb * np.where(d == 0, 0, recip)[:, None]).astype(np.float32)
            return efmt.encode(q, rounding=rounding, seed=opts["seed"])
        if rounding == "stochastic":
            codes = round_to_grid(efmt, xb, mode=rounding, seed=opts["seed"],
                                  divisor=np.where(d == 0, 1.0, d), rows=True)
            zero = d == 0  # S = 0: every element is zero, keeping its sign
            codes[zero] = np.where(np.signbit(xb[zero]), efmt.sign_bit, 0) | zcode
            return codes
        codes = np.empty(xb.shape, np.uint8)
        kernels.quantize_rows(xb, d, cmp, egrid, zcode, codes)
        return codes

    choice = None
    if arith == "f32" and method in ("abs-max", "4o6"):
        g32 = g.astype(np.float32)
        e32 = genc if genc is not None else np.ones_like(g32)
        xs, am = xb, amax
        if hier == "tensor" and opts["faults"] == "exact" and anchors.tensor_overflow(g32, e32):
            xs, am, g32, e32 = anchors.rescale(xb, amax, tensor_amax, tensor_const,
                                               opts["tensor_scale"])
        ecodes, scodes, take4 = anchors.quantize_f32(
            xs, am, g32, e32, efmt, sfmt, method=method, M=M, M4=float(mvals[-2]),
            opts=dict(opts, scale_rounding=scale_rounding),
            pz_code=scaling.floor_code(sfmt, floor) if opts["prevent_zero"] else -1,
            tensor_amax=tensor_amax, C=tensor_const)
        if take4 is not None:
            choice = np.where(take4, 4, 6).astype(np.uint8)
    elif method in ("abs-max", "mx") and arith == "exact" and "stochastic" not in (
            rounding, scale_rounding):
        ecodes = np.empty(xb.shape, np.uint8)
        scodes = np.empty(xb.shape[0], np.uint8)
        pz_code = scaling.floor_code(sfmt, floor) if opts["prevent_zero"] else -1
        kernels.abs_max(xb, amax, g * M, g, sfmt.table, sfmt.grid.args(scale_rounding), pz_code,
                        cmp, egrid, zcode, ecodes, scodes)
    elif method in ("abs-max", "mx"):
        scodes = select(M)
        ecodes = elements(scodes)
    elif method == "4o6":
        ecodes = np.empty(xb.shape, np.uint8)
        scodes = np.empty(xb.shape[0], np.uint8)
        take4 = np.empty(xb.shape[0], np.bool_)
        pz_code = scaling.floor_code(sfmt, floor) if opts["prevent_zero"] else -1
        kernels.four_over_six(xb, amax, g, m_hi, float(mvals[-2]), candidate4 == "1.5x6",
                              sfmt.table, sfmt.grid.args(scale_rounding), pz_code, efmt.table,
                              cmp, egrid, zcode, kernels.METRICS.index(metric),
                              error_arith == "fixed", frac_bits, ecodes, take4, scodes)
        choice = np.where(take4, 4, 6).astype(np.uint8)
    elif selectors.is_selector(method):  # k-candidate / predictor selectors
        ecodes, scodes, choice = selectors.apply(
            method, xb, amax, g, efmt, sfmt, rounding=rounding, scale_rounding=scale_rounding,
            arith=arith, pz_code=scaling.floor_code(sfmt, floor) if opts["prevent_zero"] else -1,
            floor=floor or 0.0)
    else:  # brute force
        svals, scodes_all = scaling.search_scales(sfmt, opts["prevent_zero"], floor or 0.0)
        # the search's first candidate (any index is exact; near abs-max prunes the most)
        start = np.minimum(np.searchsorted(svals, amax / (g * M)), svals.size - 1)
        best = np.empty(xb.shape[0], np.int64)
        err = np.empty(xb.shape[0])
        ecodes = np.empty(xb.shape, np.uint8)
        kernels.brute_force(xb, amax, g, svals, start, float(m_hi),
                            scaling.zero_threshold(efmt, rounding), efmt.table, cmp, egrid,
                            zcode, kernels.METRICS.index(metric), bool(opts["prune"]), best, err,
                            ecodes)
        scodes = scodes_all[best]

    if opts["faults"] == "reproduce":
        ecodes, scodes = anchors.reproduce_faults(
            opts, xb, amax, ecodes, scodes, efmt, M=M, tensor_amax=tensor_amax)

    if opts["zero_sign"] != "x" and not (arith == "f32" and method in ("abs-max", "4o6")):
        ecodes = anchors.zero_sign_exact(ecodes, xb, g * sfmt.table[scodes], efmt,
                                         opts["zero_sign"])
    # back to x's layout
    ecodes = np.moveaxis(ecodes.reshape(lead + (nb * block,))[..., :n], -1, axis)
    scodes = np.moveaxis(scodes.reshape(lead + (nb,)), -1, axis)
    if choice is not None:
        choice = np.moveaxis(choice.reshape(lead + (nb,)), -1, axis)
    return QuantizedTensor(
        element_codes=np.ascontiguousarray(ecodes), scale_codes=np.ascontiguousarray(scodes),
        scale_values=sfmt.table[scodes], global_scale=gscale, choice=choice, element=efmt,
        scale=sfmt, block_size=block, axis=axis, dtype=x.dtype, dequant=opts["dequant"],
        tensor_amax=tensor_amax, tensor_const=tensor_const)

"""Float32 operation orders and named faults of the anchor libraries.

:func:`quantize` reaches this module for ``arith="f32"`` (abs-max and 4-over-6)
and for ``faults="reproduce"``.  Every quantity below is a float32 operation,
rounded once, in the order the anchor writes it (numpy float32 arithmetic is
IEEE-754 round-to-nearest-even, as torch's CPU kernels are):

Block scale quotient ``q_S`` (then ``S = RoundSF(clamp(q_S, scale_min, bound))``):

* ``f32_order="fused"``   ``amax_b / (g M)``          with ``g M`` one float32 product
* ``f32_order="chain"``   ``(amax_b / M) / g``        (torchao 0.18.0)
* ``tensor_scale="encode"``  ``(amax_b / M) * E``, ``E = C / amax``, ``C = bound M``
  (fouroversix 1.0.5, NVIDIA's formulation); the decode scale is ``g = 1 / E``.

Scaled element ``x * r`` (then RoundE2M1, saturating):

* ``fused``   ``r = 1 / (g S)``                 (fouroversix: ``g = 1 / E``)
* ``chain``   ``r = (1 / g) / S``                (torchao)

A block whose scale is zero has every element zero.

Faults (``faults="reproduce"`` copies them; the default returns the rule):

* ``e2m1-overflow`` (fouroversix 1.0.5): ``2 * round(q / 2)`` without a clamp
  turns scaled values >= 7 (blocks whose E4M3 scale rounded far down) into 8,
  10, 12 ..., whose BF16 bits it then packs as codes 8 (-0), 9 (-0.5), ...
* ``mx-zero-block`` (fouroversix 1.0.5, MXFP4): a block whose float32
  ``amax / M`` is 0 (all zero, or amax <= 3 * 2^-149) gets scale code 0, whose
  float32 value it forms as 0.0, so its elements are x / 0 = NaN, written as
  code 11 (-1.5).
* ``mx-subnormal-ceil`` (fouroversix 1.0.5, MXFP4): a subnormal float32
  ``amax / M`` gets scale code 1 (2^-126) where ceil gives 2^-127.
* ``mx-min-scale`` (torchao 0.18.0, MXFP4 floor/ceil/even): a block with scale
  2^-127 divides its elements by 2^-126 (the float32 scale is clamped to the
  smallest normal); ``rceil`` multiplies them by 1.0 instead of 2^127.
* ``rceil-log2`` (torchao 0.18.0): ``ceil(log2(amax / 6))`` in float32 loses
  the +1 when ``amax / 6`` is just above a power of two and log2 rounds down
  onto the integer.
* ``zero-scale-codes`` (TransformerEngine, commit 0a6e0d6, NVFP4 reference): the
  element multiplier ``min(1 / (g S), FLT_MAX)`` codes a zero-scale block from
  ``x * FLT_MAX`` (clamped to +-6); the rule gives 0.  (Its values dequantize to 0.)
* ``tensor-overflow`` (fouroversix, torchao, TransformerEngine): for amax < C 2^-126
  the float32 per-tensor scale leaves the normal range (g subnormal, E = C / amax
  or 1 / g overflowing, and with them ``1 / (g S)``); the rule is the same float32
  order on ``x 2^k`` (an exact rescaling every step commutes with).
* ``zero-tensor`` (torchao 0.18.0, two-level NVFP4): an all-zero tensor has
  per-tensor scale 0, so every block scale is 0/0 = NaN (code 0xFF) and every
  element code 12; the rule (as for fouroversix) gives scale and elements 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .formats import Format

F32 = np.float32
F32_ORDERS = ("fused", "chain")
TENSOR_SCALES = ("divide", "encode")
DEQUANTS = ("exact", "scale-first", "amax-last", "f16-product")
ZERO_SIGNS = ("x", "positive", "scaled")
FAULTS = ("exact", "reproduce")
ERROR_DOMAINS = ("dequant", "scaled")
ERROR_SUMS = ("torch", "sequential")
FOS, TAO, TE = "fouroversix-1.0.5", "torchao-0.18.0", "transformer-engine-0a6e0d6"


@dataclasses.dataclass(frozen=True)
class Faults:
    """What ``faults="reproduce"`` copies from one anchor (all off: the rule).

    e2m1_overflow: scaled values >= 7 written with fouroversix's codes.
    inf_saturates: an infinite scaled element clamps to +-6 (else it is a NaN).
    nan_code / nan_scale_code: the E2M1 code of a NaN scaled element (x86's default
        NaN 0xFFC00000; a NaN that came from a NaN E4M3 scale, 0xFFFFFFFF).
    flt_max_guard: TE's ``min(., FLT_MAX)`` on the encode scales.
    mx: whose MXFP4 scale faults apply ("fouroversix", "torchao" or None).
    zero_tensor_g: keep g = 0 for an all-zero tensor (torchao divides by it).
    """

    e2m1_overflow: bool = False
    inf_saturates: bool = True
    nan_code: int = 11
    nan_scale_code: int = 11
    flt_max_guard: bool = False
    mx: str | None = None
    zero_tensor_g: bool = False


FAULTS_OF = {
    FOS: Faults(e2m1_overflow=True, inf_saturates=False, mx="fouroversix"),
    TAO: Faults(nan_scale_code=12, mx="torchao", zero_tensor_g=True),
    TE: Faults(nan_code=0, nan_scale_code=0, flt_max_guard=True),
}
#: the anchors whose faults ``faults="reproduce"`` knows, by recipe key ``anchor``
ANCHORS = tuple(FAULTS_OF)
RULE = Faults()


def faults_of(opts) -> Faults:
    """The faults to copy: the anchor's under ``faults="reproduce"``, else none."""
    return FAULTS_OF[opts["anchor"]] if opts["faults"] == "reproduce" else RULE


def tensor_scales(amax_t, C, tensor_scale, *, keep_zero=False):
    """(g, E) float32: decode and encode per-tensor scales, as the anchors form them.

    encode: ``E = fl32(C / amax)`` (1 for an all-zero tensor, as fouroversix does),
    ``g = fl32(1 / E)``; divide: ``g = fl32(amax / C)``, ``E = fl32(1 / g)``, and an
    all-zero tensor gets g = 1 unless ``keep_zero`` (torchao divides by its g = 0).
    Either may overflow for tiny tensors (see :func:`tensor_overflow`).
    """
    a = np.asarray(amax_t, F32)
    with np.errstate(divide="ignore", over="ignore"):
        if tensor_scale == "encode":
            enc = np.where(a == 0, F32(1), F32(C) / np.where(a == 0, F32(1), a)).astype(F32)
            return (F32(1) / enc).astype(F32), enc
        g = (a / F32(C)).astype(F32)
        if not keep_zero:
            g = np.where(a == 0, F32(1), g).astype(F32)
        return g, (F32(1) / g).astype(F32)


def tensor_overflow(g, E) -> bool:
    """Does the float32 per-tensor scale pair leave the normal float32 range (g or
    1 / E subnormal, E or 1 / g infinite: fault ``tensor-overflow``)?"""
    tiny = np.finfo(F32).tiny
    with np.errstate(divide="ignore", over="ignore"):
        return bool(np.any((g < tiny) | ~np.isfinite(E) | (E > 1 / tiny) | ~np.isfinite(1 / g)))


def rescale(xb, amax, tensor_amax, C, tensor_scale):
    """The rule for a tensor whose float32 per-tensor scale overflows: its float32 order
    on ``x 2^k`` (k = -floor(log2 amax), exact), which every step of it commutes with."""
    k = -int(np.floor(np.log2(np.float64(tensor_amax))))
    xs = (xb.astype(np.float64) * 2.0 ** k).astype(F32)
    am = (amax.astype(np.float64) * 2.0 ** k).astype(F32)
    g, E = tensor_scales(np.float64(tensor_amax) * 2.0 ** k, C, tensor_scale)
    return xs, am, np.full(xb.shape[0], g, F32), np.full(xb.shape[0], E, F32)


def scale_quotient(amax_b, M, g, E, *, order, tensor_scale, factor=1.0):
    """Float32 quotient ``q_S`` of the block scale (see the module docstring)."""
    a = amax_b.astype(F32)
    if tensor_scale == "encode":
        q = (a / F32(M)).astype(F32) * E
    elif order == "chain":
        q = (a / F32(M)).astype(F32) / g
    else:
        q = a / (g * F32(M)).astype(F32)
    q = q.astype(F32)
    return (q * F32(factor)).astype(F32) if factor != 1.0 else q


def scaled_elements(xb, svals, g, *, order, flt_max_guard=False):
    """Float32 ``x * r`` per element (rows are blocks); 0 where S = 0.

    ``flt_max_guard``: TransformerEngine's ``r = min(1 / (g S), FLT_MAX)``, which
    codes a zero-scale block from ``x * FLT_MAX`` (fault ``zero-scale-codes``).
    """
    s = svals.astype(F32)
    if flt_max_guard:
        with np.errstate(divide="ignore"):
            r = np.minimum((F32(1) / (g * s).astype(F32)).astype(F32), np.finfo(F32).max)
        return (xb.astype(F32) * r[:, None]).astype(F32)
    nz = s != 0
    s1 = np.where(nz, s, F32(1))
    if order == "chain":
        r = ((F32(1) / g).astype(F32) / s1).astype(F32)
    else:
        r = (F32(1) / (g * s1).astype(F32)).astype(F32)
    q = (xb.astype(F32) * r[:, None]).astype(F32)
    return np.where(nz[:, None], q, np.float32(0) * np.sign(xb, dtype=F32))


def e2m1_overflow_codes(q, efmt: Format):
    """fouroversix's E2M1 rounding of float32 ``q`` with its overflow codes (fault)."""
    a = np.abs(q)
    hi = F32(2) * np.round(a / F32(2))  # numpy and torch round half to even
    codes = efmt.encode(np.clip(q, -6, 6)).astype(np.int64)
    over = a >= 7
    if over.any():  # BF16 bits of hi packed as s | (e - 126) << 1 | m, as fouroversix does
        bits = hi[over].view(np.uint32) >> 16
        e = ((bits >> 7) & 0xFF).astype(np.int64) - 126
        m = (bits >> 6) & 1
        s = np.signbit(q[over]).astype(np.int64)
        codes[over] = ((s << 3) | (e << 1) | m) & 0xFF
    return codes.astype(np.uint8)


def fp32_log2_ceil(d):
    """torchao's ``ceil(log2(d))`` in float32 (the ``rceil-log2`` fault)."""
    with np.errstate(divide="ignore"):
        return np.ceil(np.log2(d.astype(F32)))


def block_error(dq, ref, metric, summation="torch"):
    """float32 block error of one candidate against ``ref``, summed in torch's CPU
    order (``summation="torch"``) or element by element (``"sequential"``)."""
    d = (dq - ref).astype(F32)
    if metric == "max-abs":
        return np.abs(d).max(axis=1)
    e = (d * d).astype(F32) if metric == "mse" else np.abs(d)
    if summation == "sequential":
        out = np.zeros(e.shape[0], F32)
        for k in range(e.shape[1]):
            out = (out + e[:, k]).astype(F32)
        return out
    return torch_sum(e)


def torch_sum(e):
    """Row sums of float32 ``e`` in the order torch 2.13's CPU reduction adds them (AVX2).

    Eight lanes accumulate elements k, k + 8, ...; the lanes are then added in
    order (checked against ``torch.sum`` on 20 000 random rows of 16: no bit differs).
    """
    n = e.shape[1]
    if n % 8:
        raise ValueError(f"torch_sum takes rows of a multiple of 8 elements, got {n}")
    acc = e[:, :8].astype(F32)
    for k in range(8, n, 8):
        acc = (acc + e[:, k:k + 8]).astype(F32)
    out = acc[:, 0]
    for k in range(1, 8):
        out = (out + acc[:, k]).astype(F32)
    return out


@np.errstate(over="ignore", invalid="ignore", under="ignore")
def dequantize(v, s, g, mode, amax=None, C=None):
    """``v * S * g`` in a float32 order (see :class:`QuantizedTensor`); float32.

    Overflow to inf is the order's own result (fouroversix's float16 product).
    """
    v32, s32 = v.astype(F32), s.astype(F32)
    if mode == "f16-product":
        return (v.astype(np.float16) * s.astype(np.float16)).astype(F32)
    if mode == "amax-last":
        p = (v32 * s32).astype(F32)  # exact: a 2-bit times a 4-bit significand
        return p if amax is None else ((p * F32(amax)).astype(F32) / F32(C)).astype(F32)
    if mode == "scale-first":
        gs = s32 if g is None else (g.astype(F32) * s32).astype(F32)
        return (v32 * gs).astype(F32)
    raise ValueError(f"unknown dequant {mode!r}; choose one of {list(DEQUANTS)}")


def zero_sign(codes, q, efmt: Format, policy, zero=None):
    """Apply the signed-zero policy to element codes whose value is zero.

    "x": -0 for every negative x (the exact rule); "positive": always +0;
    "scaled": -0 only where the float32 scaled value ``q`` is negative, so an input
    -0, a scaled value that underflows to -0 and a zero-scale block give +0
    (fouroversix's ``x.sign() * round(|q|)``).  ``zero``: which elements rounded
    to zero (default: the codes of value zero).
    """
    if policy == "x":
        return codes
    if zero is None:
        zero = efmt.table[codes] == 0
    plus = efmt.zero_code or 0
    if policy == "scaled":
        return np.where(zero, np.where(q < 0, plus | efmt.sign_bit, plus), codes).astype(np.uint8)
    return np.where(zero, plus, codes).astype(np.uint8)


def zero_sign_exact(codes, xb, divisors, efmt: Format, policy):
    """:func:`zero_sign` for the exact paths: ``q = fl32(x / d)`` per block (exact
    for the power-of-two MX scales), 0 where d = 0."""
    d = divisors[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d > 0, xb / np.where(d > 0, d, 1), 0).astype(F32)
    return zero_sign(codes, q, efmt, policy)


def round_elements(q, efmt: Format, *, rounding, seed, overflow_fault):
    """(codes, values) of float32 scaled elements; values as the anchor uses them."""
    if overflow_fault:
        codes = e2m1_overflow_codes(q, efmt)
        vals = efmt.table[codes].astype(F32)
        over = np.abs(q) >= 7
        vals[over] = (np.sign(q[over]) * F32(2) * np.round(np.abs(q[over]) / F32(2)))
        return codes, vals
    codes = efmt.encode(q, rounding=rounding, seed=seed)
    return codes, efmt.table[codes].astype(F32)


@np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")
def quantize_f32(xb, amax, g, E, efmt: Format, sfmt: Format, *, rule, M, M4, opts,
                 pz_code, tensor_amax, C):
    """Float32 abs-max / 4-over-6 of blocks ``xb``: (element codes, scale codes, take4).

    ``g``/``E``: float32 decode/encode per-tensor scale of every block.
    """
    order, ts = opts["f32_order"], opts["tensor_scale"]
    fl = faults_of(opts)
    if fl.flt_max_guard:  # TE's min(E, FLT_MAX) and decode scale 1 / E
        E = np.minimum(E, np.finfo(F32).max)
        g = (F32(1) / E).astype(F32)

    def scale_codes(q):
        if opts["scale_min"] is not None:
            q = np.maximum(q, F32(opts["scale_min"]))  # keeps NaN, as torch.clamp does
        finite = np.isfinite(q)
        codes = sfmt.encode(np.where(finite, q, 0), rounding=opts["scale_rounding"] or "rne")
        if not finite.all():  # only with faults="reproduce": torch's casts of inf and NaN
            codes[np.isinf(q)] = sfmt.max_code
            codes[np.isnan(q)] = sfmt.nan_code | sfmt.sign_bit
        if pz_code >= 0:
            codes = np.where(sfmt.table[codes] == 0, pz_code, codes).astype(np.uint8)
        return codes

    def candidate(scodes):
        svals = sfmt.table[scodes]
        q = scaled_elements(xb, svals, g, order=order, flt_max_guard=fl.flt_max_guard)
        bad = ~np.isfinite(q)
        codes, vals = round_elements(np.where(bad, 0, q), efmt, rounding=opts["rounding"],
                                     seed=opts["seed"], overflow_fault=fl.e2m1_overflow)
        if bad.any():  # faults="reproduce" only (tensor-overflow, zero-tensor)
            sat = np.isinf(q) & fl.inf_saturates  # torch.clamp(+-inf, -6, 6)
            codes[sat] = efmt.encode(np.clip(q[sat], -efmt.max, efmt.max))
            nan_scale = np.isnan(svals)[:, None]
            nan_codes = np.broadcast_to(np.where(nan_scale, fl.nan_scale_code, fl.nan_code),
                                        q.shape)
            codes[bad & ~sat] = nan_codes[bad & ~sat]
            vals = np.where(bad, np.nan, vals).astype(F32)
        codes = zero_sign(codes, q, efmt, opts["zero_sign"], zero=vals == 0)
        return codes, vals, svals

    q6 = scale_quotient(amax, M, g, E, order=order, tensor_scale=ts)
    s6 = scale_codes(q6)
    c6, v6, sv6 = candidate(s6)
    if rule != "4o6":
        return c6, s6, None
    cand4 = opts["candidate4"]
    if cand4 == "1.5xq6":
        q4 = (q6 * F32(1.5)).astype(F32)
    elif cand4 == "1.5x6":
        q4 = (sv6.astype(F32) * F32(1.5)).astype(F32)
    else:
        q4 = scale_quotient(amax, M4, g, E, order=order, tensor_scale=ts)
    s4 = scale_codes(q4)
    c4, v4, sv4 = candidate(s4)
    mode = opts["dequant"]
    gb = g[:, None]
    x32 = xb.astype(F32)
    if opts["error_domain"] == "scaled":  # |v S - x E|: TE's FP16 product domain
        xe = (x32 * E[:, None]).astype(F32)

    def err(v, sv):
        s = np.broadcast_to(sv.astype(F32)[:, None], v.shape)
        if opts["error_domain"] == "scaled":  # v S is exact (FP16 holds every product)
            return block_error((v * s).astype(F32), xe, opts["metric"], opts["error_sum"])
        if mode == "exact":
            dq = (v.astype(np.float64) * s * gb).astype(F32)
        else:
            dq = dequantize(v, s, np.broadcast_to(gb, v.shape), mode, tensor_amax, C)
        return block_error(dq, x32, opts["metric"], opts["error_sum"])

    take4 = err(v4, sv4) < err(v6, sv6)
    ecodes = np.where(take4[:, None], c4, c6).astype(np.uint8)
    return ecodes, np.where(take4, s4, s6).astype(np.uint8), take4


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def reproduce_faults(opts, xb, amax, ecodes, scodes, efmt: Format, *, M, tensor_amax):
    """The anchor's bytes at its named faults (``faults="reproduce"``), blocks as rows.

    ``e2m1-overflow`` is applied inside :func:`quantize_f32` (it changes 4o6's
    choice); the faults here only replace codes of the rule's result.
    """
    mx = faults_of(opts).mx if opts["rule"] == "mx" else None
    ecodes, scodes = ecodes.copy(), scodes.copy()

    def requantize(rows, divisor):
        if rows.any():
            ecodes[rows] = efmt.encode(xb[rows], divisor=divisor)

    if mx == "fouroversix":
        q = (amax.astype(F32) / F32(M)).astype(F32)
        sub = (q > 0) & (q < np.finfo(F32).tiny) & (scodes == 0)  # mx-subnormal-ceil
        scodes[sub] = 1
        requantize(sub, 2.0 ** -126)
        ecodes[q == 0] = FAULTS_OF[FOS].nan_code  # mx-zero-block: x / 0.0
    elif mx == "torchao":
        if opts["scale_rounding"] == "ceil" and M == 6:  # rceil
            d = (amax.astype(F32) / F32(M)).astype(F32)
            e = np.clip(fp32_log2_ceil(d), -127, 127) + 127  # rceil-log2
            e = np.where(amax == 0, 0, e).astype(np.uint8)
            moved = e != scodes
            scodes[moved] = e[moved]
            for code in np.unique(e[moved]):
                requantize(moved & (e == code), 2.0 ** (int(code) - 127))
            requantize((scodes == 0) & (amax > 0), 1.0)  # mx-min-scale: x * 1.0
        else:
            requantize(scodes == 0, 2.0 ** -126)  # mx-min-scale: x / 2^-126
    return ecodes, scodes

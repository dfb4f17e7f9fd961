"""Stimulus for the regression: seeded random blocks and exhaustive sweeps, as bit patterns.

Everything is vectorised numpy and returns integer arrays ready to drive ports:
BF16 (``uint16``) or FP32 (``uint32``) bit patterns for block inputs ``x``,
``uint8`` codes for ``scale`` / ``a`` / ``b`` / ``scale_a`` / ``scale_b``.

Random block kinds (:data:`KINDS`): normal blocks at the sigmas of the paper's
regions A, B and C (scales underflow, subnormal scales, normal scales),
heavy tails (Student-t, Laplace), log-uniform magnitudes over the whole input
range, all-zero blocks, single-outlier blocks, exact element midpoint ties
(x = S * {0.25, 0.75, ..., 5} with one element 6 S so abs-max picks S),
blocks that saturate the scale format, and input subnormals.
Sweeps: every scale code as an abs-max outcome, every finite BF16 amax through
the scale unit (:func:`amax_sweep`), every BF16 pattern through the element
quantizer, every FP4 x FP4 product for each scale-pair class.  The
FP32-accumulating dot product also gets :func:`fp32_corners`, block sequences
that reach each corner of its rounding (ties both ways, a carry out of the
significand, cancellation, zeros of both signs, overflow, subnormals, NaN).
Directed vectors of the element quantizer (added for a mutation-campaign survivor,
an exponent-difference adder bit no random vector reached): log-uniform blocks
over the whole input range against the smallest and largest scale codes
(:func:`extreme_ratios`).  The dot product's scale codes are negative one time in ten where the
format has a sign (another survivor).  Directed runs of the accumulating dot product: a clear, then enough largest
blocks to wrap the accumulator (the sticky overflow flag), when its headroom
is small enough for the run to be short (:data:`OVERFLOW_RUN_MAX_HEADROOM`).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from finescale import golden
from finescale.study.sigmas import REGION_B, REGION_SIGMA as _REGIONS

#: sigma of the normal blocks of the paper's regions A, B, C (E4M3 scales, Fig. 1)
REGION_SIGMA = {f"region-{k.lower()}": v for k, v in _REGIONS.items()}
KINDS = (*REGION_SIGMA, "student-t", "laplace", "log-uniform", "zeros", "outlier", "ties",
         "saturate", "subnormal")
_E2M1 = golden.formats.get("e2m1").values()
_E2M1 = _E2M1[_E2M1 >= 0]
#: E2M1 rounding midpoints (the ties of element quantization), from the element grid
MIDPOINTS = (_E2M1[:-1] + _E2M1[1:]) / 2
#: 4-over-6's two M (6 and 4 for E2M1); the first, the element maximum, is abs-max's M
CANDIDATES = golden.BlockFormat().candidates
ELEMENT_MAX = CANDIDATES[0]
#: the overflow run of an accumulating dot product is 2**(headroom + 1) + 1 blocks
OVERFLOW_RUN_MAX_HEADROOM = 8


def input_dtype(input_format: str):
    """(float dtype, bit-pattern dtype) of an input format name."""
    return golden.formats.get_input(input_format).dtypes


def to_bits(values, input_format: str = "bf16") -> np.ndarray:
    """Round float64 values to the input format (RNE) and return their bit patterns."""
    fdt, udt = input_dtype(input_format)
    return np.asarray(values, np.float64).astype(fdt).view(udt)


def scale_values(sfmt, *, positive=True) -> tuple[np.ndarray, np.ndarray]:
    """(codes, values) of the finite, nonnegative (or nonzero) values of a scale format."""
    codes = np.arange(1 << sfmt.bits)
    vals = sfmt.table[codes]
    keep = np.isfinite(vals) & ((vals > 0) if positive else (vals >= 0))
    return codes[keep].astype(np.uint8), vals[keep]


def _signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _representable_scales(sfmt, input_format):
    """Scale values S whose tie blocks (0.25 S .. 6 S) are exact in the input format."""
    _, vals = scale_values(sfmt)
    fdt, _ = input_dtype(input_format)
    probe = np.outer(vals, np.r_[MIDPOINTS, ELEMENT_MAX])
    with np.errstate(over="ignore"):
        exact = (probe.astype(fdt).astype(np.float64) == probe).all(axis=1)
    return vals[exact]


def random_blocks(rng, kind: str, n: int, block_size: int, *, scale_format="e4m3",
                  input_format="bf16") -> np.ndarray:
    """``n`` blocks of one kind as float64 values (exactly representable in the input format)."""
    sfmt = golden.get(scale_format)
    shape = (n, block_size)
    fdt, _ = input_dtype(input_format)
    finfo = ml_dtypes.finfo(fdt)
    if kind in REGION_SIGMA:
        x = rng.standard_normal(shape) * REGION_SIGMA[kind]
    elif kind == "student-t":
        x = rng.standard_t(3, shape) * REGION_B
    elif kind == "laplace":
        x = rng.laplace(0.0, REGION_B, shape)
    elif kind == "log-uniform":
        lo, hi = np.log2(float(finfo.smallest_subnormal)), np.log2(float(finfo.max))
        e = rng.uniform(lo, hi - 1, (n, 1))
        x = _signs(rng, shape) * 2.0 ** (e - rng.exponential(2.0, shape))
    elif kind == "zeros":
        x = np.where(rng.random(shape) < 0.3, -0.0, 0.0)
    elif kind == "outlier":
        x = rng.standard_normal(shape) * REGION_B
        x[np.arange(n), rng.integers(0, block_size, n)] *= 1000.0
    elif kind == "ties":
        s = rng.choice(_representable_scales(sfmt, input_format), (n, 1))
        x = _signs(rng, shape) * s * rng.choice(MIDPOINTS, shape)
        x[np.arange(n), rng.integers(0, block_size, n)] = ELEMENT_MAX * s[:, 0]
    elif kind == "saturate":
        top = min(sfmt.max * ELEMENT_MAX * 8.0, float(finfo.max))
        amax = np.exp(rng.uniform(np.log(top / 16), np.log(top), (n, 1)))
        x = _signs(rng, shape) * amax * rng.random(shape)
        x[np.arange(n), rng.integers(0, block_size, n)] = amax[:, 0]
    elif kind == "subnormal":
        tiny = float(finfo.smallest_normal)
        x = _signs(rng, shape) * rng.random(shape) * tiny
        x[rng.random(shape) < 0.2] = 0.0
    else:
        raise ValueError(f"unknown stimulus kind {kind!r}; choose one of {list(KINDS)}")
    x = np.clip(x, -float(finfo.max), float(finfo.max))
    return x.astype(fdt).astype(np.float64)


def mixed_blocks(rng, n: int, block_size: int, *, kinds=KINDS, **fmt) -> np.ndarray:
    """``n`` blocks drawn evenly from ``kinds`` in random order (float64 values)."""
    if n < 0:
        raise ValueError(f"n must be nonnegative, got {n}")
    counts = np.bincount(rng.integers(0, len(kinds), n), minlength=len(kinds))
    parts = [random_blocks(rng, k, int(c), block_size, **fmt) for k, c in zip(kinds, counts)]
    x = np.concatenate(parts) if parts else np.zeros((0, block_size))
    return x[rng.permutation(len(x))]


def scale_sweep(rng, block_size: int, *, scale_format="e4m3", input_format="bf16",
                M=ELEMENT_MAX) -> np.ndarray:
    """One block per scale value S with amax = M S (and its input-format neighbours).

    Under abs-max every scale code is the outcome of one of these blocks; the
    neighbours one ulp above and below exercise the rounding of amax / M.
    """
    _, vals = scale_values(golden.get(scale_format))
    fdt, _ = input_dtype(input_format)
    with np.errstate(over="ignore"):
        amax = (vals * M).astype(fdt)
    amax = amax[np.isfinite(amax.astype(np.float64))]
    up = np.nextafter(amax, np.array(np.inf, fdt))
    down = np.nextafter(amax, np.array(0, fdt))
    amax = np.concatenate([amax, up, down]).astype(np.float64)
    amax = amax[np.isfinite(amax)]
    x = _signs(rng, (len(amax), block_size)) * amax[:, None] * rng.random((len(amax), block_size))
    x[np.arange(len(amax)), rng.integers(0, block_size, len(amax))] = amax
    return x.astype(fdt).astype(np.float64)


def amax_sweep(rng, block_size: int) -> np.ndarray:
    """Every finite BF16 magnitude once as a block's amax (uint16 blocks): the amax in a
    random lane with a random sign, the other lanes smaller magnitudes of either sign."""
    amax = np.arange(0x7F80, dtype=np.uint16)
    n = len(amax)
    frac = rng.uniform(0, 1, (n, block_size))
    x = (amax[:, None].astype(np.float64) * frac).astype(np.uint16)  # smaller bit patterns
    x[np.arange(n), rng.integers(0, block_size, n)] = amax
    return x | (rng.integers(0, 2, x.shape) << 15).astype(np.uint16)


def element_sweep(block_size: int, input_format="bf16") -> np.ndarray:
    """Every finite BF16 bit pattern once, cut into blocks (uint16; needs bf16 input)."""
    if input_format != "bf16":
        raise ValueError("the exhaustive element sweep needs bf16 inputs")
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    bits = bits[(bits & 0x7F80) != 0x7F80]  # exponent all ones: Inf / NaN
    pad = -len(bits) % block_size
    return np.concatenate([bits, np.zeros(pad, np.uint16)]).reshape(-1, block_size)


def product_sweep(lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (a, b) pair of 4-bit codes, ``lanes`` a row: (a, b) uint8 arrays of shape (rows, lanes)."""
    a, b = np.divmod(np.arange(256), 16)
    pad = -256 % lanes
    a = np.concatenate([a, np.zeros(pad, int)]).reshape(-1, lanes)
    b = np.concatenate([b, np.zeros(pad, int)]).reshape(-1, lanes)
    return a.astype(np.uint8), b.astype(np.uint8)


def scale_classes(sfmt, codes) -> np.ndarray:
    """Class of each scale code: 'zero', 'subnormal', 'normal', 'max' (saturated) or 'nan'."""
    v = np.abs(sfmt.table[np.asarray(codes, np.int64)])
    out = np.full(v.shape, "normal", dtype=object)
    out[v < sfmt.min_normal] = "subnormal"
    out[v == 0] = "zero"
    out[v == sfmt.max] = "max"
    out[~np.isfinite(v)] = "nan"
    return out


def class_codes(sfmt) -> dict[str, np.ndarray]:
    """Nonnegative finite scale codes grouped by :func:`scale_classes`."""
    codes, _ = scale_values(sfmt, positive=False)
    cls = scale_classes(sfmt, codes)
    return {c: codes[cls == c] for c in ("zero", "subnormal", "normal", "max") if (cls == c).any()}


#: FP32-accumulation corners: block sequences of (a, b, scale_a, scale_b) values, lane 0 only,
#: each starting a new sum; sequences whose values a scale format lacks are skipped
FP32_CORNERS = {
    "cancellation to +0": [(1, 1, 1, 1), (1, -1, 1, 1)],
    "tie, to even below": [(1, 1, 2 ** 8, 2 ** 8), (1, 1, 2 ** -4, 2 ** -4)],
    "tie, to even above": [(1, 1, 2 ** 8, 2 ** 8), (1, 1, 2 ** -4, 2 ** -3),
                           (1, 1, 2 ** -4, 2 ** -4)],
    "carry out of the significand": [(1, 1, 2 ** 8, 2 ** 8), (1, -1, 2 ** -4, 2 ** -4),
                                     (0.5, 1, 2 ** -4, 2 ** -4)],
    # 2**30 + (2**6 + 2**-17): just above a tie, only the bit below the window says so
    "sticky breaks a tie, up": [(1, 1, 2 ** 3, 2 ** 3), (1, 1, 2 ** -8, 2 ** -9),
                                (1, 1, 2 ** 15, 2 ** 15)],
    # 2**30 - (2**5 + 2**-18): just below a tie (subtraction)
    "sticky breaks a tie, down": [(1, -1, 2 ** 2, 2 ** 3), (1, -1, 2 ** -9, 2 ** -9),
                                  (1, 1, 2 ** 15, 2 ** 15)],
    "NaN until the clear": [(1, 1, 1, 1), (1, 1, np.nan, 1), (1, 1, 1, 1)],
    "zero blocks: +0, -0 + -0": [(0, 1, 1, 1)],
    "-0 + -0": [(0, 1, -1.0, 1), (0, 1, 1, -1.0)],
    "overflow to inf, inf stays": [(6, 6, 2 ** 127, 2 ** 127), (-6, 6, 1, 1)],
    "overflow to -inf": [(-6, 6, 2 ** 127, 2 ** 127)],
    "max + half an ulp: inf": [(1, -1, 2 ** 104, 1), (1, 1, 2 ** 127, 2), (1, 1, 2 ** 103, 1)],
    "subnormals": [(1, 1, 2 ** -70, 2 ** -70), (1, 1, 2 ** -75, 2 ** -74)],
    "subnormal tie": [(3, 0.5, 2 ** -75, 2 ** -74)],
    "underflow to -0": [(1, -1, 2 ** -127, 2 ** -127)],
}


def _code_of(fmt, value) -> int | None:
    """The code of ``value`` in ``fmt`` (NaN: its first NaN code; sign of zero kept), or None."""
    t, value = fmt.table, float(value)
    if np.isnan(value):
        hit = np.flatnonzero(np.isnan(t))
    else:
        hit = np.flatnonzero((t == value) & (np.signbit(t) == np.signbit(value)))
    return int(hit[0]) if hit.size else None


def fp32_corners(scale_format, block_size: int) -> dict[str, np.ndarray]:
    """:data:`FP32_CORNERS` as unit inputs (``a``, ``b``, ``scale_a``, ``scale_b``,
    ``acc_clear``): the sequences this scale format can express, one after the other."""
    sfmt, efmt = golden.get(scale_format), golden.get("e2m1")
    rows = []
    for seq in FP32_CORNERS.values():
        codes = [(_code_of(efmt, a), _code_of(efmt, b), _code_of(sfmt, sa), _code_of(sfmt, sb))
                 for a, b, sa, sb in seq]
        if all(c is not None for row in codes for c in row):
            rows += [(*row, i == 0) for i, row in enumerate(codes)]
    a, b, sa, sb, clear = (np.array(col, np.uint8) for col in zip(*rows))
    lanes = np.zeros((len(rows), block_size), np.uint8)
    out = {"a": lanes.copy(), "b": lanes.copy(), "scale_a": sa, "scale_b": sb, "acc_clear": clear}
    out["a"][:, 0], out["b"][:, 0] = a, b
    return out


def overflow_run(params) -> dict[str, np.ndarray] | None:
    """Blocks that wrap an accumulating dot product's accumulator: a clear, then
    2**(headroom+1) + 1 blocks of the largest value (the accumulator holds twice
    2**headroom largest blocks); None when the run would be longer than
    2**(OVERFLOW_RUN_MAX_HEADROOM + 1) + 1 blocks or the unit has no Kulisch accumulator."""
    if params.get("accumulate") != "kulisch" or params["headroom"] > OVERFLOW_RUN_MAX_HEADROOM:
        return None
    efmt, sfmt = golden.get("e2m1"), golden.get(params["scale_format"])
    n = (1 << (params["headroom"] + 1)) + 1
    top = int(efmt.encode(np.array([efmt.max]))[0])
    smax = int(sfmt.encode(np.array([sfmt.max]))[0])
    codes = np.full((n, params["block_size"]), top, np.uint8)
    clear = np.zeros(n, np.uint8)
    clear[0] = 1
    scale = np.full(n, smax, np.uint8)
    return {"a": codes, "b": codes.copy(), "scale_a": scale, "scale_b": scale.copy(),
            "acc_clear": clear}


def extreme_ratios(rng, n: int, block_size: int, sfmt, input_format="bf16"):
    """(x bits, scale codes): ``n`` log-uniform blocks spanning the input format against the
    four smallest nonzero and the largest scale codes, so x / S spans its whole range."""
    codes, _ = scale_values(sfmt)
    x = to_bits(random_blocks(rng, "log-uniform", n, block_size, scale_format=sfmt.name,
                              input_format=input_format), input_format)
    return x, rng.choice(np.r_[codes[:4], codes[-1:]], n).astype(np.uint8)


def for_spec(spec, rng, n: int, *, full: bool = False) -> dict[str, np.ndarray]:
    """:func:`generated` inputs, then the unit's directed vectors learnt from SAT
    counterexamples of mutants (:func:`.directed.vectors`), if it has any."""
    from . import directed

    inputs = generated(spec, rng, n, full=full)
    extra = directed.vectors(spec, inputs)
    if extra is None:
        return inputs
    return {p: np.concatenate([v, extra[p]]) for p, v in inputs.items()}


def generated(spec, rng, n: int, *, full: bool = False) -> dict[str, np.ndarray]:
    """Inputs for one unit: ``n`` random vectors plus the sweeps its ports allow.

    Starts from ``spec.random_inputs`` (which fixes the ports, shapes and
    dtypes) and replaces the block input ``x``, an input ``scale`` and the dot
    product's codes and scales by the stimulus above.  ``full`` adds the
    exhaustive element sweep (every BF16 pattern through the element quantizer).
    """
    params = spec.params
    probe = spec.random_inputs(rng, 1)
    sfmt = golden.get(params.get("scale_format", "e4m3"))
    fmt = {"scale_format": sfmt.name, "input_format": params.get("input_format", "bf16")}
    if "x" in probe:
        block = probe["x"].shape[-1]
        x = [mixed_blocks(rng, n, block, **fmt)]
        x += [scale_sweep(rng, block, M=m, **fmt) for m in CANDIDATES]
        x = to_bits(np.concatenate(x), fmt["input_format"])
        if spec.unit == "scale" and fmt["input_format"] == "bf16":
            x = np.concatenate([x, amax_sweep(rng, block)])
        if full and "scale" in probe and fmt["input_format"] == "bf16":
            x = np.concatenate([x, element_sweep(block)])
        inputs = spec.random_inputs(rng, len(x))
        inputs["x"] = x.astype(probe["x"].dtype)
        if "scale" in probe:  # the element quantizer: mostly the abs-max scale, some random
            fdt, _ = input_dtype(fmt["input_format"])
            s = golden.quantize(x.view(fdt), scale_format=sfmt, block_size=block).scale_codes[:, 0]
            codes, _ = scale_values(sfmt, positive=False)
            s = np.where(rng.random(len(x)) < 0.25, rng.choice(codes, len(x)), s)
            inputs["scale"] = s.astype(probe["scale"].dtype)
            ex, es = extreme_ratios(rng, 256, block, sfmt, fmt["input_format"])
            inputs = {p: np.concatenate([v, (ex if p == "x" else es if p == "scale" else
                                             v[:len(ex)]).astype(v.dtype)])
                      for p, v in inputs.items()}
        return inputs
    if {"a", "b", "scale_a", "scale_b"} <= probe.keys():
        lanes = probe["a"].shape[-1]
        classes = list(class_codes(sfmt).values())
        pa, pb = product_sweep(lanes)
        rows = [(pa, pb, ca, cb) for ca in classes for cb in classes]
        inputs = spec.random_inputs(rng, n + len(rows) * len(pa))
        k = n
        for pa, pb, ca, cb in rows:  # every product under every scale-pair class
            sl = slice(k, k + len(pa))
            inputs["a"][sl], inputs["b"][sl] = pa, pb
            inputs["scale_a"][sl] = rng.choice(ca, len(pa))
            inputs["scale_b"][sl] = rng.choice(cb, len(pa))
            k += len(pa)
        if sfmt.signed:  # negative scale codes (a mutation-campaign survivor: never driven)
            for port in ("scale_a", "scale_b"):
                neg = rng.random(len(inputs[port])) < 0.1
                inputs[port][neg] |= np.uint8(1 << (sfmt.bits - 1))
        directed = (fp32_corners(sfmt.name, params["block_size"])  # FP32 accumulation corners
                    if params.get("accumulate") == "fp32" else None, overflow_run(params))
        for extra in filter(None, directed):
            inputs = {p: np.concatenate([v, extra[p].astype(v.dtype)]) for p, v in inputs.items()}
        return inputs
    return spec.random_inputs(rng, n)

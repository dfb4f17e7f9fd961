"""Named recipes: well-known configurations of :func:`quantize` in one word.

Each recipe is a dict of :func:`quantize` options; explicit options override
it.  ``golden.recipes.describe(name)`` prints the exact rule.

The anchor recipes (``fouroversix-*``, ``torchao-*``) reproduce one library
version's default call bit for bit: element codes, scale codes and its float32
dequantization, including its float32 order of operations.  Where the library
departs from its own rule (the faults named in :mod:`.anchors`), they return the
rule; ``faults="reproduce"`` returns the library's bytes.
"""

from __future__ import annotations

import dataclasses

from .blockformat import CALL_OPTIONS, BlockFormat, Rule
from .formats import get as _format

#: every keyword of :func:`quantize` and its default: the format's (one source: the
#: :class:`BlockFormat` / :class:`Rule` field defaults), then the call's
DEFAULTS = dict(
    block_size=16, element="e2m1", scale_format="e4m3", rule="abs-max",
    **{f.name: f.default for f in dataclasses.fields(Rule) if f.name != "name"}, **CALL_OPTIONS)

# fouroversix 1.0.5 (quantize/pytorch/reference.py, PyTorch backend, CPU):
# E = fl32(C / amax), C = bound * M; S = e4m3(fl32(fl32(amax_b / M) * E));
# q = fl32(x * fl32(1 / fl32(fl32(1 / E) * S))) (0 where S = 0); elements E2M1 RNE,
# -0 only for q < 0; dequantize(dtype=float32): fl32(fl32(fl16(v * S) * amax) / C)
_FOS = dict(anchor="fouroversix-1.0.5", arith="f32", block_size=16, scale_format="e4m3",
            hierarchical="tensor", tensor_scale="encode", dequant="amax-last",
            zero_sign="scaled")
# fouroversix 1.0.5 MXFP4: S = 2^ceil(log2(amax_b / M)) from the float32 bits; x / S exactly;
# dequantize: fl16(v * fl16(S)) (float16 intermediate, no per-tensor factor)
_FOS_MX = dict(anchor="fouroversix-1.0.5", block_size=32, scale_format="e8m0", rule="mx",
               scale_rounding="ceil", dequant="f16-product", zero_sign="scaled")
# TransformerEngine NVFP4 4over6 reference, NVFP4QuantizerRef(nvfp4_use_4over6=True) of
# transformer_engine/pytorch/custom_recipes/quantization_ref_nvfp4.py at commit 0a6e0d6a
# (read, not run: TE needs CUDA to install): E = fl32(C / amax), C = bound * 6;
# S6 = e4m3(fl32(amax_b / 6) E), S4 = e4m3(1.5 fl32(amax_b / 6) E); q = x * 1 / fl32(S / E);
# E2M1 RNE (-0 iff q < 0); MAE (its default) summed element by element, in the input
# domain fl32(fl32(v S) amax) / C, or with fast math in the FP16 product domain |v S - x E|;
# ties keep 6.  dequantize() uses the order of its input-domain error (its own
# dequantization is not part of that code).
_TE = dict(anchor="transformer-engine-0a6e0d6", arith="f32", block_size=16, scale_format="e4m3",
           rule="4o6", hierarchical="tensor", tensor_scale="encode", candidate4="1.5xq6",
           metric="mae", error_sum="sequential", zero_sign="scaled")
# torchao 0.18.0 (prototype/mx_formats/nvfp4_tensor.py nvfp4_quantize, NVFP4Tensor.dequantize):
# S = e4m3(clamp(fl32(fl32(amax_b / 6) / g), 2^-6, 448)); q = fl32(x * fl32(fl32(1 / g) / S));
# dequantize: fl32(v * fl32(g * S)); g = fl32(amax / 2688) (per_tensor_amax_to_scale)
_TAO = dict(anchor="torchao-0.18.0", arith="f32", block_size=16, scale_format="e4m3",
            f32_order="chain", scale_min=_format("e4m3").min_normal, dequant="scale-first")
# torchao 0.18.0 MXFP4 (mx_tensor.py to_mx): E8M0 exponent from amax's float32 bits;
# elements x / S (x * 2^-e for rceil) exactly; dequantize v * S
_TAO_MX = dict(anchor="torchao-0.18.0", block_size=32, scale_format="e8m0", rule="mx")

RECIPES: dict[str, dict] = {
    # NVIDIA NVFP4: 16-element blocks, E4M3 scales = RoundSF(amax / (6 g)),
    # FP32 per-tensor g = amax_tensor / (448 * 6)
    "nvfp4": dict(block_size=16, scale_format="e4m3", rule="abs-max", hierarchical="tensor"),
    # NVFP4 with 4-over-6 (Cook et al.): block scale bounded by 256 so that 1.5 x S6 fits
    "nvfp4-4o6": dict(block_size=16, scale_format="e4m3", rule="4o6", hierarchical="tensor",
                      scale_bound=256.0),
    # OCP MXFP4: 32-element blocks, E8M0 scale 2**(floor(log2 amax) - 2)
    "mxfp4": dict(block_size=32, scale_format="e8m0", rule="mx"),
    # the papers' configurations: E4M3 / UE5M3 scales, no per-tensor scale
    "paper-e4m3": dict(scale_format="e4m3", rule="abs-max"),
    "paper-e4m3-pz": dict(scale_format="e4m3", rule="abs-max", prevent_zero=True),
    "paper-e4m3-4o6": dict(scale_format="e4m3", rule="4o6"),
    "paper-e4m3-pz-4o6": dict(scale_format="e4m3", rule="4o6", prevent_zero=True),
    "paper-e4m3-bf": dict(scale_format="e4m3", rule="brute-force"),
    "paper-e4m3-h": dict(scale_format="e4m3", rule="abs-max", hierarchical="tensor"),
    "paper-ue5m3": dict(scale_format="ue5m3", rule="abs-max"),
    "paper-ue5m3-4o6": dict(scale_format="ue5m3", rule="4o6"),
    # --- anchors: one library version's default call each (see _FOS / _TAO above)
    # fouroversix 1.0.5, QuantizationConfig(dtype="nvfp4", scale_rule="static_6"): C = 448 * 6
    "fouroversix-nvfp4": dict(_FOS, rule="abs-max"),
    # fouroversix 1.0.5, scale_rule="static_4": M = 4, C = 448 * 4
    "fouroversix-nvfp4-static4": dict(_FOS, rule="abs-max", M=4.0),
    # fouroversix 1.0.5, scale_rule="mse" | "mae" | "abs_max" (4 over 6): bound 256, C = 256 * 6,
    # candidate 4 from 1.5 x the unrounded scale, float32 errors of fl32(fl32(v S) amax) / C
    # summed in torch's CPU order, ties keep 6
    "fouroversix-nvfp4-4o6-mse": dict(_FOS, rule="4o6", scale_bound=256.0,
                                      candidate4="1.5xq6", metric="mse"),
    "fouroversix-nvfp4-4o6-mae": dict(_FOS, rule="4o6", scale_bound=256.0,
                                      candidate4="1.5xq6", metric="mae"),
    "fouroversix-nvfp4-4o6-abs-max": dict(_FOS, rule="4o6", scale_bound=256.0,
                                          candidate4="1.5xq6", metric="max-abs"),
    # fouroversix 1.0.5, QuantizationConfig(dtype="mxfp4", scale_rule="static_6" | "static_4")
    "fouroversix-mxfp4": dict(_FOS_MX, M=6.0),
    "fouroversix-mxfp4-static4": dict(_FOS_MX, M=4.0),
    # torchao 0.18.0 NVFP4Tensor.to_nvfp4(x, per_tensor_scale=per_tensor_amax_to_scale(amax))
    "torchao-nvfp4": dict(_TAO, hierarchical="tensor"),
    # torchao 0.18.0 NVFP4Tensor.to_nvfp4(x): single-level, S >= 2^-6
    "torchao-nvfp4-nopts": dict(_TAO),
    # torchao 0.18.0 MXTensor.to_mx(x, float4_e2m1fn_x2, 32, scaling_mode=...):
    # FLOOR 2^(floor(log2 amax) - 2); CEIL 2^(ceil(log2 amax) - 2); EVEN amax rounded to one
    # mantissa bit (ties away) first, i.e. 2^floor(log2(amax / 3.5)); RCEIL 2^ceil(log2(amax / 6))
    "torchao-mxfp4-floor": dict(_TAO_MX),
    "torchao-mxfp4-ceil": dict(_TAO_MX, scale_rounding="ceil"),
    "torchao-mxfp4-even": dict(_TAO_MX, M=3.5),
    "torchao-mxfp4-rceil": dict(_TAO_MX, M=6.0, scale_rounding="ceil"),
    # TransformerEngine (commit 0a6e0d6) NVFP4 4over6 reference: nvfp4_e4m3_max 448 / 256,
    # errors in the input domain (default) or the FP16 product domain (err_use_fast_math)
    "te-nvfp4-4o6": dict(_TE, scale_bound=448.0, dequant="amax-last"),
    "te-nvfp4-4o6-256": dict(_TE, scale_bound=256.0, dequant="amax-last"),
    "te-nvfp4-4o6-fp16": dict(_TE, scale_bound=448.0, error_domain="scaled",
                              dequant="amax-last"),
    "te-nvfp4-4o6-fp16-256": dict(_TE, scale_bound=256.0, error_domain="scaled",
                                  dequant="amax-last"),
    # 4-over-6 whose second candidate is at least one code above the first (golden/selectors.py)
    "paper-e4m3-up": dict(scale_format="e4m3", rule="kc-m6_4-up"),
}


def names() -> list[str]:
    return list(RECIPES)


def resolve(recipe: str | None, options: dict) -> dict:
    """Defaults, then the recipe, then the explicit options."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown quantize option(s): {', '.join(sorted(unknown))}")
    opts = dict(DEFAULTS)
    if recipe is not None:
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
        opts.update(RECIPES[recipe])
    opts.update(options)
    return opts


def block_format(recipe: str | None = None, **options) -> BlockFormat:
    """The :class:`BlockFormat` of ``recipe`` with ``options`` applied (call options refused)."""
    opts = resolve(recipe, options)
    call = [k for k in CALL_OPTIONS if k in options]
    if call:
        raise TypeError(f"{', '.join(call)}: options of a quantize call, not of a block format")
    return BlockFormat.from_options(**{k: v for k, v in opts.items() if k not in CALL_OPTIONS})


def describe(recipe: str) -> str:
    """One line: the options the recipe sets."""
    opts = resolve(recipe, {})
    return ", ".join(f"{k}={opts[k]!r}" for k in DEFAULTS if opts[k] != DEFAULTS[k] or
                     k in ("block_size", "scale_format", "rule"))

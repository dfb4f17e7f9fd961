"""``finescale quantize``: quantize tensors from a file and summarise the error."""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

from finescale.golden import formats, recipes, scaling
from finescale.golden.quantize import quantize

from . import tensorio

OPTION_FLAGS = {  # CLI flag -> quantize option
    "block_size": "block_size", "scale_format": "scale_format", "element_format": "element",
    "rule": "rule", "hierarchical": "hierarchical", "axis": "axis",
    "rounding": "rounding", "error_arith": "error_arith", "metric": "metric",
}


def add_quantize_options(p: argparse.ArgumentParser) -> None:
    """Flags that override a recipe's options (shared by commands that quantize)."""
    p.add_argument("--recipe", default="nvfp4", choices=recipes.names(),
                   help="named configuration; the flags below override it")
    p.add_argument("--block-size", type=int, help="elements per block")
    p.add_argument("--scale-format", choices=formats.names(), help="block scale format")
    p.add_argument("--element-format", choices=formats.names(), help="element format")
    p.add_argument("--rule", choices=scaling.RULES, help="scale-selection rule")
    p.add_argument("--prevent-zero", action="store_true", default=None,
                   help="raise zero scales to the smallest nonzero scale")
    p.add_argument("--hierarchical", choices=["tensor", "row"], help="second-level FP32 scale")
    p.add_argument("--axis", type=int, help="axis along which blocks run (default -1)")
    p.add_argument("--rounding", choices=formats.ROUNDING_MODES, help="element rounding")
    p.add_argument("--error-arith", choices=["fixed", "float"], help="4o6 error arithmetic")
    p.add_argument("--metric", choices=["mse", "mae", "max-abs"], help="4o6 block error")


def quantize_options(args) -> dict:
    opts = {opt: getattr(args, flag) for flag, opt in OPTION_FLAGS.items()
            if getattr(args, flag) is not None}
    if args.prevent_zero:
        opts["prevent_zero"] = True
    return opts


def summarise(x, q) -> dict:
    """Error and scale statistics of one quantized tensor."""
    x64 = x.astype(np.float64)
    err = q.dequantize(np.float64) - x64
    mse = float(np.mean(err ** 2))
    power = float(np.mean(x64 ** 2))
    return {
        "elements": int(x.size), "mse": mse, "rel_mse": mse / power if power else 0.0,
        "zero_scales": float(np.mean(q.scale_values == 0)),
        "chose_4": float(np.mean(q.choice == 4)) if q.choice is not None else float("nan"),
    }


def register(sub) -> None:
    p = sub.add_parser("quantize", help="quantize tensors from .npy/.npz/.safetensors",
                       description="Quantize every floating-point tensor of a file with a "
                                   "golden-model recipe; write codes and scales (npz) and "
                                   "print the error summary.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", type=pathlib.Path, help="IN.npy, IN.npz or IN.safetensors")
    p.add_argument("-o", "--out", type=pathlib.Path,
                   help="output .npz (default: INPUT stem + '.<recipe>.npz' beside it)")
    add_quantize_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    tensors = tensorio.load(args.input)
    opts = quantize_options(args)
    out = args.out or args.input.with_name(f"{args.input.stem}.{args.recipe}.npz")
    arrays, rows = {}, []
    for name, x in tensors.items():
        if x.dtype.kind != "f" and x.dtype.name != "bfloat16" or x.ndim == 0:
            continue
        if x.size == 0:
            print(f"tensor {name!r} is empty ({x.shape}): nothing to quantize, skipped",
                  file=sys.stderr)
            continue
        q = quantize(x, recipe=args.recipe, pad=True, **opts)
        arrays[f"{name}.element_codes"] = q.element_codes
        arrays[f"{name}.scale_codes"] = q.scale_codes
        if q.global_scale is not None:
            arrays[f"{name}.global_scale"] = np.asarray(q.global_scale)
        if q.choice is not None:
            arrays[f"{name}.choice"] = q.choice
        rows.append((name, summarise(x, q)))
    if not rows:
        raise ValueError(f"{args.input}: no non-empty floating-point tensors to quantize")
    np.savez_compressed(out, **arrays)
    print(f"recipe {args.recipe}: {recipes.describe(args.recipe)}"
          + (f"; overrides {opts}" if opts else ""))
    print("| tensor | elements | MSE | relative MSE | zero scales | chose 4 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in rows:
        chose4 = "-" if np.isnan(s["chose_4"]) else f"{s['chose_4']:.2%}"
        print(f"| {name} | {s['elements']} | {s['mse']:.4g} | {s['rel_mse']:.4g} | "
              f"{s['zero_scales']:.2%} | {chose4} |")
    print(f"wrote {out}")
    return 0

"""Named recipes: well-known configurations of :func:`quantize` in one word.

Each recipe is a dict of :func:`quantize` options; explicit options override
it.  ``golden.recipes.describe(name)`` prints the exact rule.
"""

from __future__ import annotations

DEFAULTS = dict(
    block_size=16, element="e2m1", scale="e4m3", method="abs-max", axis=-1, pad=False, M=None,
    prevent_zero=False, pz_floor=None, hierarchical=None, scale_bound=None, rounding="rne",
    scale_rounding=None, arith="exact", candidate4="amax/4", metric="mse",
    error_arith="fixed", error_frac_bits=8, seed=None, prune=True,
)

RECIPES: dict[str, dict] = {
    # NVIDIA NVFP4: 16-element blocks, E4M3 scales = RoundSF(amax / (6 g)),
    # FP32 per-tensor g = amax_tensor / (448 * 6)
    "nvfp4": dict(block_size=16, scale="e4m3", method="abs-max", hierarchical="tensor"),
    # NVFP4 with 4-over-6 (Cook et al.): block scale bounded by 256 so that 1.5 x S6 fits
    "nvfp4-4o6": dict(block_size=16, scale="e4m3", method="4o6", hierarchical="tensor",
                      scale_bound=256.0),
    # OCP MXFP4: 32-element blocks, E8M0 scale 2**(floor(log2 amax) - 2)
    "mxfp4": dict(block_size=32, scale="e8m0", method="mx"),
    # the papers' configurations: E4M3 / UE5M3 scales, no per-tensor scale
    "paper-e4m3": dict(scale="e4m3", method="abs-max"),
    "paper-e4m3-pz": dict(scale="e4m3", method="abs-max", prevent_zero=True),
    "paper-e4m3-4o6": dict(scale="e4m3", method="4o6"),
    "paper-e4m3-pz-4o6": dict(scale="e4m3", method="4o6", prevent_zero=True),
    "paper-e4m3-bf": dict(scale="e4m3", method="brute-force"),
    "paper-e4m3-h": dict(scale="e4m3", method="abs-max", hierarchical="tensor"),
    "paper-ue5m3": dict(scale="ue5m3", method="abs-max"),
    "paper-ue5m3-4o6": dict(scale="ue5m3", method="4o6"),
    # 4-over-6 whose second candidate is at least one code above the first (golden/selectors.py)
    "paper-e4m3-up": dict(scale="e4m3", method="kc-m6_4-up"),
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


def describe(recipe: str) -> str:
    """One line: the options the recipe sets."""
    opts = resolve(recipe, {})
    return ", ".join(f"{k}={opts[k]!r}" for k in DEFAULTS if opts[k] != DEFAULTS[k] or
                     k in ("block_size", "scale", "method"))

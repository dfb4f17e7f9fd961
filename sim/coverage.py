"""Functional coverage: which scale codes, element codes, 4-over-6 choices, regions and FP32
result classes were hit.

:func:`measure` reads a unit's inputs and (checked) outputs and returns the
bins hit; :func:`goals` lists the bins a regression of that unit must hit; the
regression fails when one is missed.  Region classes are the paper's: the
abs-max E4M3-style scale of the input block is zero (A), subnormal (B), normal
(C), or the block saturates the scale format (max).
"""

from __future__ import annotations

import functools

import numpy as np

from finescale import golden

from .stimulus import input_dtype, scale_classes, to_bits

REGION_NAMES = {"zero": "A", "subnormal": "B", "normal": "C", "max": "saturated"}


def _scale_format(spec):
    return golden.get(spec.params.get("scale_format", "e4m3"))


def _regions(spec, x) -> set[str]:
    sfmt = _scale_format(spec)
    fdt, _ = input_dtype(spec.params.get("input_format", "bf16"))
    s = golden.quantize(x.view(fdt), scale=sfmt, block_size=x.shape[-1]).scale_codes[:, 0]
    return {REGION_NAMES[c] for c in set(scale_classes(sfmt, s))}


def measure(spec, inputs: dict, outputs: dict) -> dict[str, list]:
    """Bins hit: scale codes and classes, element codes, 4o6 choices, input regions."""
    cov = {}
    if "scale" in outputs:
        codes = np.unique(outputs["scale"])
        cov["scale_codes"] = codes.tolist()
        cov["scale_classes"] = sorted(set(scale_classes(_scale_format(spec), codes)))
    if "codes" in outputs:
        cov["element_codes"] = np.unique(outputs["codes"]).tolist()
    if "choice" in outputs:
        cov["choice"] = np.unique(outputs["choice"]).tolist()
    if "result" in outputs:  # FP32 result of the dot product
        bits = np.asarray(outputs["result"], np.uint64).astype(np.uint32)
        cov["result_classes"] = sorted(set(fp32_classes(bits)))
    if "x" in inputs:
        cov["regions"] = sorted(_regions(spec, np.asarray(inputs["x"])))
    if "nan" in outputs and "acc_clear" in inputs:  # FP32 accumulation: a clear mid-sum
        clear = np.asarray(inputs["acc_clear"]).astype(bool)
        cov["clears"] = ["mid-stream"] if (clear[1:] & ~clear[:-1]).any() else []
    return cov


def fp32_classes(bits) -> np.ndarray:
    """'zero', 'subnormal', 'normal', 'inf' or 'nan' for FP32 bit patterns."""
    exp, man = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    return np.select([(exp == 0) & (man == 0), exp == 0, exp < 255, man == 0],
                     ["zero", "subnormal", "normal", "inf"], "nan")


@functools.lru_cache(maxsize=None)
def _reachable_scale_classes(scale_format, input_format, method, prevent_zero) -> frozenset:
    """Scale classes some input block can produce (amax from 0 to the input format's max)."""
    import ml_dtypes
    fdt, _ = input_dtype(input_format)
    top = float(ml_dtypes.finfo(fdt).max)
    amax = np.r_[0.0, 2.0 ** np.arange(-160, 129, 0.25)]
    x = to_bits(np.minimum(amax, top)[:, None], input_format).view(fdt)
    m = "mx" if method == "mx" else "abs-max"
    s = golden.quantize(x, scale=scale_format, method=m, block_size=1,
                        prevent_zero=prevent_zero).scale_codes[:, 0]
    return frozenset(scale_classes(golden.get(scale_format), s))


def goals(spec, outputs: set[str]) -> dict[str, list]:
    """Bins a regression of ``spec`` must hit, by coverage item."""
    g = {}
    params = spec.params
    if "scale" in outputs:
        g["scale_classes"] = sorted(_reachable_scale_classes(
            _scale_format(spec).name, params.get("input_format", "bf16"),
            params.get("method", "abs-max"), bool(params.get("prevent_zero"))))
    if "codes" in outputs:
        g["element_codes"] = list(range(16))
    if "choice" in outputs:
        g["choice"] = [0, 1]
    if "result" in outputs:
        g["result_classes"] = ["normal", "zero"]
    if "nan" in outputs:  # FP32 accumulation: every class the scale format can reach
        g["result_classes"] = sorted(_fp32_reachable(_scale_format(spec).name,
                                                     params["block_size"]))
        g["clears"] = ["mid-stream"]
    return g


@functools.lru_cache(maxsize=None)
def _fp32_reachable(scale_format, block_size) -> frozenset:
    """FP32 result classes a running sum can reach: inf when the largest block value reaches
    2**128 - 2**103, subnormal when the smallest nonzero one is below 2**-126."""
    sfmt, efmt = golden.get(scale_format), golden.get("e2m1")
    t = sfmt.table[np.isfinite(sfmt.table)]
    smallest, largest = np.abs(t[t != 0]).min(), np.abs(t).max()
    e = np.abs(efmt.table)
    out = {"normal", "zero", "nan"}
    if float(e.max()) ** 2 * block_size * float(largest) ** 2 >= 2.0 ** 128 - 2.0 ** 103:
        out.add("inf")
    if float(e[e > 0].min()) ** 2 * float(smallest) ** 2 < 2.0 ** -126:
        out.add("subnormal")
    return frozenset(out)


def missed(cov: dict, goal: dict) -> dict[str, list]:
    """Goal bins not in ``cov``, by item (empty when every goal is met)."""
    out = {}
    for item, bins in goal.items():
        miss = sorted(set(bins) - set(cov.get(item, [])))
        if miss:
            out[item] = miss
    return out


def summary(cov: dict, goal: dict) -> str:
    """One line, e.g. ``element_codes 16/16, scale_classes 4/4, choice 2/2``."""
    parts = []
    for item, bins in goal.items():
        hit = len(set(bins) & set(cov.get(item, [])))
        parts.append(f"{item} {hit}/{len(bins)}")
    if "scale_codes" in cov:
        parts.append(f"scale codes hit {len(cov['scale_codes'])}")
    if "regions" in cov:
        parts.append("regions " + "".join(r[0] for r in cov["regions"]))
    return ", ".join(parts)

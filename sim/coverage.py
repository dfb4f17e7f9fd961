"""Functional coverage: which scale codes, element codes, 4-over-6 choices, regions and FP32
result classes were hit.

:func:`measure` reads a unit's inputs and (checked) outputs and returns the
bins hit; :func:`goals` lists the bins a regression of that unit must hit; the
regression fails when one is missed.  Region classes are the paper's: the
abs-max E4M3-style scale of the input block is zero (A), subnormal (B), normal
(C), or the block saturates the scale format (max).

Goals are derived per unit variant from its parameters: the dot product's FP32
result classes that its formats can reach (zero, normal, subnormal, +inf, -inf,
NaN), the accumulator's sticky overflow flag (when the stimulus can wrap it,
:func:`.stimulus.overflow_run`) and a clear arriving while the sum is nonzero;
the 4-over-6 unit's both choices in every scale class where the candidates
differ, and a tie (equal block errors of different candidates, kept at 6).
"""

from __future__ import annotations

import functools

import numpy as np

from finescale import golden
from finescale.golden import selectors

from .stimulus import input_dtype, overflow_run, scale_classes, scale_values, to_bits

REGION_NAMES = {"zero": "A", "subnormal": "B", "normal": "C", "max": "saturated"}


def _scale_format(spec):
    return golden.get(spec.params.get("scale_format", "e4m3"))


def _regions(spec, x) -> set[str]:
    sfmt = _scale_format(spec)
    fdt, _ = input_dtype(spec.params.get("input_format", "bf16"))
    s = golden.quantize(x.view(fdt), scale_format=sfmt, block_size=x.shape[-1]).scale_codes[:, 0]
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
        choice = np.asarray(outputs["choice"]).astype(int)
        cov["choice"] = np.unique(choice).tolist()
        if spec.unit == "4o6" and "scale" in outputs:  # a selector's choice is an index
            cls = scale_classes(_scale_format(spec), np.asarray(outputs["scale"]))
            cov["choice_by_class"] = sorted({f"{4 if c else 6}@{k}"
                                             for c, k in zip(choice, cls)})
        if "x" in inputs and spec.unit == "4o6":
            cov["ties"] = ["tie"] if fouroversix_ties(spec, np.asarray(inputs["x"])).any() else []
    if "result" in outputs:  # FP32 result of the dot product
        bits = np.asarray(outputs["result"], np.uint64).astype(np.uint32)
        cov["result_classes"] = sorted(set(fp32_classes(bits)))
    if "acc_overflow" in outputs:
        cov["acc_overflow"] = np.unique(np.asarray(outputs["acc_overflow"]).astype(int)).tolist()
    if "acc_clear" in inputs:  # a clear while the running sum (raw, or its FP32 total) is nonzero
        if "acc_out" in outputs:
            total = np.asarray(outputs["acc_out"], dtype=object) != 0
        else:
            total = (np.asarray(outputs["result"], np.uint64) & 0x7FFFFFFF) != 0
        clear = np.asarray(inputs["acc_clear"]).astype(bool)
        cov["clear"] = ["after_nonzero"] if (clear[1:] & total[:-1]).any() else []
    if "x" in inputs:
        cov["regions"] = sorted(_regions(spec, np.asarray(inputs["x"])))
    return cov


def fp32_classes(bits) -> np.ndarray:
    """'zero', 'subnormal', 'normal', '+inf', '-inf' or 'nan' for FP32 bit patterns."""
    f = golden.formats.get_input("fp32")
    bits = np.asarray(bits, np.uint32)
    top = (1 << f.ebits) - 1
    exp, man = (bits >> f.mbits) & top, bits & ((1 << f.mbits) - 1)
    inf = np.where(bits >> (f.ebits + f.mbits), "-inf", "+inf")
    return np.select([(exp == 0) & (man == 0), exp == 0, exp < top, man == 0],
                     ["zero", "subnormal", "normal", inf], "nan")


def fouroversix_ties(spec, x_bits) -> np.ndarray:
    """Per block: the two 4-over-6 candidates differ (scale code) but their block errors,
    in the unit's fixed point, are equal (the tie the unit resolves to 6)."""
    p = spec.params
    fdt, _ = input_dtype(p["input_format"])
    x = np.asarray(x_bits).view(fdt).astype(np.float64)
    opts = dict(scale_format=p["scale_format"], block_size=x.shape[-1], prevent_zero=p["prevent_zero"])
    m6, m4 = golden.BlockFormat(scale_format=p["scale_format"]).candidates
    q6 = golden.quantize(x.astype(fdt), M=m6, **opts)
    q4 = golden.quantize(x.astype(fdt), M=m4, **opts)
    amax = np.abs(x).max(axis=1)
    _, eb = np.frexp(np.where(amax > 0, amax, 1.0))
    unit = np.ldexp(1.0, p["error_frac_bits"] - eb + 1)[:, None]  # 2**(F - Eb)
    xs = np.floor(np.abs(x) * unit)
    errs = []
    for q in (q6, q4):
        y = np.floor(np.abs(q.dequantize().astype(np.float64)) * unit)
        d = xs - y
        errs.append((d * d).sum(1) if p["metric"] == "mse" else np.abs(d).sum(1))
    return (amax > 0) & (q6.scale_codes[:, 0] != q4.scale_codes[:, 0]) & (errs[0] == errs[1])


def _result_classes(params) -> list[str]:
    """FP32 classes a dot product with these formats can produce: +inf and -inf when the
    largest block (times 2**headroom blocks in a Kulisch accumulator) reaches the RNE overflow
    threshold 2**128 - 2**103, subnormal when the smallest nonzero product is below 2**-126."""
    efmt, sfmt = golden.get("e2m1"), golden.get(params["scale_format"])
    _, vals = scale_values(sfmt)
    top = float(efmt.max) ** 2 * params["block_size"] * float(vals.max()) ** 2
    if params.get("accumulate") == "kulisch":
        top *= 2.0 ** params["headroom"]
    low = float(efmt.min_subnormal) ** 2 * float(vals.min()) ** 2
    out = ["normal", "zero"]
    if top >= 2.0 ** 128 - 2.0 ** 103:
        out += ["+inf", "-inf"]
    if low < 2.0 ** -126:
        out.append("subnormal")
    if np.isnan(sfmt.table).any():
        out.append("nan")
    return sorted(out)


@functools.lru_cache(maxsize=None)
def _reachable_scale_classes(scale_format, input_format, rule, prevent_zero) -> frozenset:
    """Scale classes some input block can produce (amax from 0 to the input format's max)."""
    import ml_dtypes
    fdt, _ = input_dtype(input_format)
    top = float(ml_dtypes.finfo(fdt).max)
    amax = np.r_[0.0, 2.0 ** np.arange(-160, 129, 0.25)]
    x = to_bits(np.minimum(amax, top)[:, None], input_format).view(fdt)
    m = "mx" if rule == "mx" else "abs-max"
    s = golden.quantize(x, scale_format=scale_format, rule=m, block_size=1,
                        prevent_zero=prevent_zero).scale_codes[:, 0]
    return frozenset(scale_classes(golden.get(scale_format), s))


def goals(spec, outputs: set[str]) -> dict[str, list]:
    """Bins a regression of ``spec`` must hit, by coverage item."""
    g = {}
    params = spec.params
    if "scale" in outputs:
        g["scale_classes"] = sorted(_reachable_scale_classes(
            _scale_format(spec).name, params.get("input_format", "bf16"),
            params.get("rule", "abs-max"), bool(params.get("prevent_zero"))))
    if "codes" in outputs:
        g["element_codes"] = list(range(16))
    if "choice" in outputs and spec.unit == "selector":  # every candidate wins somewhere
        g["choice"] = list(range(selectors.parse(params["rule"]).k))
    elif "choice" in outputs:
        g["choice"] = [0, 1]
        g["choice_by_class"] = sorted(
            [f"6@{c}" for c in g["scale_classes"]]
            + [f"4@{c}" for c in g["scale_classes"] if c != "zero"])
        g["ties"] = ["tie"]
    if "result" in outputs:
        g["result_classes"] = _result_classes(params)
    if "acc_overflow" in outputs and overflow_run(params) is not None:
        g["acc_overflow"] = [0, 1]
    if params.get("accumulate"):
        g["clear"] = ["after_nonzero"]
    return g


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

"""Accuracy against area: every (scale format x rule x block size) of the design space.

Accuracy comes from the golden model (MSE / sigma^2 of N(0, sigma^2) blocks at a
region-B sigma, and optionally relative MSE on real weights); area from the
synthesis rows (sky130 um^2 of the quantizer for the rule plus the dot-product
unit, per element; when the liberty has timing, the area at the common clock between
boundary registers, as ``finescale.report.area_per_element`` picks it).  :func:`pareto` marks the configurations no other one beats
on both, and :func:`advice` turns the table into the "what to choose" paragraph.

Rule ``nvfp4`` is the industry default: E4M3 abs-max block scales under NVFP4's FP32
per-tensor scale (``hierarchical="tensor"``), E4M3 only.  ``bits_per_element`` is the
second cost axis, storage: element bits + scale bits / block size + the per-tensor
scale's 32 bits amortised over the tensor (:func:`bits_per_element`).
"""

from __future__ import annotations

import numpy as np

from finescale.golden import blockformat, formats as _formats, recipes
from finescale.study import mse as study

FORMATS = blockformat.SCALE_FORMATS
RULES = ("abs-max", "pz", "4o6", "bf", "nvfp4")
BLOCKS = (4, 8, 16, 32)

#: rule -> quantize options (:data:`finescale.golden.blockformat.LABELS`; ``nvfp4``: the
#: recipe's E4M3 abs-max under the FP32 per-tensor scale)
RULE_OPTIONS = {**{r: blockformat.LABELS[r] for r in RULES if r in blockformat.LABELS},
                "nvfp4": {k: v for k, v in recipes.RECIPES["nvfp4"].items()
                          if k in ("rule", "hierarchical")}}


def rule_options(rule: str, scale: str) -> dict | None:
    """quantize options of a rule for a scale format; None where the pair is moot: a scale
    format without zero (E8M0) has no zero scale to prevent, and a power-of-two one uses the
    OCP rule (floor) for abs-max."""
    opts = dict(RULE_OPTIONS[rule], scale_format=scale)
    if rule == "nvfp4" and scale != recipes.RECIPES["nvfp4"]["scale_format"]:
        return None  # NVFP4 is E4M3 scales under an FP32 per-tensor scale
    if opts.get("prevent_zero") and _formats.get(scale).zero_code is None:
        return None
    if opts["rule"] == "abs-max":
        opts["rule"] = blockformat.scale_rule(scale)
    return opts


def accuracy(sigma: float, *, formats=FORMATS, rules=RULES, blocks=BLOCKS, nblocks=4000,
             seed=0, weights=None, progress=True) -> list[dict]:
    """MSE / sigma^2 of every configuration at ``sigma`` (and on ``weights``, if given).

    ``weights``: {name: float array}; their relative MSE (MSE / mean square),
    pooled over tensors, is reported as ``weights_rel_mse``.
    """
    from tqdm import tqdm

    rows = []
    combos = [(f, r, b) for f in formats for r in rules for b in blocks
              if rule_options(r, f) is not None]
    for f, r, b in tqdm(combos, desc="accuracy", unit="config", disable=not progress):
        opts = rule_options(r, f)
        x = study.sample(0, sigma, b, nblocks, seed)
        stats, q = study.measure(x, study.StudyRule(r, "paper-e4m3", opts), b)
        row = dict(scale_format=f, rule=r, block_size=b, sigma=sigma,
                   rel_mse=stats["mse"] / sigma ** 2, rel_mse_se=stats["mse_se"] / sigma ** 2,
                   zero_scale_share=stats["zero_scale_share"], bits_per_element=bits_per_element(q))
        if weights:
            row["weights_rel_mse"] = weights_rel_mse(weights, b, opts)
        rows.append(row)
    return rows


def bits_per_element(q) -> float:
    """Storage of a quantized tensor per element: its element codes, block scale codes and
    FP32 per-tensor (or per-row) scales, in bits."""
    n = q.element_codes.size
    g = 0 if q.global_scale is None else np.size(q.global_scale)
    return (q.element.bits * n + q.scale_format.bits * q.scale_codes.size
            + 8 * np.dtype(np.float32).itemsize * g) / n


def weights_rel_mse(weights: dict, block: int, opts: dict) -> float:
    """Pooled relative MSE over tensors whose last axis the block divides."""
    from finescale import golden

    err = power = 0.0
    for w in weights.values():
        if w.ndim < 1 or w.shape[-1] % block:
            continue
        x = np.asarray(w, np.float32)
        q = golden.quantize(x, recipe="paper-e4m3", block_size=block, **opts)
        err += float(((q.dequantize(np.float64) - x.astype(np.float64)) ** 2).sum())
        power += float((x.astype(np.float64) ** 2).sum())
    return err / power if power else float("nan")


def join_area(acc_rows: list[dict], area: dict) -> list[dict]:
    """Add ``area_per_element`` (um^2) where ``area[(format, rule, block)]`` is known."""
    out = []
    for r in acc_rows:
        a = area.get((r["scale_format"], r["rule"], r["block_size"]))
        out.append(dict(r, area_per_element=a if a is None else float(a)))
    return out


def pareto(rows, x="area_per_element", y="rel_mse") -> list[dict]:
    """Mark ``pareto=True`` on rows not dominated (lower-or-equal on both, lower on one)."""
    have = [r for r in rows if r.get(x) is not None and np.isfinite(r[y])]
    for r in rows:
        r["pareto"] = r in have and not any(
            o[x] <= r[x] and o[y] <= r[y] and (o[x] < r[x] or o[y] < r[y]) for o in have)
    return rows


def advice(rows) -> str:
    """The 'what to choose' paragraph, every claim read off ``rows``."""
    def best(pred, key="rel_mse"):
        cand = [r for r in rows if pred(r) and r.get(key) is not None and np.isfinite(r[key])]
        return min(cand, key=lambda r: r[key]) if cand else None

    def get(f, rule, b):
        return next((r for r in rows if (r["scale_format"], r["rule"], r["block_size"])
                     == (f, rule, b)), None)

    out = []
    hw = [r for r in rows if r["rule"] != "bf"]
    top = best(lambda r: r["rule"] != "bf")
    if top:
        out.append(f"Most accurate buildable configuration at sigma = {top['sigma']:g}: "
                   f"{top['scale_format'].upper()} scales, {top['rule']}, blocks of "
                   f"{top['block_size']} (MSE/sigma^2 = {top['rel_mse']:.4f}).")
    for b in (4, 32):
        e4, u5 = get("e4m3", "abs-max", b), get("ue5m3", "abs-max", b)
        if e4 and u5:
            out.append(f"With abs-max and blocks of {b}, UE5M3 scales give "
                       f"{e4['rel_mse'] / u5['rel_mse']:.2f}x lower MSE than E4M3.")
    e4_4, e4_32 = get("e4m3", "abs-max", 4), get("e4m3", "abs-max", 32)
    if e4_4 and e4_32:
        inv = e4_4["rel_mse"] > e4_32["rel_mse"]
        out.append(f"E4M3 abs-max {'inverts' if inv else 'does not invert'} here: blocks of 4 "
                   f"{'worse' if inv else 'better'} than 32 ({e4_4['rel_mse']:.4f} vs "
                   f"{e4_32['rel_mse']:.4f}).")
        o4 = get("e4m3", "4o6", 4)
        if o4:
            out.append(f"4-over-6 at blocks of 4 brings E4M3 to {o4['rel_mse']:.4f} "
                       f"({e4_4['rel_mse'] / o4['rel_mse']:.2f}x better than abs-max).")
    front = [r for r in hw if r.get("pareto")]
    if front:
        front.sort(key=lambda r: r["area_per_element"])
        out.append("Pareto front (area per element -> MSE): " + "; ".join(
            f"{r['scale_format'].upper()}/{r['rule']}/B{r['block_size']} "
            f"{r['area_per_element']:.0f} um^2 -> {r['rel_mse']:.4f}" for r in front) + ".")
    return " ".join(out)

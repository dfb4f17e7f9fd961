"""``finescale validate``: the golden recipes on real weights and a real language model.

Three studies (each optional with ``--studies``), all offline from the ``llm`` extra:

* ``mse``  per-layer and overall relative MSE ``sum (q - x)^2 / sum x^2`` of
  all-MiniLM-L6-v2's encoder weights for every rule x scale format x block
  size, each tensor first rescaled so its standard deviation sits in one of the
  numerical study's regions (A: E4M3 scales underflow, B: subnormal E4M3
  scales, C: no inversion; ``native`` keeps the trained weights).  "overall"
  sums errors and energies over all tensors.
* ``ppl``  perplexity of SmolLM2-135M-Instruct on a fixed slice of English
  Wikipedia lead paragraphs, unquantized and with weights and input activations
  of every MLP linear (gate/up/down_proj) fake-quantized by each recipe and block
  size; the gap to the baseline is the papers' Fig. 2.  The baseline's weights
  are themselves Q4_1 (4-bit) dequantized to fp32.
* ``mask`` the papers' Fig. 10 diagnostic: MLP weights and activations with
  ``lo <= |v| < hi`` set to zero, at full precision; the perplexity gap per interval.

Outputs in ``--out``: ``mse.csv`` (per tensor), ``mse_overall.csv``, ``ppl.csv``,
``mask.csv``, ``summary.md`` and one PNG per study.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from finescale import golden
from finescale.study.sigmas import REGION_SIGMA

DEFAULT_RECIPES = ["paper-e4m3", "paper-e4m3-pz", "paper-e4m3-4o6", "paper-e4m3-h",
                   "paper-ue5m3"]
DEFAULT_SIGMAS = [f"{region}={sigma:g}" for region, sigma in REGION_SIGMA.items()]
#: the MSE study's rules; a scale format below adds its own options
RULES = golden.blockformat.LABELS
SCALES = {
    "e4m3": dict(scale_format="e4m3"),
    "e4m3-h": dict(scale_format="e4m3", hierarchical="tensor"),
    "ue5m3": dict(scale_format="ue5m3"),
    "e8m0": dict(scale_format="e8m0"),
}
STUDIES = ("mse", "ppl", "mask")


def scheme(rule: str, scale: str, block_size: int) -> dict:
    """golden.quantize options for one cell of the MSE study.

    With a per-tensor scale, 4o6 bounds the block scale by 256 (as NVFP4 4o6
    does) so that the M = 4 candidate does not saturate.
    """
    opts = dict(RULES[rule], **SCALES[scale], block_size=block_size)
    if opts["rule"] == "4o6" and opts.get("hierarchical"):
        opts["scale_bound"] = 256.0
    return opts


def parse_sigmas(items) -> list[tuple[str, float | None]]:
    """``NAME=SIGMA`` or ``native`` -> (name, sigma or None)."""
    out = []
    for item in items:
        if item == "native":
            out.append(("native", None))
            continue
        name, sep, value = item.partition("=")
        try:
            sigma = float(value)
        except ValueError:
            sigma = -1.0
        if not sep or not name or not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"--sigmas entry {item!r} must be NAME=SIGMA with SIGMA > 0, "
                             "or 'native'")
        out.append((name, sigma))
    return out


def relative_mse(x: np.ndarray, **options) -> tuple[float, float]:
    """(sum (q - x)^2, sum x^2) in float64 for ``q = golden.quantize(x, **options).dequantize()``."""
    q = golden.quantize(x, **options).dequantize().astype(np.float64)
    x = x.astype(np.float64)
    return float(np.sum((q - x) ** 2)), float(np.sum(x * x))


def mse_study(weights: dict, sigmas, rules, scales, block_sizes, bar=None):
    """Per-tensor rows and overall rows of relative MSE; see the module docstring."""
    rows, overall = [], []
    for region, sigma in sigmas:
        placed = {name: w if sigma is None else (w * np.float32(sigma / float(w.std())))
                  .astype(np.float32) for name, w in weights.items()}
        for rule in rules:
            for scale in scales:
                for bs in block_sizes:
                    opts = scheme(rule, scale, bs)
                    err = energy = 0.0
                    for name, w in placed.items():
                        e, s = relative_mse(w, **opts)
                        err, energy = err + e, energy + s
                        rows.append(dict(region=region, sigma=sigma or float(weights[name].std()),
                                         rule=rule, scale_format=scale, block_size=bs,
                                         tensor=name, rel_mse=e / s))
                    overall.append(dict(region=region, sigma=sigma or "", rule=rule,
                                        scale_format=scale, block_size=bs, rel_mse=err / energy))
                    if bar is not None:
                        bar.update(1)
    return rows, overall


def token_windows(tokenizer, text: str, tokens: int, context: int):
    """The first ``tokens`` tokens of ``text`` cut into rows of ``context`` (a LongTensor)."""
    import torch

    if tokens < context or context < 2:
        raise ValueError(f"--tokens ({tokens}) must be at least --context ({context}) >= 2")
    ids = tokenizer(text[: tokens * 20], add_special_tokens=False)["input_ids"]
    n = tokens // context
    if len(ids) < n * context:
        raise ValueError(f"the text has only {len(ids)} tokens, fewer than {n * context}")
    return torch.tensor(ids[: n * context]).reshape(n, context)


def perplexity(model, windows, batch: int = 4) -> float:
    """exp(mean next-token NLL) over every window (each predicts its tokens 2..context)."""
    import torch

    nll, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            ids = windows[i:i + batch]
            logits = model(ids).logits[:, :-1].double()
            nll += float(torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum"))
            count += ids[:, 1:].numel()
    return math.exp(nll / count)


def ppl_study(model, windows, recipes, block_sizes, bar=None, weight_sigma=None):
    """Rows (recipe, block_size, ppl, gap) with W+A fake quantization of the MLP linears.

    ``weight_sigma`` quantizes each weight at that std (an exact power-of-two
    rescaling undone after quantization, see ``AtSigma``).
    """
    from finescale.golden.fakequant import AtSigma, TensorQuantizer, fake_quantized

    base = perplexity(model, windows)
    rows = [dict(recipe="none", block_size="", ppl=base, gap=0.0)]
    for recipe in recipes:
        for bs in block_sizes:
            wq = TensorQuantizer(recipe=recipe, block_size=bs)
            if weight_sigma is not None:
                wq = AtSigma(wq, weight_sigma)
            with fake_quantized(model, weight=wq, act=TensorQuantizer(recipe=recipe, block_size=bs)):
                p = perplexity(model, windows)
            rows.append(dict(recipe=recipe, block_size=bs, ppl=p, gap=p - base))
            if bar is not None:
                bar.update(1)
    return rows


def mask_study(model, windows, edges, base=None, bar=None):
    """Rows (lo, hi, ppl, gap) with MLP weights and activations in [lo, hi) zeroed."""
    from finescale.golden.fakequant import IntervalMask, fake_quantized

    base = perplexity(model, windows) if base is None else base
    rows = []
    for i, lo in enumerate(edges):
        for hi in edges[i + 1:]:
            mask = IntervalMask(lo, hi)
            with fake_quantized(model, weight=mask, act=mask):
                p = perplexity(model, windows)
            rows.append(dict(lo=lo, hi=hi, ppl=p, gap=p - base))
            if bar is not None:
                bar.update(1)
    return rows


def inverted(values_by_bs: dict) -> bool:
    """True when the smallest block size is worse than some larger one (the papers' inversion)."""
    sizes = sorted(values_by_bs)
    return len(sizes) > 1 and values_by_bs[sizes[0]] > min(values_by_bs[b] for b in sizes[1:])


def pivot(rows, key, value, fmt):
    """Markdown table: one line per ``key(row)``, one column per block size, plus inversion."""
    table: dict = {}
    for r in rows:
        if r["block_size"] != "":
            table.setdefault(key(r), {})[r["block_size"]] = r[value]
    sizes = sorted({b for t in table.values() for b in t})
    lines = ["| | " + " | ".join(f"bs {b}" for b in sizes) + " | inversion |",
             "|---" * (len(sizes) + 2) + "|"]
    for k, t in table.items():
        cells = [fmt(t[b]) if b in t else "" for b in sizes]
        lines.append(f"| {k} | " + " | ".join(cells) + f" | {'yes' if inverted(t) else 'no'} |")
    return "\n".join(lines)


def write_csv(path: Path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path, dpi=120):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_ppl(path, rows):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for recipe in dict.fromkeys(r["recipe"] for r in rows if r["recipe"] != "none"):
        pts = sorted((r["block_size"], r["gap"]) for r in rows if r["recipe"] == recipe)
        ax.plot(*zip(*pts), marker="o", label=recipe)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="block size", ylabel="perplexity gap",
           title="SmolLM2-135M, W+A FP4 on MLP linears")
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_mse(path, overall):
    plt = _pyplot()
    regions = list(dict.fromkeys(r["region"] for r in overall))
    scales = list(dict.fromkeys(r["scale_format"] for r in overall))
    fig, axes = plt.subplots(len(regions), len(scales), squeeze=False, sharex=True,
                             figsize=(3 * len(scales), 2.4 * len(regions)))
    for i, region in enumerate(regions):
        for j, scale in enumerate(scales):
            ax = axes[i][j]
            sel = [r for r in overall if r["region"] == region and r["scale_format"] == scale]
            for rule in dict.fromkeys(r["rule"] for r in sel):
                pts = sorted((r["block_size"], r["rel_mse"]) for r in sel if r["rule"] == rule)
                ax.plot(*zip(*pts), marker=".", label=rule)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{region} / {scale}", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.supxlabel("block size")
    fig.supylabel("relative MSE (MiniLM-L6 weights)")
    _save(fig, path, dpi=110)


def plot_mask(path, rows, edges):
    plt = _pyplot()
    n = len(edges)
    grid = np.full((n - 1, n - 1), np.nan)
    for r in rows:
        grid[edges.index(r["lo"]), edges.index(r["hi"]) - 1] = r["gap"]
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(grid, origin="lower", cmap="viridis")
    ax.set_xticks(range(n - 1), [f"{e:g}" for e in edges[1:]], rotation=45, fontsize=7)
    ax.set_yticks(range(n - 1), [f"{e:g}" for e in edges[:-1]], fontsize=7)
    ax.set(xlabel="upper |v| bound", ylabel="lower |v| bound",
           title="perplexity gap, MLP W+A in [lo, hi) zeroed")
    fig.colorbar(im)
    _save(fig, path)

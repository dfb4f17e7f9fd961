"""PNG figures of the area study, one per question; a figure with no data to show is skipped."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .study import at_clock, breakdown_shares  # noqa: E402

from finescale.golden.blockformat import SCALE_FORMATS as FORMATS  # noqa: E402


def _variant(r) -> str:
    """What distinguishes rows of one unit beyond format and size (rule, pz, input, pipeline,
    the dot product's lanes, accumulator and stages)."""
    p = r["params"]
    bits = [str(p["rule"])] if "rule" in p and r["unit"] != "4o6" else []
    bits += ["pz"] if p.get("prevent_zero") else []
    bits += [str(p["input_format"])] if p.get("input_format", "bf16") != "bf16" else []
    bits += ["pipe"] if p.get("pipelined") else []
    bits += [f"{p['lanes']} lanes"] if p.get("lanes", p.get("block_size")) != p.get("block_size") \
        else []
    bits += ["fp32 acc" if p.get("accumulate") == "fp32" else "acc"] if p.get("accumulate") else []
    bits += [f"{p['stages']} stages"] if p.get("stages", 0) > int(bool(p.get("accumulate"))) \
        else []
    return " ".join(bits)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def area_vs_block_size(rows, path: Path, *, per_lane=False) -> Path | None:
    """One panel per unit: area (or area per lane) against block size, a line per format+variant."""
    units = sorted({r["unit"] for r in rows})
    if not units:
        return None
    key = "um2_per_lane" if per_lane else "sky130_um2"
    fig, axes = plt.subplots(1, len(units), figsize=(4.2 * len(units), 3.8), squeeze=False)
    for ax, unit in zip(axes[0], units):
        lines = {}
        for r in rows:
            if r["unit"] == unit:
                label = f"{r.get('scale_format', '?')} {_variant(r)}".strip()
                lines.setdefault(label, []).append((r["params"].get("block_size", r["lanes"]),
                                                    r[key]))
        for label, pts in sorted(lines.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["params"].get("block_size", r["lanes"]) for r in rows
                              if r["unit"] == unit}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_title(f"{unit} unit")
        ax.set_xlabel("block size")
        ax.set_ylabel("sky130 um$^2$ per lane" if per_lane else "sky130 area, um$^2$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Area per lane vs block size" if per_lane else "Area vs block size")
    return _save(fig, path)


def _grouped_bars(ax, groups: list[str], series: dict[str, dict[str, float]],
                  **legend) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [values.get(g, 0.0) for g in groups], width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8, rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, **legend)


def rules(rows, path: Path) -> Path | None:
    """The 4-over-6 unit (scale and codes) vs the quantizer (scale and codes) and the abs-max,
    prevent-zero and mx scale units (scale only), per format and block size; log scale."""
    def rule(r):
        if r["unit"] == "4o6":
            return "4-over-6 (scale + codes)"
        m = r["params"].get("rule", "abs-max")
        if r["unit"] == "quantizer" and not r["params"].get("prevent_zero"):
            return f"{m} quantizer (scale + codes)"
        if r["unit"] == "scale":
            return f"{m} + pz scale" if r["params"].get("prevent_zero") else f"{m} scale"
        return None
    chosen = [r for r in rows if rule(r) and r["params"].get("input_format", "bf16") == "bf16"
              and not r["params"].get("pipelined")]
    if not any(r["unit"] == "4o6" for r in chosen):
        return None
    groups = [f"{f} b{n}" for f, n in sorted({(str(r.get("scale_format")), r["lanes"])
                                                for r in chosen})]
    series = {}
    for r in chosen:
        series.setdefault(rule(r), {})[f"{r.get('scale_format')} b{r['lanes']}"] = r["sky130_um2"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups)) + 2.5, 4))
    _grouped_bars(ax, groups, dict(sorted(series.items())), loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    ax.set_yscale("log")
    ax.set_ylabel("sky130 area, um$^2$ (log)")
    ax.set_title("Scale selection rule: 4-over-6 vs abs-max vs prevent-zero")
    return _save(fig, path)


def formats(rows, path: Path) -> Path | None:
    """E4M3 vs UE5M3 vs E8M0 scales, for the scale unit and for the dot-product unit."""
    units = [u for u in ("scale", "dot") if any(r["unit"] == u for r in rows)]
    if not units:
        return None
    fig, axes = plt.subplots(1, len(units), figsize=(5.5 * len(units), 4), squeeze=False)
    for ax, unit in zip(axes[0], units):
        chosen = [r for r in rows if r["unit"] == unit and r.get("scale_format") in FORMATS]
        def group(r):
            return f"b{r['params'].get('block_size', r['lanes'])} {_variant(r)}".strip()
        groups = sorted({group(r) for r in chosen}, key=lambda g: (int(g.split()[0][1:]), g))
        series = {f: {} for f in FORMATS if any(r.get("scale_format") == f for r in chosen)}
        for r in chosen:
            series[r["scale_format"]][group(r)] = r["sky130_um2"]
        _grouped_bars(ax, groups, series)
        ax.set_ylabel("sky130 area, um$^2$")
        ax.set_title(f"{unit} unit: scale format")
    return _save(fig, path)


def dot_breakdown(rows, path: Path) -> Path | None:
    """Stacked shares of the dot-product unit's submodules (hierarchical synthesis)."""
    dots = [r for r in rows if r["unit"] == "dot" and breakdown_shares(r)]
    if not dots:
        return None
    parts = list(dict.fromkeys(k for r in dots for k in breakdown_shares(r)))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(dots) + 3), 4.5))
    bottom = [0.0] * len(dots)
    for part in parts:
        vals = [r["breakdown_um2"].get(part, 0.0) for r in dots]
        ax.bar(range(len(dots)), vals, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(dots)))
    ax.set_xticklabels([f"{r.get('scale_format')} b{r['params'].get('block_size')} "
                        f"{_variant(r)}".strip() for r in dots], rotation=30, ha="right",
                       fontsize=8)
    ax.set_ylabel("sky130 area, um$^2$ (hierarchical)")
    ax.set_title("Dot-product unit by submodule")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return _save(fig, path)


def area_vs_clock(rows, path: Path) -> Path | None:
    """Area (boundary registers included) of each unit mapped for each clock period, one panel
    per unit kind, colour by scale format, the fastest mapping as a star at its own delay."""
    curves = [r for r in rows
              if sum("clock_ns" in t for t in (r.get("timing") or {}).values()) >= 2]
    if not curves:
        return None
    kinds = sorted({r["unit"] for r in curves})
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for r in (r for r in curves if r["unit"] == kind):
            color = f"C{FORMATS.index(r.get('scale_format'))}" if r.get("scale_format") in FORMATS \
                else "k"
            pts = sorted((t["clock_ns"], a["um2"], a["slack_ps"] >= 0)
                         for t in r["timing"].values() if "clock_ns" in t
                         for a in [at_clock(r["timing"], t["clock_ns"])])
            label = f"{r.get('scale_format', '?')} {r['lanes']} {_variant(r)}".strip()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=color, label=label)
            ax.plot([p[0] for p in pts if p[2]], [p[1] for p in pts if p[2]], "o", color=color,
                    ms=4)
            ax.plot([p[0] for p in pts if not p[2]], [p[1] for p in pts if not p[2]], "x",
                    color=color, ms=6)
            if "fastest" in r["timing"]:
                f = r["timing"]["fastest"]
                ax.plot([f["delay_ps"] / 1e3], [f["um2"]], "*", color=color, ms=9)
        ax.set(title=kind, xlabel="clock period (ns)", ylabel="sky130 um^2 (boundary registers "
               "included)", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.suptitle("Area vs clock period (abc -D, OpenSTA; o met, x missed, * fastest mapping at "
                 "its delay)", fontsize=9)
    return _save(fig, path)


def write_all(rows, out: Path) -> list[Path]:
    made = [area_vs_block_size(rows, out / "area_vs_block_size.png"),
            area_vs_block_size(rows, out / "area_per_lane.png", per_lane=True),
            rules(rows, out / "rules.png"), formats(rows, out / "formats.png"),
            dot_breakdown(rows, out / "dot_breakdown.png"),
            area_vs_clock(rows, out / "area_vs_clock.png")]
    return [p for p in made if p is not None]

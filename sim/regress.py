"""``finescale regress``: every unit x parameter set through its cocotb testbench, as a table.

``--quick`` (default) runs the default matrix with a few thousand vectors a
unit; ``--full`` runs every parameter set with many more vectors and the
exhaustive sweeps.  ``--verilog FILE.v`` regresses a given Verilog file (hand-edited,
re-generated, a mutant) against the golden model, reading the unit and parameters
from the sidecar ``FILE.json`` beside it.  Results (with the sha256 of each Verilog
file simulated) go to ``--out`` as regress.csv / .json / .md; the exit code is
nonzero when any unit mismatches, misses a coverage goal or fails.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path


from . import runner, units

MODES = {"quick": {"which": "default", "vectors": 2000, "full": False},
         "full": {"which": "all", "vectors": 20000, "full": True}}
COLUMNS = ("name", "unit", "simulator", "latency", "vectors", "mismatches", "coverage",
           "missed", "vectors_per_s", "build_s", "sha256", "status")


def select(specs, wanted) -> list:
    """Specs whose unit kind or whole top name is one of ``wanted`` (all when empty)."""
    if not wanted:
        return list(specs)
    out = [s for s in specs if s.unit in wanted or s.name in wanted]
    if not out:
        kinds = sorted({s.unit for s in specs})
        raise ValueError(f"no unit matches {list(wanted)}; give a unit kind {kinds} "
                         "or a whole top name")
    return out


def row(report: dict) -> dict:
    """One table row of a testbench report."""
    ok = report["passed"] and not report["missed"] and not report["mismatches"]
    return {"name": report["name"], "unit": report["unit"], "simulator": report["simulator"],
            "latency": report["latency"], "vectors": report["vectors"],
            "mismatches": report["mismatches"], "coverage": report["summary"],
            "missed": json.dumps(report["missed"]) if report["missed"] else "",
            "vectors_per_s": round(report["vectors_per_s"]),
            "build_s": round(report["build_s"], 1), "sha256": report.get("sha256", ""),
            "status": "PASS" if ok else "FAIL"}


def markdown(rows, columns=COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows, columns=COLUMNS) -> None:
    """``rows`` (dicts) as CSV with ``columns``; the folder is created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def write_tables(rows, reports, out: Path) -> None:
    write_csv(out / "regress.csv", rows)
    (out / "regress.json").write_text(json.dumps(reports, indent=1, default=str))
    (out / "regress.md").write_text(markdown(rows))


def _run(job, **kw):
    kind, item = job
    return runner.run_unit(**{kind: item}, **kw)


def regress(*, mode="quick", sim="verilator", wanted=(), specs=None, verilog=(), seed=1,
            vectors=None, waves=False, build_root="sim_build", out="regress_out",
            source=units.DEFAULT_SOURCE, jobs=1, scheduler=None,
            progress=True) -> tuple[list, list]:
    """Run the regression (``jobs`` units at a time as Dask tasks, or on the Dask cluster at
    ``scheduler``); returns (table rows, full reports) in the units' order.

    Units: ``specs`` when given, else the mode's matrix filtered by ``wanted`` (unit
    kinds or whole top names); ``verilog`` (files with sidecars) instead of both."""
    from finescale import cluster
    cfg = MODES[mode]
    if verilog:
        jobs_ = [("verilog", v) for v in verilog]
    else:
        if specs is None:
            specs = select(units.matrix(cfg["which"], source), wanted)
        jobs_ = [("spec", s) for s in specs]
    run_one = functools.partial(_run, sim=sim, seed=seed,
                                vectors=vectors or cfg["vectors"], full=cfg["full"],
                                waves=waves, build_root=build_root, source=source)
    done = {}
    for i, rep in cluster.as_completed(run_one, jobs_, jobs=jobs, scheduler=scheduler,
                                       desc=f"regress {mode} ({sim})", unit="unit",
                                       progress=progress):
        done[i] = rep
        reports = [done[k] for k in sorted(done)]
        # after every unit: long runs show progress
        write_tables([row(r) for r in reports], reports, Path(out))
    reports = [done[k] for k in sorted(done)]
    return [row(r) for r in reports], reports

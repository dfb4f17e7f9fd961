"""``finescale bench``: throughput of the golden model and of the cocotb regression.

``bench golden``: every rate is reported next to the rate of ``x.copy()`` of
the same array, timed in the same run, because absolute numbers on shared
machines are noise.  Each figure is the best of ``--repeat`` runs after one
warm-up (which also compiles the numba kernels).

``bench regress``: blocks a second through cocotb + Verilator for one unit of
every kind (E4M3 scales, blocks of 16, BF16; combinational and pipelined,
the dot product plain, in 4-lane beats and accumulating), checked by the same
scoreboard (``spec.reference`` on the whole batch).  The rate counts the
stimulus and response transfer and the simulation, not the Verilator build nor
the check; it is given per wall second and per CPU second of the simulator
process (one core; the figure that does not depend on other load).
``--per-cycle`` also runs the per-cycle drivers on every vector (the
regression before the harness) for comparison.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: name -> (quantize options, first bar: minimum ratio to the copy rate)
GOLDEN_CASES = {
    "abs-max": (dict(recipe="paper-e4m3"), 0.10),
    "nvfp4": (dict(recipe="nvfp4"), 0.10),
    "4o6": (dict(recipe="paper-e4m3-4o6"), 0.04),
    "brute-force": (dict(recipe="paper-e4m3-bf"), 0.005),
}


def best_time(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_golden(n: int, repeat: int, seed: int = 0, cases=None) -> list[dict]:
    from tqdm import tqdm

    from finescale import golden

    x = (np.random.default_rng(seed).standard_normal(n) * 0.01).astype(np.float32)
    x = x.reshape(-1, 1024) if n % 1024 == 0 else x
    names = list(cases or GOLDEN_CASES)
    for name in names:  # warm up every case first: kernel compilation, thread pool, page faults
        golden.quantize(x[:64], **GOLDEN_CASES[name][0]).dequantize()
    golden.quantize(x, **GOLDEN_CASES[names[0]][0]).dequantize()
    copy = best_time(x.copy, max(repeat, 5))
    rows = []
    for name in tqdm(names, desc="bench golden", unit="case"):
        opts, bar = GOLDEN_CASES[name]
        t = best_time(lambda: golden.quantize(x, **opts).dequantize(),
                      1 if name == "brute-force" else repeat)
        ratio = copy / t
        rows.append({"case": name, "options": opts, "elements": n, "seconds": t,
                     "elements_per_s": n / t, "copy_elements_per_s": n / copy,
                     "ratio_to_copy": ratio, "bar": bar, "pass": ratio >= bar})
    return rows


#: unit kinds of ``bench regress``: name -> (unit, parameters); E4M3, blocks of 16, BF16
REGRESS_CASES = {
    "scale": ("scale", {}), "scale pipelined": ("scale", {"pipelined": True}),
    "element": ("element", {}), "element pipelined": ("element", {"pipelined": True}),
    "quantizer": ("quantizer", {}), "quantizer pipelined": ("quantizer", {"pipelined": True}),
    "4o6": ("4o6", {}), "4o6 pipelined": ("4o6", {"pipelined": True}),
    "dot": ("dot", {}), "dot pipelined": ("dot", {"stages": 4}),
    "dot 4 lanes": ("dot", {"lanes": 4}), "dot 4 lanes pipelined": ("dot", {"lanes": 4, "stages": 4}),
    "dot Kulisch": ("dot", {"accumulate": True}),
    "dot Kulisch pipelined": ("dot", {"accumulate": True, "stages": 4}),
}


def regress_units(which: str = "all") -> list:
    """The UnitSpecs of :data:`REGRESS_CASES` (a unit source for :mod:`finescale.sim.units`)."""
    from finescale.hw.units import spec
    return [spec(u, scale_format="e4m3", block_size=16, **p) for u, p in REGRESS_CASES.values()]


def bench_regress(vectors: int, *, cases=None, per_cycle=False, build_root="sim_build/bench",
                  seed=1) -> list[dict]:
    """One row per unit kind (and path): blocks, seconds, blocks/s (wall and CPU), build time."""
    from tqdm import tqdm

    from finescale.sim import runner

    source = f"{__name__}:regress_units"
    names = list(cases or REGRESS_CASES)
    specs = dict(zip(REGRESS_CASES, regress_units()))
    paths = [True, False] if per_cycle else [True]
    rows = []
    for name, harness in tqdm([(n, h) for n in names for h in paths], desc="bench regress",
                              unit="run"):
        root = Path(build_root) / ("harness" if harness else "per-cycle")
        rep = runner.run_unit(specs[name], vectors=vectors, seed=seed, source=source,
                              build_root=root, harness=harness)
        rows.append({"case": name, "unit": rep["name"], "path": "harness" if harness else
                     "per-cycle", "blocks": rep["vectors"], "seconds": rep["seconds"],
                     "blocks_per_s": rep["vectors_per_s"], "cpu_s": rep["cpu_s"],
                     "blocks_per_cpu_s": rep["vectors_per_cpu_s"], "build_s": rep["build_s"],
                     "passed": bool(rep["passed"] and not rep["mismatches"])})
    return rows


def markdown_regress(rows) -> str:
    lines = ["| unit kind | top | path | blocks | blocks/s (wall) | blocks/s (CPU) | build s | "
             "pass |", "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['unit']} | {r['path']} | {r['blocks']} | "
                     f"{r['blocks_per_s']:,.0f} | {r['blocks_per_cpu_s']:,.0f} | "
                     f"{r['build_s']:.1f} | {'yes' if r['passed'] else 'NO'} |")
    return "\n".join(lines)


def markdown(rows) -> str:
    lines = ["| case | quantize+dequantize (Melem/s) | numpy copy (Melem/s) | ratio | bar |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['elements_per_s'] / 1e6:.1f} | "
                     f"{r['copy_elements_per_s'] / 1e6:.0f} | {r['ratio_to_copy']:.4f} | "
                     f"{'>=' if r['pass'] else '<'} {r['bar']} |")
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure golden-model throughput against a numpy copy",
                       description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("target", choices=["golden", "regress"], help="what to measure")
    p.add_argument("--elements", type=int, default=16 << 20, help="golden: array size (float32)")
    p.add_argument("--repeat", type=int, default=3, help="golden: timed runs per case")
    p.add_argument("--cases", nargs="+", choices=list(GOLDEN_CASES) + list(REGRESS_CASES),
                   help="subset of cases")
    p.add_argument("--vectors", type=int, default=100_000,
                   help="regress: random blocks a unit (plus the sweeps)")
    p.add_argument("--per-cycle", action="store_true",
                   help="regress: also run every vector through the per-cycle drivers")
    p.add_argument("--build-dir", default="sim_build/bench", help="regress: build directory")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.target == "regress":
        if args.vectors < 1:
            raise ValueError(f"--vectors must be positive, got {args.vectors}")
        bad = sorted(set(args.cases or ()) - set(REGRESS_CASES))
        if bad:
            raise ValueError(f"not a regress case: {bad}; choose from {list(REGRESS_CASES)}")
        rows = bench_regress(args.vectors, cases=args.cases, per_cycle=args.per_cycle,
                             build_root=args.build_dir)
        print(markdown_regress(rows))
        print("blocks/s exclude the Verilator build and the scoreboard check; "
              "CPU: per CPU second of the simulator process")
    else:
        bad = sorted(set(args.cases or ()) - set(GOLDEN_CASES))
        if bad:
            raise ValueError(f"not a golden case: {bad}; choose from {list(GOLDEN_CASES)}")
        rows = bench_golden(args.elements, args.repeat, cases=args.cases)
        print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r.get("passed", True) for r in rows) else 1

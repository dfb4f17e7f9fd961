"""``finescale bench``: golden-model and regression throughput against baselines measured in the
same run.
"""

from __future__ import annotations

import argparse
import json

from finescale import bench as library
from finescale.bench import (
    GOLDEN_CASES, REGRESS_CASES, bench_cold, bench_golden, bench_regress, markdown,
    markdown_cold, markdown_regress)


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure golden-model throughput against a numpy copy",
                       description=library.__doc__,
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
    p.add_argument("--cold", action="store_true",
                   help="golden: also time each case's first call in a fresh process with an "
                        "empty numba cache")
    p.add_argument("--no-torchao", action="store_true", help="golden: skip the torchao column")
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
        if args.elements < 1024 or args.elements % 1024:
            raise ValueError(f"--elements must be a positive multiple of 1024, got "
                             f"{args.elements}")
        rows = bench_golden(args.elements, args.repeat, cases=args.cases,
                            torchao=not args.no_torchao)
        print(markdown(rows))
        if args.cold:
            cold = bench_cold(args.cases)
            print(markdown_cold(cold))
            rows = rows + cold
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r.get("passed", True) for r in rows) else 1

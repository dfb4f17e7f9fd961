"""``finescale mutate``: the mutation campaign (Yosys mutants of the emitted units through the
regression).
"""

from __future__ import annotations

from pathlib import Path

from finescale.sim import mutate as library
from finescale.sim.mutate import KINDS, campaign


def register(subparsers) -> None:
    p = subparsers.add_parser("mutate", help="mutation campaign: Yosys mutants of the emitted "
                              "units through the regression", description=library.__doc__)
    p.add_argument("--unit", action="append", default=[], metavar="KIND",
                   help=f"unit kind, repeatable: {', '.join(KINDS)} (default: all)")
    p.add_argument("--mutants", type=int, default=50, help="mutants a unit kind")
    p.add_argument("--seed", type=int, default=1, help="mutation and stimulus seed")
    p.add_argument("--vectors", type=int, default=300, help="random vectors (plus sweeps)")
    p.add_argument("--learn", action="store_true",
                   help="add each survivor's SAT counterexample to the unit's directed vectors "
                   "(sim/data/directed/) and run the survivors again")
    p.add_argument("--out", default="results/mutate", help="where the CSV/JSON/Markdown go")
    p.add_argument("--build-dir", default="sim_build/mutate", help="Yosys and Verilator work")
    p.add_argument("--jobs", type=int, default=1,
                   help="unit kinds at a time (Dask LocalCluster worker processes)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.mutants < 1 or args.vectors < 1 or args.jobs < 1:
        raise ValueError("--mutants, --vectors and --jobs must be positive")
    rows, sums = campaign(args.unit, mutants=args.mutants, seed=args.seed,
                          vectors=args.vectors, out=args.out, workdir=args.build_dir,
                          learn=args.learn, jobs=args.jobs)
    print((Path(args.out) / "mutate.md").read_text(), end="")
    return 1 if any(s["survivors"] for s in sums) else 0

"""``finescale report``: the whole design-space report in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from finescale import report as library


def register(sub) -> None:
    p = sub.add_parser("report", help="the whole design-space report in one command",
                       description=library.__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="full", action="store_false", default=False,
                      help="reduced study and regression (the default, minutes)")
    mode.add_argument("--full", dest="full", action="store_true",
                      help="paper-size study, full regression and synthesis matrix")
    p.add_argument("--out", type=Path, default=Path("results/report"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--jobs", type=int, default=2,
                   help="worker processes (one Dask cluster: RTL generation, regression, "
                   "mutants and synthesis; with 1, the stages run one after another here)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.jobs < 1:
        raise ValueError(f"--jobs must be positive, got {args.jobs}")
    return library.make_report(args.out, full=args.full, seed=args.seed, jobs=args.jobs)

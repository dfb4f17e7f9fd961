"""``finescale prove``: formal equivalence of each pipelined unit with its combinational twin."""

from __future__ import annotations

from pathlib import Path
from tqdm import tqdm

from finescale.sim import formal as library
from finescale.sim.formal import KINDS, prove, twins, write_tables


def register(subparsers) -> None:
    p = subparsers.add_parser("prove", help="Yosys proofs: every pipelined unit equals its "
                              "combinational twin", description=library.__doc__)
    p.add_argument("--unit", action="append", default=[], metavar="KIND",
                   help=f"unit kind, repeatable: {', '.join(KINDS)} (default: all)")
    p.add_argument("--block-size", type=int, default=4)
    p.add_argument("--scale-format", default="e4m3")
    p.add_argument("--maxsteps", type=int, default=12, help="induction length limit")
    p.add_argument("--timeout", type=float, default=300, help="seconds a Yosys call may take")
    p.add_argument("--out", default="results/prove")
    p.add_argument("--build-dir", default="sim_build/prove")
    p.set_defaults(func=run)


def run(args) -> int:
    kinds = args.unit or list(KINDS)
    for k in kinds:
        twins(k)  # unknown kinds: one line before any work
    rows = []
    for k in tqdm(kinds, desc="prove", unit="unit"):
        rows.append(prove(k, args.build_dir, block_size=args.block_size,
                          scale_format=args.scale_format, maxsteps=args.maxsteps,
                          timeout=args.timeout))
        write_tables(rows, Path(args.out))
    print((Path(args.out) / "prove.md").read_text(), end="")
    return 1 if any(r["result"] in ("FAILED", "timeout") for r in rows) else 0

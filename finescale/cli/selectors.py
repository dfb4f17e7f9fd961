"""``finescale selectors``: every scale selector's MSE, cost and the Pareto front."""

from __future__ import annotations

import argparse
import numpy as np
import time
from pathlib import Path

from finescale.study.selectors import BLOCKS, SELECTORS, synth_costs, write_study


def register(subparsers):
    p = subparsers.add_parser(
        "selectors", help="scale selectors: MSE per sigma and block size, cost model, front",
        description="Every scale selector of the golden model on N(0, sigma^2) blocks (and "
                    "MiniLM weights when installed), a modelled hardware cost, the Pareto "
                    "front and the check against the 4-over-6 target.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="13 sigmas x 2000 blocks, E4M3 only (about a minute)")
    p.add_argument("--selectors", nargs="+", default=list(SELECTORS), metavar="NAME",
                   help="rule names (abs-max, 4o6 and brute-force are always added)")
    p.add_argument("--scale-formats", nargs="+", default=None,
                   help="default: e4m3 (quick) or e4m3 ue5m3")
    p.add_argument("--block-sizes", nargs="+", type=int, default=list(BLOCKS))
    p.add_argument("--sigmas", nargs=3, type=float, metavar=("LO", "HI", "N"), default=None,
                   help="N log-spaced sigmas in [LO, HI] (default 0.0005 0.05 37; quick 13)")
    p.add_argument("--blocks", type=int, default=None,
                   help="blocks a point (default 20000, quick 2000)")
    p.add_argument("--weight-rows", type=int, default=None,
                   help="MiniLM: first N output rows of each tensor (default: quick 64, else all)")
    p.add_argument("--synth", type=Path, nargs="+", default=None,
                   help="synth.json files (or their folders) of `finescale synth` for area_um2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/selectors"))
    p.set_defaults(func=run)


def run(args) -> int:
    import numba

    threads = numba.get_num_threads()
    if args.quick:  # small calls: worker threads would only wait (and spin on a busy machine)
        numba.set_num_threads(1)
    try:
        return _run(args)
    finally:
        numba.set_num_threads(threads)


def _run(args) -> int:
    t0 = time.perf_counter()
    lo, hi, n = args.sigmas or (0.0005, 0.05, 13 if args.quick else 37)
    if n != int(n) or n < 2:
        raise ValueError(f"--sigmas N must be an integer >= 2, got {n}")
    sigmas = tuple(float(s) for s in np.geomspace(lo, hi, int(n)))
    nblocks = args.blocks or (2000 if args.quick else 20000)
    fmts = args.scale_formats or (["e4m3"] if args.quick else ["e4m3", "ue5m3"])
    cap = args.weight_rows if args.weight_rows is not None else 64 if args.quick else 0
    area, delay = {}, {}
    for path in args.synth or []:
        costs = synth_costs(path)
        area.update(costs["sky130_um2"])
        delay.update(costs["delay_ps"])
    res = write_study(args.out, sigmas, tuple(args.block_sizes), args.selectors, fmts, nblocks,
                      seed=args.seed, area=area or None, delay=delay or None, weight_rows=cap)
    print(f"selectors: {len(res['names'])} selectors x {len(fmts)} formats x "
          f"{len(args.block_sizes)} block sizes x {len(sigmas)} sigmas, {nblocks} blocks a point: "
          f"{time.perf_counter() - t0:.0f} s")
    print(res["target_md"])
    for path in res["files"]:
        print(f"wrote {path}")
    return 0

"""``finescale study``: the 'Finer is better' MSE-vs-sigma study on normal data."""

from __future__ import annotations

import argparse
import numpy as np
import time
from pathlib import Path

from finescale.study.mse import (
    STUDY_RULES, PAPER_BLOCKS, PAPER_RULES, StudyConfig, detect_regions, histograms,
    parse_rule, representative_sigmas, run_study, write_tables)


def register(subparsers):
    p = subparsers.add_parser(
        "study", help="the 'Finer is better' MSE-vs-sigma study on normal data",
        description="Monte-Carlo MSE of block quantization of N(0, sigma^2) data versus sigma, "
                    "block size and scaling rule, with the analytic prediction, region "
                    "detection (A/B/C) and the paper's figures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="25 log-spaced sigmas x 4000 blocks instead of 151 x 50000")
    p.add_argument("--rules", nargs="+", default=list(PAPER_RULES), metavar="M",
                   help=f"labels ({', '.join(STUDY_RULES)}) or recipe[:option=value...]")
    p.add_argument("--scale-format", default=None,
                   help="scale format for every rule (e.g. ue5m3, e8m0); default: the recipes'")
    p.add_argument("--block-sizes", nargs="+", type=int, default=list(PAPER_BLOCKS))
    p.add_argument("--sigmas", nargs=3, type=float, metavar=("LO", "HI", "N"), default=None,
                   help="N evenly spaced sigmas in [LO, HI] (default 0.0005 0.05 151)")
    p.add_argument("--blocks", type=int, default=None,
                   help="blocks a point (default 50000, quick: 4000)")
    p.add_argument("--hist-sigma", nargs="+", type=float, default=None,
                   help="sigmas of the histogram figures (default: one in each detected region)")
    p.add_argument("--zero-threshold", type=float, default=0.5,
                   help="region A: share of zero abs-max scales above this at some block size")
    p.add_argument("--no-theory", action="store_true", help="skip the analytic prediction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/study"))
    p.set_defaults(func=run)


def run(args) -> int:
    from finescale.study import plots

    t0 = time.perf_counter()
    base = StudyConfig.quick() if args.quick else StudyConfig()
    sigmas = base.sigmas
    if args.sigmas:
        lo, hi, n = args.sigmas
        if n != int(n) or n < 1:
            raise ValueError(f"--sigmas N must be a positive integer, got {n}")
        sigmas = tuple(np.linspace(lo, hi, int(n)))
    config = StudyConfig(sigmas=sigmas, block_sizes=tuple(args.block_sizes),
                         rules=tuple(parse_rule(m) for m in args.rules),
                         nblocks=args.blocks or base.nblocks, scale_format=args.scale_format,
                         seed=args.seed, theory=not args.no_theory)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_study(config)
    labels = {m.label for m in config.rules}
    regions = (detect_regions(rows, zero_threshold=args.zero_threshold)
               if "abs-max" in labels else None)
    hist_sigmas = args.hist_sigma or (representative_sigmas(regions) if regions else
                                      [float(np.median(config.sigmas))])
    hists = [histograms(s, config) for s in hist_sigmas]
    if regions and not args.hist_sigma:
        for h, lab in zip(hists, [lab for lab in "ABC" if lab in regions.labels]):
            h["region"] = lab
    elapsed = time.perf_counter() - t0
    meta = dict(sigmas=len(config.sigmas), block_sizes=list(config.block_sizes),
                rules={m.label: dict(recipe=m.recipe, **m.options) for m in config.rules},
                nblocks=config.nblocks, scale_format=config.scale_format, seed=config.seed,
                seconds=round(elapsed, 1))
    write_tables(rows, regions, args.out, meta)
    written = plots.plot_all(rows, regions, hists, args.out)
    print(f"study: {len(config.sigmas)} sigmas x {len(config.block_sizes)} block sizes x "
          f"{len(config.rules)} rules, {config.nblocks} blocks a point: {elapsed:.1f} s")
    if regions:
        print(f"regions (A: zero-scale share > {regions.zero_threshold:g}; inversion: "
              f"> {regions.z:g} standard errors):")
        print(regions.describe())
    for path in [args.out / "study.csv", args.out / "study.json", *written]:
        print(f"wrote {path}")
    return 0

"""``finescale report``: the whole design-space report in one command."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from finescale import report as library
from finescale.report import Report


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
    p.add_argument("--jobs", type=int, default=2, help="parallel synthesis workers")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rep = Report(out, full=args.full, seed=args.seed, jobs=args.jobs)
    stages = [("Numerical study (MSE vs sigma)", rep.study),
              ("RTL generation", rep.rtl),
              ("Regression: RTL vs golden model", rep.regress),
              ("Synthesis: area and logic depth", rep.synth),
              ("Real weights", rep.real_weights),
              ("Accuracy vs area", rep.tradeoff),
              ("Scale selectors", rep.selectors)]
    t0 = time.perf_counter()
    with tqdm(stages, desc="report", unit="stage") as bar:
        for title, fn in bar:
            bar.set_postfix_str(title)
            rep.stage(title, fn)
    seconds = time.perf_counter() - t0
    for path in rep.write(seconds):
        print(f"wrote {path}")
    if rep.failed:
        raise RuntimeError(f"stage(s) failed: {', '.join(rep.failed)} (see {out}/errors.log)")
    return 0

"""``finescale bench``: throughput of the golden model, as a ratio to a numpy copy.

Every rate is reported next to the rate of ``x.copy()`` of the same array,
timed in the same run, because absolute numbers on shared machines are noise.
Each figure is the best of ``--repeat`` runs after one warm-up (which also
compiles the numba kernels).
"""

from __future__ import annotations

import argparse
import json
import time

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
    p.add_argument("target", choices=["golden"], help="what to measure")
    p.add_argument("--elements", type=int, default=16 << 20, help="array size (float32)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per case (best kept)")
    p.add_argument("--cases", nargs="+", choices=list(GOLDEN_CASES), help="subset of cases")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = bench_golden(args.elements, args.repeat, cases=args.cases)
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0

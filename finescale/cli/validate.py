"""``finescale validate``: recipes on real weights (MiniLM MSE) and a real LM (SmolLM2
perplexity).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from finescale.study import validate as library
from finescale import golden
from finescale.study.validate import (
    DEFAULT_RECIPES, DEFAULT_SIGMAS, RULES, SCALES, STUDIES, mask_study, mse_study,
    parse_sigmas, pivot, plot_mask, plot_mse, plot_ppl, ppl_study, token_windows, write_csv)


def register(subparsers):
    p = subparsers.add_parser(
        "validate", help="recipes on real weights (MiniLM MSE) and a real LM (SmolLM2 perplexity)",
        description=library.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--studies", nargs="+", choices=STUDIES, default=list(STUDIES),
                   help="which studies to run (default: all)")
    p.add_argument("--tokens", type=int, default=512,
                   help="Wikipedia tokens scored for perplexity (default 512)")
    p.add_argument("--context", type=int, default=256, help="tokens a window (default 256)")
    p.add_argument("--block-sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES,
                   help=f"golden recipes for perplexity (default: {' '.join(DEFAULT_RECIPES)})")
    p.add_argument("--weight-sigma", type=float, default=None,
                   help="quantize each MLP weight rescaled by the power of two that brings its "
                        "std nearest this value (exact, undone after quantization), to place "
                        "the weights in region A/B/C; default: as trained")
    p.add_argument("--rules", nargs="+", choices=list(RULES), default=list(RULES),
                   help="MSE-study scale rules (default: all)")
    p.add_argument("--scale-formats", nargs="+",
                   choices=list(SCALES), default=list(SCALES),
                   help="MSE-study scale formats (default: all)")
    p.add_argument("--sigmas", nargs="+", default=DEFAULT_SIGMAS,
                   help="MSE-study regions as NAME=SIGMA (each tensor rescaled to that std) "
                        "or 'native' (default: %(default)s)")
    p.add_argument("--mse-rows", type=int, default=32,
                   help="first rows of each MiniLM tensor used (0: all; default 32)")
    p.add_argument("--mask-edges", type=float, nargs="+",
                   default=[0.0, 0.005, 0.01, 0.02, 0.035],
                   help="magnitude interval bounds for the masking heat map")
    p.add_argument("--out", default="validate-out", help="output folder (default validate-out)")
    p.set_defaults(func=run)


def _check(args):
    for r in args.recipes:
        golden.recipes.resolve(r, {})
    if any(b < 1 for b in args.block_sizes):
        raise ValueError(f"--block-sizes must be positive, got {args.block_sizes}")
    if args.weight_sigma is not None and not (0 < args.weight_sigma < math.inf):
        raise ValueError(f"--weight-sigma must be a positive number, got {args.weight_sigma}")
    edges = sorted(set(args.mask_edges))
    if "mask" in args.studies and (len(edges) < 2 or edges[0] < 0):
        raise ValueError("--mask-edges needs at least two distinct values >= 0")
    return edges


def run(args) -> int:
    from tqdm import tqdm

    edges = _check(args)
    sigmas = parse_sigmas(args.sigmas)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = ["# finescale validate", ""]
    total = 0
    if "mse" in args.studies:
        total += len(sigmas) * len(args.rules) * len(args.scale_formats) * len(args.block_sizes)
    if "ppl" in args.studies:
        total += len(args.recipes) * len(args.block_sizes)
    if "mask" in args.studies:
        total += len(edges) * (len(edges) - 1) // 2
    with tqdm(total=total, desc="validate", unit="run") as bar:
        if "mse" in args.studies:
            from finescale.study import realdata

            rows, overall = mse_study(realdata.minilm_weights(args.mse_rows), sigmas,
                                      args.rules, args.scale_formats, args.block_sizes, bar)
            write_csv(out / "mse.csv", rows)
            write_csv(out / "mse_overall.csv", overall)
            plot_mse(out / "mse.png", overall)
            summary += ["## Relative weight MSE, all-MiniLM-L6-v2 encoder linears "
                        f"(first {args.mse_rows or 'all'} rows of each)", ""]
            for region, _ in sigmas:
                summary += [f"### region {region}", "",
                            pivot([r for r in overall if r["region"] == region],
                                  lambda r: f"{r['rule']} / {r['scale_format']}", "rel_mse",
                                  lambda v: f"{v:.4g}"), ""]
        model = windows = base = None
        if "ppl" in args.studies or "mask" in args.studies:
            from finescale.study import realdata

            bar.set_postfix_str("loading SmolLM2")
            model, tok = realdata.load_smollm2()
            windows = token_windows(tok, realdata.wiki_text(), args.tokens, args.context)
            bar.set_postfix_str("")
        if "ppl" in args.studies:
            rows = ppl_study(model, windows, args.recipes, args.block_sizes, bar,
                             args.weight_sigma)
            base = rows[0]["ppl"]
            write_csv(out / "ppl.csv", rows)
            plot_ppl(out / "ppl.png", rows)
            summary += [f"## SmolLM2-135M-Instruct perplexity gap, {windows.numel()} Wikipedia "
                        f"tokens, W+A on MLP linears" + (
                            "" if args.weight_sigma is None else
                            f", weights quantized at std ~{args.weight_sigma:g}"), "",
                        f"Baseline perplexity {base:.4f} (weights are Q4_1 from the GGUF, "
                        "dequantized to fp32).", "",
                        pivot(rows, lambda r: r["recipe"], "gap", lambda v: f"{v:.3f}"), ""]
        if "mask" in args.studies:
            rows = mask_study(model, windows, edges, base, bar)
            write_csv(out / "mask.csv", rows)
            plot_mask(out / "mask.png", rows, edges)
            summary += ["## Magnitude masking (MLP W+A in [lo, hi) set to 0), perplexity gap",
                        "", "| lo \\ hi | " + " | ".join(f"{e:g}" for e in edges[1:]) + " |",
                        "|---" * len(edges) + "|"]
            gaps = {(r["lo"], r["hi"]): r["gap"] for r in rows}
            for lo in edges[:-1]:
                summary.append(f"| {lo:g} | " + " | ".join(
                    f"{gaps[lo, hi]:.3f}" if (lo, hi) in gaps else "" for hi in edges[1:]) + " |")
            summary.append("")
    summary.append(f"Run time {time.perf_counter() - t0:.0f} s.")
    text = "\n".join(summary) + "\n"
    (out / "summary.md").write_text(text)
    print(text)
    print(f"wrote {out}/")
    return 0

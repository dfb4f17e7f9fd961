"""The "Finer is better" numerical study (Fig. 1, 3-7): block-quantization MSE of normal data.

N(0, sigma^2) samples, one fresh sample a (sigma, block size) point shared by
every method, quantized by golden recipes; per point the MSE, the clipping-only
MSE (``(|x| - Mmax S)^2`` for ``|x| > Mmax S``, averaged over all elements),
their standard errors over blocks, the share of zero scales and the share of
blocks that chose 4 (4-over-6).  :func:`detect_regions` labels the paper's
regions A (abs-max scales underflow), B (abs-max inverts in block size while
brute force does not) and C (no inversion).

>>> rows = run_study(StudyConfig.quick())            # doctest: +SKIP
>>> detect_regions(rows).ranges                      # doctest: +SKIP

The ``finescale study`` command runs it and writes ``study.csv``,
``study.json`` and the plots of :mod:`.plots`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from finescale.golden import formats
from finescale.golden.blockformat import LABELS
from finescale.golden.quantize import quantize
from finescale.golden.recipes import RECIPES

from . import theory

__all__ = ["Method", "METHODS", "PAPER_METHODS", "StudyConfig", "parse_method", "measure",
           "run_study", "histograms", "detect_regions", "Regions", "register", "run"]

#: label -> (recipe, extra quantize options).  4o6 errors are compared in float64
#: ("float"), as the paper's MSE; the "-fixed" variants use the hardware's fixed point.
METHODS = {
    **{label: ("paper-e4m3", LABELS[label]) for label in ("abs-max", "pz", "4o6", "pz-4o6", "bf")},
    **{f"{label}-fixed": ("paper-e4m3", dict(LABELS[label], error_arith="fixed"))
       for label in ("4o6", "pz-4o6")},
}
PAPER_METHODS = ("abs-max", "pz", "4o6", "pz-4o6", "bf")
PAPER_SIGMAS = (0.0005, 0.05, 151)
PAPER_BLOCKS = (4, 8, 16, 32)
FIELDS = ("sigma", "block_size", "method", "scale_format", "mse", "mse_se", "clip_mse",
          "clip_se", "zero_scale_share", "choose4_share", "theory_mse", "theory_clip_mse")


@dataclasses.dataclass(frozen=True)
class Method:
    """A study method: a label and the :func:`quantize` options it stands for."""

    label: str
    recipe: str
    options: dict

    def quantize(self, x, block_size, scale_format=None):
        opts = dict(self.options)
        if scale_format is not None:
            opts["scale"] = scale_format
        return quantize(x, recipe=self.recipe, block_size=block_size, **opts)

    def theory_options(self, scale_format=None):
        """Options for :func:`theory.expected_mse`, or None where the analytic model does not apply."""
        opts = dict(self.options, **({"scale": scale_format} if scale_format else {}))
        try:
            theory.supported(self.recipe, **opts)
        except ValueError:
            return None
        return opts


def _value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_method(spec: str) -> Method:
    """``label`` of :data:`METHODS`, or ``recipe[:option=value[:option=value...]]``."""
    if spec in METHODS:
        recipe, opts = METHODS[spec]
        return Method(spec, recipe, dict(opts))
    recipe, *pairs = spec.split(":")
    if recipe not in RECIPES:
        raise ValueError(f"unknown method {spec!r}; use one of {', '.join(METHODS)} or a recipe "
                         f"({', '.join(RECIPES)}) with optional ':option=value' suffixes")
    opts = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep:
            raise ValueError(f"method option {pair!r} in {spec!r} is not of the form option=value")
        opts[key] = _value(val)
    quantize(np.zeros((1, 4), np.float32), recipe=recipe, block_size=4, **opts)  # validate early
    return Method(spec, recipe, opts)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """What to sweep.  ``nblocks`` blocks of each size are sampled at every sigma."""

    sigmas: tuple = tuple(np.linspace(*PAPER_SIGMAS))
    block_sizes: tuple = PAPER_BLOCKS
    methods: tuple = tuple(parse_method(m) for m in PAPER_METHODS)
    nblocks: int = 50_000
    scale_format: str | None = None  # overrides every method's scale format
    seed: int = 0
    theory: bool = True

    def __post_init__(self):
        if not self.sigmas or min(self.sigmas) <= 0:
            raise ValueError("sigmas must be a non-empty list of positive numbers")
        if not self.block_sizes or min(self.block_sizes) < 1:
            raise ValueError("block_sizes must be a non-empty list of positive integers")
        if self.nblocks < 2:
            raise ValueError(f"nblocks must be at least 2, got {self.nblocks}")
        if self.scale_format is not None:
            formats.get(self.scale_format)

    @classmethod
    def quick(cls, **kw):
        """A reduced sweep: 25 log-spaced sigmas (to resolve region A), 4000 blocks."""
        return cls(**{"sigmas": tuple(np.geomspace(PAPER_SIGMAS[0], PAPER_SIGMAS[1], 25)),
                      "nblocks": 4000, **kw})


def sample(sigma_index: int, sigma: float, block_size: int, nblocks: int, seed: int):
    """float32 N(0, sigma^2) blocks, reproducible per (seed, sigma index, block size)."""
    rng = np.random.default_rng([seed, sigma_index, block_size])
    return (rng.standard_normal((nblocks, block_size), np.float32) * np.float32(sigma))


def measure(x, method: Method, block_size: int, scale_format=None):
    """(statistics dict, QuantizedTensor) of one method on blocks ``x[nblocks, block_size]``."""
    q = method.quantize(x, block_size, scale_format)
    x64 = x.astype(np.float64)
    err = ((x64 - q.dequantize(np.float64)) ** 2).mean(axis=1)
    S = q.scale_values.reshape(-1) * (1.0 if q.global_scale is None else
                                      np.asarray(q.global_scale, np.float64).reshape(-1))
    clip = (np.maximum(np.abs(x64) - q.element.max * S[:, None], 0.0) ** 2).mean(axis=1)
    n = err.size
    stats = dict(mse=err.mean(), mse_se=err.std(ddof=1) / np.sqrt(n), clip_mse=clip.mean(),
                 clip_se=clip.std(ddof=1) / np.sqrt(n), zero_scale_share=np.mean(S == 0),
                 choose4_share=np.nan if q.choice is None else np.mean(q.choice == 4))
    return {k: float(v) for k, v in stats.items()}, q


def run_study(config: StudyConfig, progress: bool = True) -> list[dict]:
    """One row a (sigma, block size, method), in that order (see :data:`FIELDS`)."""
    from tqdm import tqdm

    rows = []
    points = [(i, s, b) for i, s in enumerate(config.sigmas) for b in config.block_sizes]
    for i, sigma, b in tqdm(points, desc="study", unit="point", disable=not progress,
                            mininterval=1.0):
        x = sample(i, sigma, b, config.nblocks, config.seed)
        for m in config.methods:
            stats, q = measure(x, m, b, config.scale_format)
            th = m.theory_options(config.scale_format) if config.theory else None
            rows.append(dict(
                sigma=float(sigma), block_size=b, method=m.label, scale_format=q.scale.name,
                **stats,
                theory_mse=np.nan if th is None else theory.expected_mse(sigma, b, m.recipe, **th),
                theory_clip_mse=np.nan if th is None else theory.expected_mse(
                    sigma, b, m.recipe, clip=True, **th)))
    return rows


def histograms(sigma: float, config: StudyConfig) -> dict:
    """Counts of |element value| and of scale codes per (method, block size) at one sigma.

    Returns ``{"sigma", "element_values", "scale_format", "scale_values",
    "counts": {method: {block_size: (element_counts, scale_counts)}}}``: element
    counts per non-negative element value, scale counts per scale code
    (``scale_values`` gives each code's value; NaN for special codes).
    """
    out = {"sigma": float(sigma), "counts": {}}
    for b in config.block_sizes:
        x = sample(1_000_000, sigma, b, config.nblocks, config.seed)  # its own stream
        for m in config.methods:
            q = m.quantize(x, b, config.scale_format)
            efmt, sfmt = q.element, q.scale
            vals = efmt.values()
            vals = vals[vals >= 0]
            mags = np.abs(efmt.table[q.element_codes.reshape(-1)])
            ecount = np.bincount(np.searchsorted(vals, mags), minlength=vals.size)
            scount = np.bincount(q.scale_codes.reshape(-1), minlength=1 << sfmt.bits)
            out["counts"].setdefault(m.label, {})[b] = (ecount, scount)
            out["element_values"], out["scale_format"] = vals, sfmt.name
            out["scale_values"] = sfmt.table
    return out


@dataclasses.dataclass
class Regions:
    """Per-sigma region labels ("A", "B", "C" or "-") and their contiguous sigma ranges."""

    sigmas: np.ndarray
    labels: list
    zero_threshold: float
    z: float

    @property
    def ranges(self) -> list[tuple[str, float, float]]:
        out = []
        for s, lab in zip(self.sigmas, self.labels):
            if out and out[-1][0] == lab:
                out[-1][2] = s
            else:
                out.append([lab, s, s])
        return [tuple(r) for r in out]

    def describe(self) -> str:
        return "\n".join(f"  region {lab}: sigma {lo:.5g} .. {hi:.5g}" for lab, lo, hi in self.ranges)


def _table(rows, method, field):
    """{sigma: {block_size: value}} of one method."""
    t = {}
    for r in rows:
        if r["method"] == method:
            t.setdefault(r["sigma"], {})[r["block_size"]] = r[field]
    return t


def inverted(rows, method: str, z: float = 4.0) -> dict:
    """{sigma: True if some smaller block has a significantly (z standard errors) larger MSE}."""
    mse, se = _table(rows, method, "mse"), _table(rows, method, "mse_se")
    out = {}
    for s, by in mse.items():
        bs = sorted(by)
        out[s] = any(by[a] - by[b] > z * np.hypot(se[s][a], se[s][b])
                     for i, a in enumerate(bs) for b in bs[i + 1:])
    return out


def detect_regions(rows, *, reference="abs-max", optimum="bf", zero_threshold=0.5,
                   z: float = 4.0) -> Regions:
    """Label every sigma with the paper's regions.

    A: the share of zero scales under ``reference`` exceeds ``zero_threshold``
       at some block size (the scale underflows for most blocks);
    B: not A, ``reference`` is inverted (a smaller block has an MSE larger by
       more than ``z`` standard errors) while ``optimum`` is not;
    C: not A and ``reference`` is not inverted;
    "-": anything else (e.g. the optimum inverts too).
    ``optimum`` may be absent from the rows (then only ``reference`` is asked).
    """
    methods = {r["method"] for r in rows}
    if reference not in methods:
        raise ValueError(f"region detection needs method {reference!r} in the study "
                         f"(have {sorted(methods)})")
    zero = _table(rows, reference, "zero_scale_share")
    inv = inverted(rows, reference, z)
    inv_opt = inverted(rows, optimum, z) if optimum in methods else {}
    sigmas = np.array(sorted(zero))
    labels = []
    for s in sigmas:
        if max(zero[s].values()) > zero_threshold:
            labels.append("A")
        elif inv[s]:
            labels.append("-" if inv_opt.get(s, False) else "B")
        else:
            labels.append("C")
    return Regions(sigmas, labels, zero_threshold, z)


def write_tables(rows, regions: Regions | None, out: Path, meta: dict):
    """study.csv (tidy rows, region column) and study.json (rows, regions, run metadata)."""
    label = dict(zip(regions.sigmas.tolist(), regions.labels)) if regions else {}
    with open(out / "study.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS + ("region",))
        w.writeheader()
        for r in rows:
            w.writerow({**{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()},
                        "region": label.get(r["sigma"], "")})
    doc = {"meta": meta, "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                                   for k, v in r.items()} for r in rows]}
    if regions:
        doc["regions"] = {"zero_threshold": regions.zero_threshold, "z": regions.z,
                          "ranges": [dict(region=l, sigma_lo=a, sigma_hi=b)
                                     for l, a, b in regions.ranges]}
    (out / "study.json").write_text(json.dumps(doc, indent=1))


# -- command line --------------------------------------------------------------------------

def register(subparsers):
    p = subparsers.add_parser(
        "study", help="the 'Finer is better' MSE-vs-sigma study on normal data",
        description="Monte-Carlo MSE of block quantization of N(0, sigma^2) data versus sigma, "
                    "block size and scaling method, with the analytic prediction, region "
                    "detection (A/B/C) and the paper's figures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="25 log-spaced sigmas x 4000 blocks instead of 151 x 50000")
    p.add_argument("--methods", nargs="+", default=list(PAPER_METHODS), metavar="M",
                   help=f"labels ({', '.join(METHODS)}) or recipe[:option=value...]")
    p.add_argument("--scale-format", default=None,
                   help="scale format for every method (e.g. ue5m3, e8m0); default: the recipes'")
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
    from . import plots

    t0 = time.perf_counter()
    base = StudyConfig.quick() if args.quick else StudyConfig()
    sigmas = base.sigmas
    if args.sigmas:
        lo, hi, n = args.sigmas
        if n != int(n) or n < 1:
            raise ValueError(f"--sigmas N must be a positive integer, got {n}")
        sigmas = tuple(np.linspace(lo, hi, int(n)))
    config = StudyConfig(sigmas=sigmas, block_sizes=tuple(args.block_sizes),
                         methods=tuple(parse_method(m) for m in args.methods),
                         nblocks=args.blocks or base.nblocks, scale_format=args.scale_format,
                         seed=args.seed, theory=not args.no_theory)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_study(config)
    labels = {m.label for m in config.methods}
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
                methods={m.label: dict(recipe=m.recipe, **m.options) for m in config.methods},
                nblocks=config.nblocks, scale_format=config.scale_format, seed=config.seed,
                seconds=round(elapsed, 1))
    write_tables(rows, regions, args.out, meta)
    written = plots.plot_all(rows, regions, hists, args.out)
    print(f"study: {len(config.sigmas)} sigmas x {len(config.block_sizes)} block sizes x "
          f"{len(config.methods)} methods, {config.nblocks} blocks a point: {elapsed:.1f} s")
    if regions:
        print(f"regions (A: zero-scale share > {regions.zero_threshold:g}; inversion: "
              f"> {regions.z:g} standard errors):")
        print(regions.describe())
    for path in [args.out / "study.csv", args.out / "study.json", *written]:
        print(f"wrote {path}")
    return 0


def representative_sigmas(regions: Regions) -> list[float]:
    """The middle sigma of the widest range of each of A, B, C (in that order)."""
    best = {}
    for lab, lo, hi in regions.ranges:
        idx = np.flatnonzero((regions.sigmas >= lo) & (regions.sigmas <= hi))
        if lab in "ABC" and idx.size > best.get(lab, (0,))[0]:
            best[lab] = (idx.size, float(regions.sigmas[idx[idx.size // 2]]))
    return [best[lab][1] for lab in "ABC" if lab in best]

"""The "Finer is better" numerical study (Fig. 1, 3-7): block-quantization MSE of normal data.

N(0, sigma^2) samples, one fresh sample a (sigma, block size) point shared by
every rule, quantized by golden recipes; per point the MSE, the clipping-only
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

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from finescale.golden import formats
from finescale.golden.blockformat import LABELS
from finescale.golden.quantize import quantize
from finescale.golden.recipes import RECIPES

from . import theory

__all__ = ["StudyRule", "STUDY_RULES", "PAPER_RULES", "StudyConfig", "parse_rule", "measure",
           "run_study", "histograms", "detect_regions", "Regions"]

#: label -> (recipe, extra quantize options).  4o6 errors are compared in float64
#: ("float"), as the paper's MSE; the "-fixed" variants use the hardware's fixed point.
STUDY_RULES = {
    **{label: ("paper-e4m3", LABELS[label]) for label in ("abs-max", "pz", "4o6", "pz-4o6", "bf")},
    **{f"{label}-fixed": ("paper-e4m3", dict(LABELS[label], error_arith="fixed"))
       for label in ("4o6", "pz-4o6")},
}
PAPER_RULES = ("abs-max", "pz", "4o6", "pz-4o6", "bf")
PAPER_SIGMAS = (0.0005, 0.05, 151)
PAPER_BLOCKS = (4, 8, 16, 32)
FIELDS = ("sigma", "block_size", "rule", "scale_format", "mse", "mse_se", "clip_mse",
          "clip_se", "zero_scale_share", "choose4_share", "theory_mse", "theory_clip_mse")


@dataclasses.dataclass(frozen=True)
class StudyRule:
    """A study rule: a label and the :func:`quantize` options it stands for."""

    label: str
    recipe: str
    options: dict

    def quantize(self, x, block_size, scale_format=None):
        opts = dict(self.options)
        if scale_format is not None:
            opts["scale_format"] = scale_format
        return quantize(x, recipe=self.recipe, block_size=block_size, **opts)

    def theory_options(self, scale_format=None):
        """Options for :func:`theory.expected_mse`, or None where the analytic model does not apply."""
        opts = dict(self.options, **({"scale_format": scale_format} if scale_format else {}))
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


def parse_rule(spec: str) -> StudyRule:
    """``label`` of :data:`STUDY_RULES`, or ``recipe[:option=value[:option=value...]]``."""
    if spec in STUDY_RULES:
        recipe, opts = STUDY_RULES[spec]
        return StudyRule(spec, recipe, dict(opts))
    recipe, *pairs = spec.split(":")
    if recipe not in RECIPES:
        raise ValueError(f"unknown rule {spec!r}; use one of {', '.join(STUDY_RULES)} or a "
                         "recipe "
                         f"({', '.join(RECIPES)}) with optional ':option=value' suffixes")
    opts = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep:
            raise ValueError(f"rule option {pair!r} in {spec!r} is not of the form option=value")
        opts[key] = _value(val)
    quantize(np.zeros((1, 4), np.float32), recipe=recipe, block_size=4, **opts)  # validate early
    return StudyRule(spec, recipe, opts)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """What to sweep.  ``nblocks`` blocks of each size are sampled at every sigma."""

    sigmas: tuple = tuple(np.linspace(*PAPER_SIGMAS))
    block_sizes: tuple = PAPER_BLOCKS
    rules: tuple = tuple(parse_rule(m) for m in PAPER_RULES)
    nblocks: int = 50_000
    scale_format: str | None = None  # overrides every rule's scale format
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


def measure(x, rule: StudyRule, block_size: int, scale_format=None):
    """(statistics dict, QuantizedTensor) of one rule on blocks ``x[nblocks, block_size]``."""
    q = rule.quantize(x, block_size, scale_format)
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
    """One row a (sigma, block size, rule), in that order (see :data:`FIELDS`)."""
    from tqdm import tqdm

    rows = []
    points = [(i, s, b) for i, s in enumerate(config.sigmas) for b in config.block_sizes]
    for i, sigma, b in tqdm(points, desc="study", unit="point", disable=not progress,
                            mininterval=1.0):
        x = sample(i, sigma, b, config.nblocks, config.seed)
        for m in config.rules:
            stats, q = measure(x, m, b, config.scale_format)
            th = m.theory_options(config.scale_format) if config.theory else None
            rows.append(dict(
                sigma=float(sigma), block_size=b, rule=m.label, scale_format=q.scale_format.name,
                **stats,
                theory_mse=np.nan if th is None else theory.expected_mse(sigma, b, m.recipe, **th),
                theory_clip_mse=np.nan if th is None else theory.expected_mse(
                    sigma, b, m.recipe, clip=True, **th)))
    return rows


def histograms(sigma: float, config: StudyConfig) -> dict:
    """Counts of |element value| and of scale codes per (rule, block size) at one sigma.

    Returns ``{"sigma", "element_values", "scale_format", "scale_values",
    "counts": {rule: {block_size: (element_counts, scale_counts)}}}``: element
    counts per non-negative element value, scale counts per scale code
    (``scale_values`` gives each code's value; NaN for special codes).
    """
    out = {"sigma": float(sigma), "counts": {}}
    for b in config.block_sizes:
        x = sample(1_000_000, sigma, b, config.nblocks, config.seed)  # its own stream
        for m in config.rules:
            q = m.quantize(x, b, config.scale_format)
            efmt, sfmt = q.element, q.scale_format
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


def _table(rows, rule, field):
    """{sigma: {block_size: value}} of one rule."""
    t = {}
    for r in rows:
        if r["rule"] == rule:
            t.setdefault(r["sigma"], {})[r["block_size"]] = r[field]
    return t


def inverted(rows, rule: str, z: float = 4.0) -> dict:
    """{sigma: True if some smaller block has a significantly (z standard errors) larger MSE}."""
    mse, se = _table(rows, rule, "mse"), _table(rows, rule, "mse_se")
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
    rules = {r["rule"] for r in rows}
    if reference not in rules:
        raise ValueError(f"region detection needs rule {reference!r} in the study "
                         f"(have {sorted(rules)})")
    zero = _table(rows, reference, "zero_scale_share")
    inv = inverted(rows, reference, z)
    inv_opt = inverted(rows, optimum, z) if optimum in rules else {}
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


def representative_sigmas(regions: Regions) -> list[float]:
    """The middle sigma of the widest range of each of A, B, C (in that order)."""
    best = {}
    for lab, lo, hi in regions.ranges:
        idx = np.flatnonzero((regions.sigmas >= lo) & (regions.sigmas <= hi))
        if lab in "ABC" and idx.size > best.get(lab, (0,))[0]:
            best[lab] = (idx.size, float(regions.sigmas[idx[idx.size // 2]]))
    return [best[lab][1] for lab in "ABC" if lab in best]

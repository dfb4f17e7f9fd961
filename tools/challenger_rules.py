"""Can a cheap block statistic pick the challenger of a two-error-unit search?

The idea (issue 17, "a predictor + one error unit"): keep kc-m6_4-up's two error units but
let a predictor choose the second candidate, c1 = max(RoundSF(amax/4), c0 + 1) or
c2 = max(RoundSF(amax/3), c0 + 2), so that two error units reach what three do
(kc-m6_4_3-up).  Each block's result under either challenger is the golden model's
``kc-m6_4-up`` or ``kc-m6_3-up2``; a rule "c2 if statistic >= t" is scored by the region-B
gain it adds to ``kc-m6_4-up`` at blocks of 16 (sum over region-B sigmas of the mean squared
error per element saved, over sigma^2), against the gain that half of 4o6's gap needs and
the gain of an oracle that always takes the better challenger.

Statistics (all cheap: comparators and a population count): amax / S_j (S_j = the scale
0, 1, 2 codes above RoundSF(amax/6)), the number of elements in (level * S_j, amax) for
level 1.25 .. 5, and the number of elements besides the maximum reaching p % of amax.

    python tools/challenger_rules.py        # E4M3, 5 000 blocks a sigma, about a minute
"""

from __future__ import annotations

import numpy as np

from finescale import golden
from finescale.study import mse as study
from finescale.study.selectors import HARDWARE_4O6

SIGMAS = np.geomspace(0.0005, 0.05, 13)
REGION_B = [i for i, s in enumerate(SIGMAS) if 0.0045 < s < 0.017]  # selectors.csv's region B


def block_sse(x, b, **opts):
    q = golden.quantize(x, block_size=b, scale_format="e4m3", **opts)
    d = np.asarray(q.dequantize(), np.float64).reshape(-1, b)
    return ((d - np.asarray(x, np.float64).reshape(-1, b)) ** 2).mean(1)


def statistics(x, b):
    xb = np.abs(np.asarray(x, np.float64).reshape(-1, b))
    amax = xb.max(1)
    sfmt = golden.formats.get("e4m3")
    c0 = sfmt.encode(amax, divisor=6.0).astype(int)
    out = {}
    for j in range(3):
        s = sfmt.table[np.minimum(c0 + j, 126)]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"amax/S{j}"] = np.nan_to_num(amax / s, posinf=99.0)
        for level in (1.25, 1.75, 2.5, 3.5, 5.0):
            out[f"#({level}S{j},amax)"] = ((xb > level * s[:, None]) & (xb < amax[:, None])).sum(1)
    for p in (25, 50, 67, 75, 85):
        out[f"#>={p}%amax"] = (100 * xb >= p * amax[:, None]).sum(1) - 1
    return out


def main(b=16, nblocks=5000):
    pts = []
    for i in REGION_B:
        x = study.sample(i, SIGMAS[i], b, nblocks, 0)
        e = {k: block_sse(x, b, **o) for k, o in
             (("4o6", HARDWARE_4O6), ("bf", {"rule": "brute-force"}),
              ("c1", {"rule": "kc-m6_4-up"}), ("c2", {"rule": "kc-m6_3-up2"}))}
        pts.append((SIGMAS[i] ** 2, e, statistics(x, b)))
    gap = sum((e["4o6"].mean() - e["bf"].mean()) / v for v, e, _ in pts)
    now = sum((e["4o6"].mean() - e["c1"].mean()) / v for v, e, _ in pts)
    oracle = sum(np.maximum(e["c1"] - e["c2"], 0).mean() / v for v, e, _ in pts)
    print(f"blocks of {b}: kc-m6_4-up closes {now / gap:.2f} of 4o6's gap; half needs a gain of "
          f"{0.5 * gap - now:.3g}, an oracle challenger gains {oracle:.3g} "
          f"({(now + oracle) / gap:.2f} closed)")
    best = []
    for name in pts[0][2]:
        values = np.unique(np.concatenate([s[name] for *_, s in pts]))
        for t in np.quantile(values, np.linspace(0, 1, 41)) if values.size > 41 else values:
            for sense in (1, -1):
                gain = sum(((e["c1"] - e["c2"]) * ((s[name] >= t) if sense > 0 else
                                                   (s[name] < t))).mean() / v
                           for v, e, s in pts)
                best.append((gain, f"c2 if {name} {'>=' if sense > 0 else '<'} {t:.3g}"))
    best.sort(reverse=True)
    for gain, rule in best[:5]:
        print(f"  {rule}: gain {gain:.3g} ({(now + gain) / gap:.2f} closed)")


if __name__ == "__main__":
    main()

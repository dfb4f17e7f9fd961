"""Analytic expected block-quantization MSE for normal data (the Fasoli et al. view).

For a block of ``n`` i.i.d. N(0, sigma^2) values whose scale is a deterministic
function of the block maximum ``m`` (abs-max, prevent-zero, mx), the expected
squared error per element is

    E = integral phi_h(m) [F(m)^(n-1) e(m; S(m)) + (n-1) F(m)^(n-2) I(m; S(m))] dm

with ``phi_h`` / ``F`` the half-normal density / distribution of one magnitude,
``e(t; S)`` the squared error of a magnitude ``t`` under scale ``S`` and
``I(m; S) = integral_0^m e(t; S) phi_h(t) dt`` (the other ``n - 1`` elements
are i.i.d. half-normal conditioned on being below ``m``).  ``e`` is piecewise
quadratic between the element format's rounding boundaries times ``S``, so
``I`` is a sum of closed-form normal moments; the outer integral runs
Gauss-Legendre on every piece where ``S(m)`` is constant and the maximum stays
in one element cell.  ``S(m)`` comes from the golden model's own RoundSF
(:func:`scaling.round_scale`) and the cells from the golden formats' grids, so
the prediction is exact per recipe up to quadrature error (far below sampling
noise).  ``clip=True`` keeps only the clipping part ``(|x| - Mmax S)^2`` for
``|x| > Mmax S``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from finescale.golden import formats, scaling
from finescale.golden.recipes import resolve

__all__ = ["expected_mse", "supported"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_TAIL = 12.0  # integrate m up to _TAIL * sigma; beyond, the density is < 1e-30


@numba.vectorize(["float64(float64)"], cache=True)
def _ncdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _npdf(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _moment(a, b, c, sigma):
    """integral_a^b (t - c)^2 phi_h(t) dt for the half-normal density (b may be inf)."""
    A, B = a / sigma, b / sigma
    pa, pb = _npdf(A), np.where(np.isinf(B), 0.0, _npdf(np.where(np.isinf(B), 0.0, B)))
    m0 = _ncdf(B) - _ncdf(A)
    m1 = pa - pb
    m2 = m0 + A * pa - np.where(np.isinf(B), 0.0, B * pb)
    return 2.0 * (sigma * sigma * m2 - 2.0 * sigma * c * m1 + c * c * m0)


def _cells(efmt, clip):
    """(lo, hi, value) of the element magnitude cells, in units of the scale."""
    v = efmt.values()
    v = v[v >= 0]
    if clip:
        return np.array([v[-1]]), np.array([np.inf]), np.array([v[-1]])
    mid = (v[:-1] + v[1:]) / 2
    return np.r_[0.0, mid], np.r_[mid, np.inf], v


def supported(recipe=None, **options) -> dict:
    """Resolved options if the recipe's scale depends on the block maximum only; else raise."""
    opts = resolve(recipe, options)
    bad = [f"{k}={opts[k]!r}" for k, ok in [
        ("rule", opts["rule"] in ("abs-max", "mx")), ("hierarchical", opts["hierarchical"] is None),
        ("rounding", opts["rounding"] == "rne"), ("arith", opts["arith"] == "exact")] if not ok]
    if bad:
        raise ValueError(f"the analytic model covers abs-max / mx / prevent-zero recipes with "
                         f"exact RNE elements and no per-tensor scale, not {', '.join(bad)}")
    return opts


def expected_mse(sigma: float, block_size: int, recipe: str | None = None, *, clip=False,
                 **options) -> float:
    """Expected per-element squared error of N(0, sigma^2) blocks under ``recipe``."""
    opts = supported(recipe, **options)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    n = int(block_size)
    if n < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    efmt, sfmt = formats.get(opts["element"]), formats.get(opts["scale_format"])
    M = opts["M"]
    if M is None:
        M = 2.0 ** np.floor(np.log2(efmt.max)) if opts["rule"] == "mx" else efmt.max
    srounding = opts["scale_rounding"] or ("floor" if opts["rule"] == "mx" else "rne")
    floor = opts["pz_floor"] if opts["pz_floor"] is not None else sfmt.min_subnormal

    def scale_of(m):
        codes = scaling.round_scale(sfmt, np.asarray(m, np.float64), M, rounding=srounding,
                                    arith="exact")
        if opts["prevent_zero"]:
            codes = scaling.apply_prevent_zero(sfmt, codes, floor)
        return sfmt.table[codes]

    # where S(m) may change: M times every scale value and every midpoint
    s = sfmt.values()
    s = s[s >= 0]
    cand = M * np.unique(np.r_[s, (s[:-1] + s[1:]) / 2])
    top = _TAIL * sigma
    edges = np.unique(np.r_[0.0, cand[cand < top], top])
    lo, hi, val = _cells(efmt, clip)
    S = scale_of((edges[:-1] + edges[1:]) / 2)
    # split further where the maximum crosses an element cell boundary (S times a cell edge)
    cuts = (S[:, None] * np.r_[lo, hi[:-1]][None, :]).ravel()
    pts = np.unique(np.r_[edges, cuts[(cuts > 0) & (cuts < top)]])
    a, b = pts[:-1], pts[1:]
    S = scale_of((a + b) / 2)
    m = ((b - a) / 2)[:, None] * _NODES + ((a + b) / 2)[:, None]
    w = ((b - a) / 2)[:, None] * _WEIGHTS
    with np.errstate(invalid="ignore"):  # inf * 0 at the open top cell, masked out
        f = _integrand(m.ravel(), np.repeat(S, _NODES.size), sigma, n, lo, hi, val)
    return float(w.ravel() @ f)


def _integrand(m, S, sigma, n, lo, hi, val):
    """phi_h(m) [F^(n-1) e(m) + (n-1) F^(n-2) I(m)] at the nodes m, scale S at each node.

    S = 0 makes every element 0: one cell [0, inf) with value 0 (all of it clipped).
    """
    F = 2.0 * _ncdf(m / sigma) - 1.0
    dens = 2.0 / sigma * _npdf(m / sigma)
    zero = (S == 0)[:, None]
    Sc = S[:, None]
    a = np.where(zero, np.r_[0.0, np.full(lo.size - 1, np.inf)][None, :], Sc * lo[None, :])
    hi_ = np.where(zero, np.inf, Sc * hi[None, :])
    c = np.where(zero, 0.0, Sc * val[None, :])
    b = np.minimum(hi_, m[:, None])
    inner = np.where(b > a, _moment(np.minimum(a, b), b, c, sigma), 0.0).sum(axis=1)
    inside = (m[:, None] > a) & (m[:, None] <= hi_)
    own = np.where(inside, (m[:, None] - c) ** 2, 0.0).sum(axis=1)
    out = F ** (n - 1) * own
    if n > 1:
        out = out + (n - 1) * F ** (n - 2) * inner
    return dens * out

"""The golden model's answer for each RTL unit kind, and its random stimulus.

``REFERENCES[kind](params, inputs)`` computes every output port of a unit
(:class:`finescale.hw.units.UnitSpec` ``kind`` with parameters ``params``) from
input vectors with the golden model; ``STIMULUS[kind](params, rng, n)`` draws
``n`` valid vectors for every input port.  Port arrays have a leading vector
axis; lane ports (``x``, ``codes``, ``a``, ``b``) a second, lane axis.  ``x``
holds BF16 (uint16) or FP32 (uint32) bit patterns; codes and scale codes are
uint8; the dot product's ``result`` is FP32 bits (uint32).
"""

from __future__ import annotations

import numpy as np

from finescale import golden
from finescale.golden import selectors
from finescale.golden.rounding import round_to_grid

__all__ = ["REFERENCES", "STIMULUS", "decode_x", "random_blocks", "finite_scale_codes"]


# -- input decoding and stimulus ----------------------------------------------
def decode_x(bits, input_format: str) -> np.ndarray:
    """BF16 / FP32 bit patterns -> float32 values (exact)."""
    ftype, itype = golden.formats.get_input(input_format).dtypes
    return np.ascontiguousarray(np.asarray(bits).astype(itype)).view(ftype).astype(np.float32)


def random_blocks(rng, n, block_size, input_format, scale_format) -> np.ndarray:
    """Blocks whose amax spans the scale format's range (zero, subnormal, saturating blocks too)."""
    ftype, itype = golden.formats.get_input(input_format).dtypes
    sfmt = golden.formats.get(scale_format)
    lo = max(np.log2(sfmt.min_subnormal) - 4, -133)
    hi = min(np.log2(sfmt.max * golden.BlockFormat().M) + 3, 127)
    top = rng.uniform(lo, hi, size=(n, 1))
    spread = rng.choice([0, 1, 4, 12], size=(n, 1))
    e = top - rng.uniform(0, 1, size=(n, block_size)) * spread
    x = np.exp2(np.floor(e)) * rng.uniform(1, 2, size=(n, block_size))
    x *= rng.choice([-1.0, 1.0], size=x.shape)
    x[rng.random(x.shape) < 0.05] = 0.0
    x[rng.random(n) < 0.03] = 0.0  # whole zero blocks
    x = np.clip(x, -3e38, 3e38).astype(ftype)
    return x.view(itype)


def finite_scale_codes(scale_format):
    sfmt = golden.formats.get(scale_format)
    t = sfmt.table
    return np.flatnonzero(np.isfinite(t) & (t >= 0) & ~np.signbit(t)).astype(np.uint8)


# -- golden references ----------------------------------------------------------
def _quantize(p, inputs, **over):
    x = decode_x(inputs["x"], p["input_format"])
    opts = dict(block_size=p["block_size"], scale_format=p["scale_format"], rule=p.get("rule"),
                prevent_zero=p["prevent_zero"])
    opts.update(over)
    return golden.quantize(x, **opts)


def ref_scale(p, inputs):
    return {"scale": _quantize(p, inputs).scale_codes[:, 0]}


def ref_quantizer(p, inputs):
    q = _quantize(p, inputs)
    return {"scale": q.scale_codes[:, 0], "codes": q.element_codes}


def ref_element(p, inputs):
    """The golden rounding kernel on x / S (S = 0: every element ±0), as golden.quantize does."""
    x = decode_x(inputs["x"], p["input_format"])
    s = golden.formats.get(p["scale_format"]).table[np.asarray(inputs["scale"], np.uint8)]
    efmt = golden.formats.get("e2m1")
    codes = round_to_grid(efmt, x, divisor=np.where(s == 0, 1.0, s), rows=True)
    zero = s == 0
    codes[zero] = np.where(np.signbit(x[zero]), efmt.sign_bit, 0)
    return {"codes": codes}


def stim_x(p, rng, n):
    return {"x": random_blocks(rng, n, p["block_size"], p["input_format"], p["scale_format"])}


def stim_element(p, rng, n):
    x = stim_x(p, rng, n)
    scale = rng.choice(finite_scale_codes(p["scale_format"]), n)
    # half the vectors get the scale abs-max would choose, so codes cover 0..6
    good = _quantize(dict(p, rule="abs-max", prevent_zero=False), x).scale_codes[:, 0]
    x["scale"] = np.where(rng.random(n) < 0.5, good, scale).astype(np.uint8)
    return x


def ref_dot(p, inputs):
    from finescale.golden import dotproduct
    args = (inputs["a"], inputs["b"], inputs["scale_a"], inputs["scale_b"])
    if not p["accumulate"]:
        return {"result": dotproduct.block_dot(*args, scale_format=p["scale_format"]).view(np.uint32)}
    if p["accumulate"] == "fp32":
        r = dotproduct.accumulate_fp32(*args, inputs["acc_clear"], scale_format=p["scale_format"])
        return {"result": r["result"].view(np.uint32), "nan": r["nan"].astype(np.uint8)}
    r = dotproduct.accumulate_dot(*args, inputs["acc_clear"], scale_format=p["scale_format"],
                                  headroom=p["headroom"])
    width = dotproduct.accumulator_layout(p["scale_format"], p["block_size"],
                                          headroom=p["headroom"]).width
    return {"result": r["result"].view(np.uint32), "acc_out": r["acc"] % (1 << width),
            "acc_overflow": r["overflow"].astype(np.uint8)}


def stim_dot(p, rng, n):
    """Random codes; scales mostly finite, a few NaN codes; some blocks all-zero;
    accumulate: a clear on about one block in five; FP32 accumulation: most scales in a
    narrow band of codes, so that block values are alike and their sums round and cancel."""
    codes = finite_scale_codes(p["scale_format"])
    sfmt = golden.formats.get(p["scale_format"])
    nan = np.flatnonzero(np.isnan(sfmt.table)).astype(np.uint8)
    a = rng.integers(0, 16, (n, p["block_size"])).astype(np.uint8)
    b = rng.integers(0, 16, (n, p["block_size"])).astype(np.uint8)
    a[rng.random(n) < 0.05] = 0
    sa, sb = rng.choice(codes, n), rng.choice(codes, n)
    if p["accumulate"] == "fp32":
        near = lambda: codes[np.clip(rng.integers(0, len(codes)) + rng.integers(-4, 5, n),
                                     0, len(codes) - 1)]
        band = rng.random(n) < 0.7
        sa, sb = np.where(band, near(), sa), np.where(band, near(), sb)
    sa[rng.random(n) < 0.02] = nan[0]
    out = {"a": a, "b": b, "scale_a": sa, "scale_b": sb}
    if p["accumulate"]:
        out["acc_clear"] = (rng.random(n) < 0.2).astype(np.uint8)
    return out


def ref_4o6(p, inputs):
    q = _quantize(p, inputs, rule="4o6", metric=p["metric"], error_arith="fixed",
                  error_frac_bits=p["error_frac_bits"])
    return {"scale": q.scale_codes[:, 0], "codes": q.element_codes,
            "choice": (q.choice[:, 0] == 4).astype(np.uint8)}


def ref_selector(p, inputs):
    """The golden selector; ``choice`` is the index of the M it took (candidates by M; the
    golden model names no choice for code offsets, whose clamped candidates may coincide)."""
    q = _quantize(p, inputs)
    out = {"scale": q.scale_codes[:, 0], "codes": q.element_codes}
    ms = np.array(selectors.parse(p["rule"]).ms, int)
    if ms.size:
        index = np.zeros(256, np.uint8)
        index[ms] = np.arange(len(ms))
        out["choice"] = index[q.choice[:, 0]]
    return out


REFERENCES = {"scale": ref_scale, "element": ref_element, "quantizer": ref_quantizer,
              "4o6": ref_4o6, "selector": ref_selector, "dot": ref_dot}
STIMULUS = {"scale": stim_x, "element": stim_element, "quantizer": stim_x, "4o6": stim_x,
            "selector": stim_x, "dot": stim_dot}

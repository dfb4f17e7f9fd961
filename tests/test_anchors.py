"""Anchor recipes against the anchors' own outputs (fouroversix 1.0.5, torchao 0.18.0).

``tests/data/anchors/`` holds vectors written by ``tools/anchor_vectors.py`` with the
libraries themselves.  ``faults="reproduce"`` must match every byte; the default must
match everywhere except in the blocks an independent predicate puts under a named
fault, and there it must equal the rule computed with exact rationals.
"""

import pathlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from finescale import golden

DATA = pathlib.Path(__file__).parent / "data" / "anchors"
INPUTS = np.load(DATA / "inputs.npz")
ANCHOR_RECIPES = [n for n in golden.recipes.names() if n.startswith(("fouroversix-", "torchao-"))]
FOS_NV = [n for n in ANCHOR_RECIPES if n.startswith("fouroversix-nvfp4")]

# value grids from ml_dtypes, not from finescale
E2M1 = [Fraction(float(v)) for v in np.arange(8, dtype=np.uint8).view(ml_dtypes.float4_e2m1fn)]
E4M3 = [Fraction(float(v)) for v in np.arange(127, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)]
F32_TINY = Fraction(2) ** -126


def _rne(q: Fraction, grid) -> int:
    """Code (= index) of q >= 0 rounded to nearest on ``grid``, ties to the even code,
    saturating."""
    if q >= grid[-1]:
        return len(grid) - 1
    hi = next(i for i, v in enumerate(grid) if v >= q)
    if grid[hi] == q or hi == 0:
        return hi
    mid = (grid[hi - 1] + grid[hi]) / 2
    if q != mid:
        return hi if q > mid else hi - 1
    return hi - 1 if (hi - 1) % 2 == 0 else hi


def _element(x: float, divisor: Fraction, zero_sign: str) -> int:
    code = _rne(abs(Fraction(x)) / divisor, E2M1)
    neg = np.signbit(x) if zero_sign == "x" or code else (x < 0)
    return code | (8 if neg else 0)


def _load(name):
    ref = np.load(DATA / f"{name}.npz")
    return {c: (ref[f"{c}/codes"], ref[f"{c}/scales"], ref[f"{c}/dq"]) for c in INPUTS.files}


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))
    return a == b


def _block_mismatch(q, ref, bs):
    codes, scales, dq = ref
    el = ~(_same_bits(q.element_codes, codes) & _same_bits(q.dequantize(np.float32), dq))
    return el.reshape(el.shape[0], -1, bs).any(-1) | ~_same_bits(q.scale_codes, scales)


# --- the corner cases take the paths they are named after ---------------------------------

def test_corner_cases_take_their_paths():
    x = INPUTS["e2m1-ties"].astype(np.float64).reshape(-1, 16)
    s = np.abs(x).max(1, keepdims=True) / 6
    assert set(np.unique(np.abs(x) / s)) <= {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0}
    mids = {(a + b) / 2 for a, b in zip(E4M3[:-1], E4M3[1:])}
    x = INPUTS["e4m3-ties"].reshape(-1, 16)
    amax6 = [Fraction(float(v)) / 6 for v in np.abs(x).max(1)]
    assert sum(a in mids for a in amax6) == len(amax6) - 1  # all but the block of 2688
    x = INPUTS["amax-6x2k"].reshape(-1, 16)
    amax = np.abs(x).max(1)
    base = np.ldexp(np.float32(6), np.round(np.log2(amax / 6)).astype(int)).astype(np.float32)
    ulps = (amax.view(np.int32) - base.view(np.int32))
    assert set(np.unique(ulps)) == {-1, 0, 1}
    assert not INPUTS["all-zero"].any()
    z = INPUTS["zeros-outliers"]
    assert (z[::2, 16:48] == 0).all() and np.signbit(z[1::4, 48:64]).all()
    sub = INPUTS["f32-subnormal"]
    assert ((sub != 0) & (np.abs(sub) < np.finfo(np.float32).tiny)).mean() > 0.2
    rows = INPUTS["normal-rows"]
    assert np.abs(rows[0]).max() < 1e-5 < 1e2 < np.abs(rows[-1]).max()


# --- faults="reproduce": every byte ------------------------------------------------------

@pytest.mark.parametrize("name", ANCHOR_RECIPES)
def test_reproduce_matches_the_anchor_bit_for_bit(name):
    for case, (codes, scales, dq) in _load(name).items():
        with np.errstate(all="ignore"):
            q = golden.quantize(INPUTS[case], recipe=name, faults="reproduce")
            got = q.dequantize(np.float32)
        assert _same_bits(q.element_codes, codes).all(), case
        assert _same_bits(q.scale_codes, scales).all(), case
        assert _same_bits(got, dq).all(), case


def test_vectors_name_their_versions():
    for name in ANCHOR_RECIPES:
        lib = name.split("-")[0]
        version = str(np.load(DATA / f"{name}.npz")["version"])
        assert version == {"fouroversix": "fouroversix 1.0.5", "torchao": "torchao 0.18.0"}[lib]
        assert golden.recipes.RECIPES[name]["anchor"] == version.replace(" ", "-")


# --- the default: the anchor except at its named faults, where it is the exact rule -------

def _fault_blocks(name, x, ref):
    """Blocks under a named fault, from x and the anchor's own output (not finescale's)."""
    codes, scales, _ = ref
    rec = golden.recipes.RECIPES[name]
    bs, M = rec["block_size"], Fraction(rec.get("M") or 6)
    xb = x.reshape(x.shape[0], -1, bs)
    amax = np.abs(xb).max(-1)
    if name.startswith("fouroversix-nvfp4"):
        t = Fraction(float(np.abs(x).max()))
        bound = Fraction(rec.get("scale_bound") or 448)
        if t and t < bound * M * F32_TINY:  # tensor-overflow: 1 / E subnormal
            return np.ones(amax.shape, bool)
        # e2m1-overflow: a scaled element >= 7 under either 4o6 candidate
        out = np.zeros(amax.shape, bool)
        for i, j in zip(*np.nonzero(amax)):
            q6 = Fraction(float(amax[i, j])) * bound / t
            for s in {E4M3[_rne(q6, E4M3)], E4M3[_rne(q6 * Fraction(3, 2), E4M3)]}:
                out[i, j] |= s == 0 or q6 * M / s >= 7 * (1 - Fraction(1, 2**20))  # float32 q
        return out
    if name.startswith("fouroversix-mxfp4"):  # mx-subnormal-ceil, mx-zero-block
        return np.array([[Fraction(float(a)) / M < F32_TINY for a in r] for r in amax])
    if name == "torchao-mxfp4-rceil":  # rceil-log2, mx-min-scale
        exact = np.array([[_ceil_log2(Fraction(float(a)) / 6) for a in r] for r in amax])
        return (scales.astype(int) - 127 != np.clip(exact, -127, 127)) | (scales == 0)
    if name.startswith("torchao-mxfp4"):  # mx-min-scale
        return scales == 0
    if name == "torchao-nvfp4":  # zero-tensor, tensor-overflow: g subnormal
        return np.full(amax.shape, Fraction(float(np.abs(x).max())) / 2688 < F32_TINY)
    return np.zeros(amax.shape, bool)


def _ceil_log2(a: Fraction) -> int:
    if a == 0:
        return -1000
    k = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** k < a:
        k += 1
    while Fraction(2) ** (k - 1) >= a:
        k -= 1
    return k


def _floor_log2(a: Fraction) -> int:
    if a == 0:
        return -1000
    k = _ceil_log2(a)
    return k if Fraction(2) ** k == a else k - 1


def _rule(name, x, q, i, j):
    """The recipe's rule for block (i, j), exactly: (scale code or None, element codes)."""
    rec = golden.recipes.RECIPES[name]
    bs, M = rec["block_size"], Fraction(rec.get("M") or 6)
    blk = x[i, j * bs:(j + 1) * bs]
    amax = max(Fraction(float(abs(v))) for v in blk)
    zs = rec.get("zero_sign", "x")
    if rec["scale_format"] == "e8m0":
        if rec.get("scale_rounding") == "ceil":
            e = _ceil_log2(amax / M)
        else:  # floor of amax / M
            e = _floor_log2(amax / M)
        e = int(np.clip(e, -127, 127))
        s = Fraction(2) ** e
        return e + 127, [_element(float(v), s, zs) for v in blk]
    t = Fraction(float(np.abs(x).max()))
    bound = Fraction(rec.get("scale_bound") or 448)
    g = t / (bound * 6) if rec.get("rule") == "4o6" else t / (bound * M)
    if rec.get("hierarchical") != "tensor" or not g:
        g = Fraction(1)
    q6 = amax / M / g
    lo = Fraction(rec["scale_min"]) if rec.get("scale_min") else Fraction(0)
    if rec.get("rule") == "4o6":  # the choice is the anchor's float32 error comparison
        s = Fraction(float(q.scale_values[i, j]))
        assert s in (E4M3[_rne(q6, E4M3)], E4M3[_rne(q6 * Fraction(3, 2), E4M3)])
        return None, [_element(float(v), g * s, zs) if s else (0 if zs != "x" or
                      not np.signbit(v) else 8) for v in blk]
    code = _rne(max(q6, lo), E4M3)
    s = E4M3[code]
    return code, [_element(float(v), g * s, zs) if s else 0 for v in blk]


@pytest.mark.parametrize("name", ANCHOR_RECIPES)
def test_default_is_the_anchor_except_at_named_faults_where_it_is_the_rule(name):
    bs = golden.recipes.RECIPES[name]["block_size"]
    compared = 0
    for case, ref in _load(name).items():
        x = INPUTS[case]
        q = golden.quantize(x, recipe=name)
        bad = _block_mismatch(q, ref, bs)
        fault = _fault_blocks(name, x, ref)
        assert not (bad & ~fault).any(), f"{case}: mismatch outside the named faults"
        for i, j in zip(*np.nonzero(bad)):
            scode, ecodes = _rule(name, x, q, i, j)
            if scode is not None:
                assert q.scale_codes[i, j] == scode, (case, i, j)
            assert list(q.element_codes[i, j * bs:(j + 1) * bs]) == ecodes, (case, i, j)
        compared += x.size
    assert compared == len(INPUTS.files) * 8192


def test_named_faults_are_exercised():
    """Every fault the docs name shows up in the vectors (the default departs there)."""
    for name, case in [("fouroversix-nvfp4", "normal-rows"), ("fouroversix-nvfp4", "f32-subnormal"),
                       ("fouroversix-mxfp4", "all-zero"), ("fouroversix-mxfp4", "f32-subnormal"),
                       ("torchao-mxfp4-floor", "f32-subnormal"), ("torchao-mxfp4-rceil", "amax-6x2k"),
                       ("torchao-nvfp4", "all-zero"), ("torchao-nvfp4", "f32-subnormal")]:
        ref = _load(name)[case]
        q = golden.quantize(INPUTS[case], recipe=name)
        assert _block_mismatch(q, ref, golden.recipes.RECIPES[name]["block_size"]).any(), name


# --- the reproducers and the options one by one ----------------------------------

def test_scale_min_lifts_small_block_scales():
    x = np.full((1, 16), 0.01, np.float32)
    assert golden.quantize(x, recipe="paper-e4m3", arith="f32").scale_values[0, 0] == 2.0 ** -9
    assert golden.quantize(x, recipe="torchao-nvfp4-nopts").scale_values[0, 0] == 2.0 ** -6
    q = golden.quantize(x, recipe="paper-e4m3", arith="f32", scale_min=2.0 ** -6)
    assert q.scale_values[0, 0] == 2.0 ** -6


def test_encode_scale_moves_an_e4m3_tie():
    x = np.zeros((1, 32), np.float32)
    x[0, 0], x[0, 16] = 1536, 0.0234375
    # 0.0234375 / 6 * 2688 / 1536 = 0.0068359375 lies halfway between E4M3 codes 3 and 4
    assert Fraction(0.0234375) / 6 * 2688 / 1536 == (E4M3[3] + E4M3[4]) / 2
    assert golden.quantize(x, recipe="nvfp4").scale_codes[0, 1] == 3
    assert golden.quantize(x, recipe="fouroversix-nvfp4").scale_codes[0, 1] == 4


def test_chain_order_is_torchaos_reciprocal_of_g_then_divide_by_s():
    rng = np.random.default_rng(3)
    x = (rng.normal(0, 1, (64, 64)) * np.exp(rng.normal(0, 3, (64, 1)))).astype(np.float32)
    q = golden.quantize(x, recipe="torchao-nvfp4")
    g = np.float32(np.abs(x).max()) / np.float32(2688)
    s = q.scale_values.astype(np.float32).repeat(16, 1)
    r = (np.float32(1) / g) / s
    scaled = np.clip(x * r, -6, 6).astype(ml_dtypes.float4_e2m1fn)  # ml_dtypes' RNE cast
    assert (q.element_codes & 7 == scaled.view(np.uint8) & 7).all()


def test_zero_sign_policies():
    x = np.array([[-1e-6, -0.0, 0.0, 6.0] + [0.0] * 12], np.float32)
    opts = dict(recipe="paper-e4m3", arith="f32")
    assert list(golden.quantize(x, **opts).element_codes[0, :3]) == [8, 8, 0]
    assert list(golden.quantize(x, **opts, zero_sign="positive").element_codes[0, :3]) == [0, 0, 0]
    assert list(golden.quantize(x, **opts, zero_sign="scaled").element_codes[0, :3]) == [8, 0, 0]


def test_f32_4o6_keeps_ties_at_6_and_reports_its_choice():
    x = np.zeros((1, 16), np.float32)
    x[0, 0] = 6.0
    q = golden.quantize(x, recipe="fouroversix-nvfp4-4o6-mse")
    assert q.choice[0, 0] == 6  # both candidates are exact: equal errors keep 6


def test_dequant_orders():
    x = np.array([[3.0, -0.5] + [0.0] * 14], np.float32)
    for name in ANCHOR_RECIPES:
        q = golden.quantize(np.tile(x, (1, 2)), recipe=name)
        assert q.dequant == golden.recipes.RECIPES[name].get("dequant", "exact")
        assert q.dequantize(np.float32)[0, 0] == 3.0


@pytest.mark.parametrize("bad, match", [
    (dict(recipe="nvfp4", f32_order="chain"), "float32 options"),
    (dict(recipe="paper-e4m3", arith="f32", tensor_scale="encode"), "needs hierarchical='tensor'"),
    (dict(recipe="nvfp4", faults="reproduce"), "needs an anchor recipe"),
    (dict(recipe="torchao-nvfp4", faults="sometimes"), "unknown faults"),
    (dict(recipe="torchao-nvfp4", dequant="late"), "unknown dequant"),
    (dict(recipe="torchao-nvfp4", zero_sign="minus"), "unknown zero_sign"),
    (dict(recipe="torchao-nvfp4", anchor="numpy-1"), "unknown anchor"),
    (dict(recipe="paper-e4m3-bf", arith="f32"), "not 'brute-force'"),
])
def test_bad_anchor_options_are_named(bad, match):
    x = np.ones((2, 32), np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match=match):
        golden.quantize(x, **bad)
    assert (x == before).all()


@pytest.mark.slow
def test_vectors_regenerate_with_the_installed_anchors(tmp_path):
    pytest.importorskip("fouroversix")
    pytest.importorskip("torchao")
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "anchor_vectors", pathlib.Path(__file__).parents[1] / "tools" / "anchor_vectors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--out", str(tmp_path)])
    for name in ANCHOR_RECIPES:
        new, old = np.load(tmp_path / f"{name}.npz"), np.load(DATA / f"{name}.npz")
        for k in old.files:
            assert _same_bits(new[k], old[k]).all() if k != "version" else new[k] == old[k]


# --- TransformerEngine's 4over6 reference (commit 0a6e0d6, read, not run) -----------------

def _te_reference(x, bound, fast_math):
    """TE's published 4over6 reference formulas, one numpy float32 step each:
    (element codes, scale codes), faults included."""
    f, fmax = np.float32, np.finfo(np.float32).max
    grid = np.array([float(v) for v in E2M1], np.float32)
    xb = x.reshape(-1, 16).astype(f)
    vec_max = np.abs(xb).max(1, keepdims=True)
    amax = f(np.abs(x).max())
    enc_g = min(f(f(bound) * f(6)) / amax if amax else f(1), fmax)
    dec_g = f(1) / f(enc_g)
    base = (vec_max / f(6)).astype(f) * f(enc_g)
    out = []
    for dsc in (base, (base * f(1.5)).astype(f)):
        s = np.clip(dsc, -448, 448).astype(ml_dtypes.float8_e4m3fn)  # ml_dtypes' RNE cast
        sf = s.astype(f)
        with np.errstate(divide="ignore"):
            encs = np.minimum((f(1) / (sf * dec_g).astype(f)).astype(f), fmax)
        q = np.clip((xb * encs).astype(f), -6, 6)
        # cast_to_fp4x2's brackets: nearest, ties to the even code; -0 only for q < 0
        k = np.abs(np.abs(q)[..., None] - grid).argmin(-1)  # the lower code on a tie
        tie = np.isin(np.abs(q), [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
        k = np.where(tie & (k % 2 == 1), k + 1, k)
        codes = (k | np.where(q < 0, 8, 0)).astype(np.uint8)
        v = grid[k] * np.where(q < 0, -1, 1)
        if fast_math:
            d = (v * sf).astype(f) - (xb * f(enc_g)).astype(f)
        else:
            d = (((v * sf).astype(f) * amax).astype(f) / f(f(6) * f(bound))).astype(f) - xb
        err = np.zeros(len(xb), f)
        for i in range(16):
            err = (err + np.abs(d[:, i])).astype(f)
        out.append((codes, s.view(np.uint8)[:, 0], err))
    (c6, s6, e6), (c4, s4, e4) = out
    take4 = e4 < e6
    return np.where(take4[:, None], c4, c6).reshape(x.shape), np.where(take4, s4, s6)


@pytest.mark.parametrize("name, bound, fast", [
    ("te-nvfp4-4o6", 448, False), ("te-nvfp4-4o6-256", 256, False),
    ("te-nvfp4-4o6-fp16", 448, True), ("te-nvfp4-4o6-fp16-256", 256, True)])
def test_te_recipes_follow_the_published_reference(name, bound, fast):
    for case in ("normal-1", "normal-rows", "e2m1-ties", "e4m3-ties", "zeros-outliers"):
        x = INPUTS[case]
        codes, scales = _te_reference(x, bound, fast)
        q = golden.quantize(x, recipe=name, faults="reproduce")
        assert (q.scale_codes.reshape(-1) == scales).all(), case
        assert (q.element_codes == codes).all(), case
        d = golden.quantize(x, recipe=name)  # default: zero-scale blocks are 0, not x * FLT_MAX
        zero = np.repeat(d.scale_values == 0, 16, axis=1)
        assert (d.element_codes[~zero] == codes[~zero]).all(), case
        assert (d.element_codes[zero] & 7 == 0).all(), case

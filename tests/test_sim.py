"""The cocotb regression: stimulus and scoreboard checks, a quick regression of every default
unit, and the regression of a given (hand-edited) Verilog file through its sidecar."""

from __future__ import annotations

import argparse
import shutil

import ml_dtypes
import numpy as np
import pytest

from finescale import golden
from finescale.hw import emit
from finescale.hw.units import UnitSpec
from finescale.cli import regress as cli_regress
from finescale.sim import coverage, regress, runner, scoreboard, stimulus, units


def _pick(unit, which="default", **params):
    """The first spec of ``unit`` in the matrix whose parameters include ``params``."""
    for spec in units.matrix(which):
        if spec.unit == unit and params.items() <= spec.params.items():
            return spec
    raise LookupError(f"no {unit} unit with {params} in the {which} matrix")


#: the quick regression pytest runs: one parameter set of every unit kind (plus the
#: mx scale path and a pipelined unit); `finescale regress --quick` runs the whole matrix
QUICK = [_pick(u, scale_format="e4m3", block_size=4 if u == "dot" else 16)
         for u in sorted({s.unit for s in units.matrix("default")})]
QUICK += [_pick("scale", scale_format="e8m0", block_size=4),
          _pick("quantizer", "all", scale_format="ue5m3", block_size=4, pipelined=True),
          # the dot product in beats (combinational, then pipelined) and accumulating (wide acc)
          _pick("dot", scale_format="e4m3", block_size=16, lanes=4),
          _pick("dot", "all", scale_format="ue5m3", block_size=8, lanes=4, stages=4),
          _pick("dot", scale_format="e8m0", block_size=16, accumulate="kulisch"),
          _pick("dot", scale_format="e8m0", block_size=4, accumulate="fp32")]


# --- stimulus and scoreboard, no simulator ---------------------------------------------------

@pytest.mark.parametrize("kind", stimulus.KINDS)
def test_random_blocks_are_finite_and_seeded(kind):
    a = stimulus.random_blocks(np.random.default_rng(3), kind, 50, 16)
    b = stimulus.random_blocks(np.random.default_rng(3), kind, 50, 16)
    assert a.shape == (50, 16) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    bits = stimulus.to_bits(a)  # exactly representable: the bits round-trip
    np.testing.assert_array_equal(bits.view(ml_dtypes.bfloat16).astype(np.float64), a)


def test_ties_are_exact_element_midpoints():
    x = stimulus.random_blocks(np.random.default_rng(0), "ties", 200, 16)
    s = golden.quantize(x.astype(ml_dtypes.bfloat16), scale_format="e4m3", block_size=16).scale_values
    ratio = np.abs(x) / s
    assert np.isin(ratio, np.r_[stimulus.MIDPOINTS, 6.0]).all()


def test_subnormal_blocks_are_bf16_subnormals():
    bits = stimulus.to_bits(stimulus.random_blocks(np.random.default_rng(0), "subnormal", 20, 16))
    exp = (bits >> 7) & 0xFF
    assert (exp == 0).all() and ((bits & 0x7F) != 0).any()


def test_scale_sweep_hits_every_e4m3_scale_code():
    x = stimulus.scale_sweep(np.random.default_rng(0), 16, scale_format="e4m3")
    codes = golden.quantize(x.astype(ml_dtypes.bfloat16), scale_format="e4m3", block_size=16).scale_codes
    want, _ = stimulus.scale_values(golden.get("e4m3"))
    assert set(want) <= set(np.unique(codes))


def test_element_and_product_sweeps_are_exhaustive():
    e = stimulus.element_sweep(16)
    assert len(np.unique(e)) == 65536 - 256  # all but the 256 Inf / NaN patterns
    a, b = stimulus.product_sweep(16)
    assert len(set(zip(a.ravel(), b.ravel()))) == 256


def test_scale_units_get_every_bf16_amax():
    """The cocotb stimulus of every BF16 scale unit holds the exhaustive amax sweep."""
    spec = _pick("scale", scale_format="e8m0", block_size=4)
    x = stimulus.for_spec(spec, np.random.default_rng(0), 10)["x"]
    amax = np.abs(x.view(ml_dtypes.bfloat16).astype(np.float64)).max(axis=1)
    every = np.arange(0x7F80, dtype=np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    assert np.isin(every, amax).all()


def test_overflow_run_wraps_a_small_accumulator():
    spec = UnitSpec("dot", dict(scale_format="e4m3", block_size=4, accumulate=True,
                                      headroom=2))
    run = stimulus.overflow_run(spec.params)
    flag = spec.reference(run)["acc_overflow"]
    assert flag[0] == 0 and flag[-1] == 1  # a clear, then the sum wraps within the run
    assert stimulus.overflow_run(_pick("dot", accumulate="kulisch").params) is None  # headroom 16


def test_coverage_goals_are_derived_from_the_variant():
    dot = {f: coverage.goals(_pick("dot", scale_format=f, block_size=4), {"result"})
           for f in ("e4m3", "e8m0")}
    assert dot["e4m3"]["result_classes"] == ["nan", "normal", "zero"]  # no inf, no subnormal
    assert dot["e8m0"]["result_classes"] == ["+inf", "-inf", "nan", "normal", "subnormal",
                                             "zero"]
    small = UnitSpec("dot", dict(block_size=4, accumulate=True, headroom=2))
    g = coverage.goals(small, {"result", "acc_out", "acc_overflow"})
    assert g["acc_overflow"] == [0, 1] and g["clear"] == ["after_nonzero"]
    g = coverage.goals(_pick("4o6", scale_format="e4m3"), {"scale", "codes", "choice"})
    assert g["ties"] == ["tie"] and "4@subnormal" in g["choice_by_class"]
    assert "4@zero" not in g["choice_by_class"] and "6@zero" in g["choice_by_class"]
    g = coverage.goals(UnitSpec("selector", dict(rule="kc-m6_4_3-up")), {"scale", "choice"})
    assert g["choice"] == [0, 1, 2] and "ties" not in g  # every candidate, by index


def test_fouroversix_tie_is_an_equal_error_of_different_candidates():
    """6, 3, 0, 1.5: exact under S6 = 1 and S4 = 1.5 (errors 0 and 0, a tie); with 1 instead
    of 1.5 only S6 is exact."""
    spec = _pick("4o6", scale_format="e4m3", block_size=4)
    x = stimulus.to_bits(np.array([[6.0, 3.0, 0.0, 1.5], [6.0, 3.0, 0.0, 1.0]]))
    ties = coverage.fouroversix_ties(spec, x)
    assert ties.tolist() == [True, False]
    assert spec.reference({"x": x})["choice"].tolist() == [0, 0]  # the tie keeps 6


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(0)
    for width in (4, 8, 16, 32):
        v = rng.integers(0, 1 << width, (100, 16), dtype=np.uint64)
        words = scoreboard.pack(v, width)
        assert words[0] == sum(int(v[0, i]) << (width * i) for i in range(16))
        np.testing.assert_array_equal(scoreboard.unpack(words, 16, width), v)


def test_scoreboard_reports_a_mismatch_with_inputs_and_seed():
    spec = _pick("scale")
    inputs = spec.random_inputs(np.random.default_rng(0), 20)
    exp = spec.reference(inputs)["scale"].astype(np.int64)
    bad = exp.copy()
    bad[7] ^= 1
    res = scoreboard.check(spec, inputs, {"scale": bad.tolist()}, {"scale": 8}, seed=42)
    assert res.mismatches == 1 and "vector 7" in res.first[0] and "seed 42" in res.first[0]
    ok = scoreboard.check(spec, inputs, {"scale": exp.tolist()}, {"scale": 8})
    assert ok.ok and ok.vectors == 20


def test_for_spec_covers_the_goals_of_every_default_unit():
    for spec in QUICK + [UnitSpec("dot", dict(block_size=4, accumulate=True,
                                                    headroom=2))]:
        inputs = stimulus.for_spec(spec, np.random.default_rng(1), 300)
        exp = spec.reference(inputs)
        goal = coverage.goals(spec, set(exp))
        assert not coverage.missed(coverage.measure(spec, inputs, exp), goal), spec.name


def test_fp32_corners_and_goals_follow_the_scale_format():
    """E8M0 expresses every corner sequence but negative scales and reaches inf and subnormal
    totals; E4M3 neither, nor the sticky ties (its block values lie within 2**-20 .. 2**28)."""
    e8, e4 = stimulus.fp32_corners("e8m0", 4), stimulus.fp32_corners("e4m3", 4)
    starts = {f: int(c["acc_clear"].sum()) for f, c in (("e8m0", e8), ("e4m3", e4))}
    assert starts["e8m0"] == len(stimulus.FP32_CORNERS) - 1 > starts["e4m3"] == 7
    assert (e8["a"][:, 1:] == 0).all() and e8["acc_clear"][0] == 1
    goal = {f: coverage.goals(_pick("dot", scale_format=f, block_size=4, accumulate="fp32"),
                              {"result", "nan"})["result_classes"] for f in ("e8m0", "e4m3")}
    assert goal["e8m0"] == ["+inf", "-inf", "nan", "normal", "subnormal", "zero"]
    assert goal["e4m3"] == ["nan", "normal", "zero"]


def test_select_units_by_kind_or_whole_name():
    specs = units.matrix("default")
    assert {s.unit for s in regress.select(specs, ["scale"])} == {"scale"}
    name = "fs_scale_e4m3_b16_bf16_absmax"  # a prefix of the _pz unit's name: not selected
    assert [s.name for s in regress.select(specs, [name])] == [name]
    with pytest.raises(ValueError, match="no unit matches"):
        regress.select(specs, ["nonesuch"])
    with pytest.raises(ValueError, match="no unit matches"):
        regress.select(specs, ["fs_scale_e4m3"])  # fragments are not names


def test_coverage_goals_and_misses():
    spec = _pick("quantizer")
    goal = {"element_codes": list(range(16)), "choice": [0, 1]}
    cov = coverage.measure(spec, {}, {"codes": np.arange(15).reshape(-1, 5), "choice": [0, 0]})
    assert coverage.missed(cov, goal) == {"element_codes": [15], "choice": [1]}


# --- the simulator ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("sim_build")


@pytest.mark.parametrize("spec", QUICK, ids=lambda s: s.name)
def test_quick_regression(spec, build_root):
    rep = runner.run_unit(spec, vectors=1000, build_root=build_root)
    assert rep["mismatches"] == 0, "\n".join(rep["first_mismatches"])
    assert not rep["missed"] and not rep["protocol_errors"], rep
    assert rep["passed"] and rep["vectors"] >= 1000
    assert rep["resets"] == int(spec.clocked)  # clocked units get (and survive) a reset


def _regress_cli(*argv):
    parser = argparse.ArgumentParser()
    cli_regress.register(parser.add_subparsers())
    args = parser.parse_args(["regress", *argv])
    return args.func(args)


def test_regress_given_verilog_through_its_sidecar(tmp_path, build_root, capsys):
    """The emitted file passes; the same file with lane 0's sign bit tied low fails (exit 1),
    printing the first mismatches with the seed; a file without a sidecar is refused."""
    em = emit.emit(_pick("element", scale_format="e4m3", block_size=4), tmp_path / "good")
    common = ["--vectors", "300", "--build-dir", str(build_root), "--out", str(tmp_path / "o")]
    assert _regress_cli("--verilog", str(em.path), *common) == 0
    assert em.sha256 in capsys.readouterr().out
    bad = tmp_path / "bad" / em.path.name
    bad.parent.mkdir()
    text = em.path.read_text()
    assert text.count("{ x[15], ") == 1
    bad.write_text(text.replace("{ x[15], ", "{ 1'b0, "))
    shutil.copy(em.path.with_suffix(".json"), bad.with_suffix(".json"))
    assert _regress_cli("--verilog", str(bad), *common) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "expected" in out and "seed 1" in out
    bad.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="no sidecar"):
        _regress_cli("--verilog", str(bad), *common)


@pytest.mark.slow
def test_full_regression(tmp_path):
    rows, _ = regress.regress(mode="full", build_root=tmp_path / "build", out=tmp_path / "out",
                              progress=False)
    failed = [r for r in rows if r["status"] != "PASS"]
    assert not failed, failed

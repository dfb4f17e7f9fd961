"""The numerical study (finescale.study.mse): the papers' qualitative claims, measured.

Claims are tested as statistics: a difference counts when it exceeds Z
standard errors of the block-mean MSE (Z = 4; with ~100 comparisons a false
alarm has probability ~1e-3).  Expectations come from independent sampling or
the analytic model, never from pasted numbers.
"""

import numpy as np
import pytest

from finescale import cli
from finescale.study import mse as study, theory

Z = 4.0
BLOCKS = (4, 8, 16, 32)
SIGMAS = (0.001, 0.002, 0.003, 0.007, 0.01, 0.015, 0.04)


@pytest.fixture(scope="module")
def rows():
    cfg = study.StudyConfig(sigmas=SIGMAS, block_sizes=BLOCKS, nblocks=10_000, seed=1,
                            theory=False)
    return study.run_study(cfg, progress=False)


def get(rows, rule, sigma, block, field="mse"):
    (r,) = [r for r in rows if r["rule"] == rule and r["sigma"] == sigma
            and r["block_size"] == block]
    return r[field]


def larger(rows, rule, s, a, b):
    """MSE of block a exceeds MSE of block b by more than Z standard errors."""
    d = get(rows, rule, s, a) - get(rows, rule, s, b)
    return d > Z * np.hypot(get(rows, rule, s, a, "mse_se"), get(rows, rule, s, b, "mse_se"))


@pytest.mark.parametrize("sigma", [0.007, 0.01])
def test_absmax_inverts_in_region_b(rows, sigma):
    assert larger(rows, "abs-max", sigma, 4, 32)
    assert larger(rows, "pz", sigma, 4, 32)  # prevent-zero does not cure B


def test_pz_removes_region_a_spike(rows):
    small = [s for s in SIGMAS if s <= 0.01]
    absmax = [get(rows, "abs-max", s, 32) for s in small]
    pz = [get(rows, "pz", s, 32) for s in small]
    assert np.any(np.diff(absmax) < 0), "abs-max should fall after the region-A spike"
    assert np.all(np.diff(pz) > 0), "PZ MSE should grow with sigma through region A"
    for s in small:
        for b in BLOCKS:
            assert get(rows, "pz", s, b) <= get(rows, "abs-max", s, b)


@pytest.mark.parametrize("rule, sigma", [("pz-4o6", 0.007), ("pz-4o6", 0.01), ("pz-4o6", 0.015),
                                           ("4o6", 0.01), ("4o6", 0.015)])
def test_4o6_removes_inversion_in_b(rows, rule, sigma):
    """4o6 without PZ keeps region A's zero scales (the paper's Fig. 1c), which reach
    sigma ~ 0.007 at block 4 before the inversion clears; with PZ it is gone throughout B."""
    for i, a in enumerate(BLOCKS):
        for b in BLOCKS[i + 1:]:
            assert not larger(rows, rule, sigma, a, b), (a, b)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_brute_force_monotone_in_block_size(rows, sigma):
    for i, a in enumerate(BLOCKS):
        for b in BLOCKS[i + 1:]:
            assert not larger(rows, "bf", sigma, a, b), (a, b)


def test_brute_force_is_optimal_per_block():
    """On the same blocks, brute force's block error is <= every other rule's, block by block."""
    for sigma in (0.002, 0.008, 0.03):
        for b in (4, 32):
            x = study.sample(0, sigma, b, 2000, seed=7)
            err = {}
            for label in study.PAPER_RULES + ("4o6-fixed",):
                q = study.parse_rule(label).quantize(x, b)
                err[label] = ((x.astype(np.float64) - q.dequantize(np.float64)) ** 2).sum(1)
            for label, e in err.items():
                assert np.all(err["bf"] <= e * (1 + 1e-12)), (sigma, b, label)


def test_regions_detected(rows):
    reg = study.detect_regions(rows)
    lab = dict(zip(reg.sigmas.tolist(), reg.labels))
    assert lab[0.001] == lab[0.002] == "A"
    assert lab[0.007] == lab[0.01] == "B"
    assert lab[0.04] == "C"
    assert [r[0] for r in reg.ranges] == ["A", "B", "C"]


def test_seeds_agree_within_band():
    """Independent seeds give MSEs within Z combined standard errors."""
    for sigma in (0.003, 0.01, 0.04):
        cfg = dict(sigmas=(sigma,), block_sizes=(4, 32), nblocks=5000, theory=False,
                   rules=(study.parse_rule("pz"), study.parse_rule("4o6")))
        a = study.run_study(study.StudyConfig(seed=1, **cfg), progress=False)
        b = study.run_study(study.StudyConfig(seed=2, **cfg), progress=False)
        for ra, rb in zip(a, b):
            for f in ("mse", "clip_mse"):
                se = np.hypot(ra[f.replace("mse", "se") if f == "clip_mse" else "mse_se"],
                              rb["clip_se" if f == "clip_mse" else "mse_se"])
                assert abs(ra[f] - rb[f]) <= Z * se, (sigma, ra["rule"], f)
            assert ra["mse"] != rb["mse"]  # the seed matters


@pytest.mark.parametrize("rule", ["abs-max", "pz"])
@pytest.mark.parametrize("sigma", [0.001, 0.003, 0.01, 0.04])
def test_theory_agrees_with_sampling(rule, sigma):
    m = study.parse_rule(rule)
    for b in (4, 32):
        x = study.sample(3, sigma, b, 20_000, seed=5)
        stats, _ = study.measure(x, m, b)
        for field, se, clip in (("mse", "mse_se", False), ("clip_mse", "clip_se", True)):
            th = theory.expected_mse(sigma, b, m.recipe, clip=clip, **m.options)
            assert abs(stats[field] - th) <= Z * stats[se] + 1e-30, (b, field)


def test_theory_other_scale_formats():
    """UE5M3 and E8M0 (mx) scales: the analytic model follows the recipe's format."""
    for opts in (dict(scale_format="ue5m3"), dict(scale_format="e8m0", rule="mx")):
        m = study.StudyRule("x", "paper-e4m3", opts)
        x = study.sample(0, 0.01, 8, 20_000, seed=9)
        stats, _ = study.measure(x, m, 8)
        th = theory.expected_mse(0.01, 8, "paper-e4m3", **opts)
        assert abs(stats["mse"] - th) <= Z * stats["mse_se"]


def test_theory_rejects_unsupported():
    with pytest.raises(ValueError, match="rule='4o6'"):
        theory.expected_mse(0.01, 16, "paper-e4m3-4o6")
    with pytest.raises(ValueError, match="sigma"):
        theory.expected_mse(-1.0, 16, "paper-e4m3")


def test_parse_method():
    m = study.parse_rule("paper-ue5m3-4o6:error_arith=float:metric=mae")
    assert m.options == {"error_arith": "float", "metric": "mae"}
    with pytest.raises(ValueError, match="unknown rule"):
        study.parse_rule("nope")
    with pytest.raises(ValueError, match="option=value"):
        study.parse_rule("paper-e4m3:prevent_zero")
    with pytest.raises(ValueError, match="unknown error_arith"):
        study.parse_rule("paper-e4m3-4o6:error_arith=wrong")


def test_cli_quick_writes_csv_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", {"study": "finescale.cli.study"})
    out = tmp_path / "study"
    rc = cli.main(["study", "--quick", "--sigmas", "0.001", "0.04", "5", "--blocks", "400",
                   "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "region" in text and "s\n" in text
    csv = (out / "study.csv").read_text().splitlines()
    assert csv[0].startswith("sigma,block_size,rule,scale_format,mse")
    assert len(csv) == 1 + 5 * 4 * 5
    for name in ["mse", "clip_mse", "theory"] + [f"hist_{m}" for m in study.PAPER_RULES]:
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
    assert (out / "study.json").stat().st_size > 0


def test_cli_scale_format_and_bad_method(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", {"study": "finescale.cli.study"})
    rc = cli.main(["study", "--sigmas", "0.005", "0.02", "2", "--blocks", "200",
                   "--block-sizes", "8", "--rules", "abs-max", "bf", "--scale-format", "ue5m3",
                   "--out", str(tmp_path)])
    assert rc == 0
    assert ",ue5m3," in (tmp_path / "study.csv").read_text()
    rc = cli.main(["study", "--rules", "nope", "--out", str(tmp_path)])
    assert rc == 1 and "unknown rule" in capsys.readouterr().err

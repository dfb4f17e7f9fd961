"""finescale validate: the study helpers on synthetic weights and a tiny random model; real models are slow."""

import argparse

import numpy as np
import pytest

from finescale import golden
from finescale.cli import validate as cli_validate
from finescale.study import validate


def parse(argv):
    p = argparse.ArgumentParser()
    cli_validate.register(p.add_subparsers(dest="command"))
    return p.parse_args(["validate"] + argv)


def test_defaults_and_bad_arguments():
    a = parse([])
    assert a.block_sizes == [4, 8, 16, 32] and a.studies == ["mse", "ppl", "mask"]
    assert all(r in golden.recipes.names() for r in a.recipes)
    assert validate.parse_sigmas(["A=0.001", "native"]) == [("A", 0.001), ("native", None)]
    for bad in (["A"], ["A=-1"], ["=0.1"], ["B=x"]):
        with pytest.raises(ValueError, match="NAME=SIGMA"):
            validate.parse_sigmas(bad)
    with pytest.raises(ValueError, match="unknown recipe"):
        cli_validate.run(parse(["--recipes", "nope", "--out", "unused"]))
    with pytest.raises(ValueError, match="weight-sigma"):
        cli_validate.run(parse(["--weight-sigma", "0", "--out", "unused"]))
    with pytest.raises(ValueError, match="mask-edges"):
        cli_validate.run(parse(["--studies", "mask", "--mask-edges", "0.1", "--out", "unused"]))


def test_scheme_options_are_quantize_options():
    for m in validate.RULES:
        for s in validate.SCALES:
            opts = validate.scheme(m, s, 8)
            golden.recipes.resolve(None, opts)
            assert opts["block_size"] == 8
    assert validate.scheme("4o6", "e4m3-h", 4)["scale_bound"] == 256.0
    assert "scale_bound" not in validate.scheme("4o6", "e4m3", 4)


def test_inversion_flag():
    assert validate.inverted({4: 2.0, 8: 1.0, 32: 3.0})
    assert not validate.inverted({4: 1.0, 8: 2.0, 32: 3.0})
    assert not validate.inverted({4: 1.0})


def test_mse_study_matches_golden_and_places_sigma():
    rng = np.random.default_rng(0)
    weights = {"a": (rng.standard_normal((4, 32)) * 0.05).astype(np.float32),
               "b": (rng.standard_normal((2, 64)) * 0.02).astype(np.float32)}
    before = {k: v.copy() for k, v in weights.items()}
    rows, overall = validate.mse_study(weights, [("A", 0.001), ("native", None)],
                                       ["abs-max", "4o6"], ["e4m3", "e8m0"], [4, 16])
    assert len(rows) == 2 * 2 * 2 * 2 * 2 and len(overall) == 16
    for k in weights:
        np.testing.assert_array_equal(weights[k], before[k])
    # one cell recomputed independently
    opts = validate.scheme("4o6", "e4m3", 4)
    err = energy = 0.0
    for k, w in weights.items():
        x = (w * np.float32(0.001 / float(w.std()))).astype(np.float32)
        q = golden.quantize(x, **opts).dequantize().astype(np.float64)
        err += np.sum((q - x) ** 2)
        energy += np.sum(x.astype(np.float64) ** 2)
    cell = [r for r in overall if (r["region"], r["rule"], r["scale_format"], r["block_size"]) ==
            ("A", "4o6", "e4m3", 4)]
    assert cell[0]["rel_mse"] == err / energy


def tiny_llama():
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval(), torch.randint(0, 64, (3, 16))


def test_perplexity_is_exp_of_the_models_loss():
    torch = pytest.importorskip("torch")
    model, windows = tiny_llama()
    with torch.no_grad():
        loss = model(windows, labels=windows).loss
    assert validate.perplexity(model, windows, batch=2) == pytest.approx(float(torch.exp(loss)),
                                                                         rel=1e-5)


def test_ppl_and_mask_studies_on_a_tiny_model():
    model, windows = tiny_llama()
    rows = validate.ppl_study(model, windows, ["paper-e4m3", "paper-ue5m3"], [4, 16])
    assert rows[0]["recipe"] == "none" and rows[0]["gap"] == 0
    assert [(r["recipe"], r["block_size"]) for r in rows[1:]] == [
        ("paper-e4m3", 4), ("paper-e4m3", 16), ("paper-ue5m3", 4), ("paper-ue5m3", 16)]
    assert all(r["gap"] == r["ppl"] - rows[0]["ppl"] for r in rows)
    assert validate.perplexity(model, windows) == rows[0]["ppl"]  # model restored
    masks = validate.mask_study(model, windows, [0.0, 0.01, 1e9])
    assert [(r["lo"], r["hi"]) for r in masks] == [(0.0, 0.01), (0.0, 1e9), (0.01, 1e9)]
    assert masks[1]["gap"] != 0  # everything zeroed changes the model


@pytest.mark.slow
def test_real_models_end_to_end(tmp_path):
    """MiniLM MSE table and SmolLM2 perplexity gaps from the installed packages (llm extra)."""
    pytest.importorskip("transformers")
    args = parse(["--tokens", "256", "--block-sizes", "4", "32", "--recipes", "paper-e4m3",
                  "--rules", "abs-max", "--scale-formats", "e4m3", "--mask-edges", "0", "0.01",
                  "--out", str(tmp_path)])
    assert cli_validate.run(args) == 0
    for name in ("mse.csv", "mse_overall.csv", "ppl.csv", "mask.csv", "summary.md",
                 "mse.png", "ppl.png", "mask.png"):
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "ppl.csv").read_text().splitlines()
    assert lines[0] == "recipe,block_size,ppl,gap" and len(lines) == 4
    base = float(lines[1].split(",")[2])
    assert 2 < base < 100  # a working language model on English text

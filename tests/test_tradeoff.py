"""The accuracy-vs-area table: Pareto marking, the generated advice, real accuracy rows."""

import numpy as np

from finescale.study import tradeoff


def row(f, rule, b, mse, area):
    return dict(scale_format=f, rule=rule, block_size=b, sigma=0.008, rel_mse=mse,
                area_per_element=area)


def test_pareto_marks_only_undominated_rows():
    rows = [row("e4m3", "abs-max", 16, 0.02, 100), row("e4m3", "4o6", 16, 0.01, 150),
            row("ue5m3", "abs-max", 16, 0.015, 90), row("e8m0", "abs-max", 16, 0.03, 95),
            row("e4m3", "bf", 16, 0.005, None)]
    marked = {(r["scale_format"], r["rule"]): r["pareto"] for r in tradeoff.pareto(rows)}
    assert marked == {("e4m3", "abs-max"): False, ("e4m3", "4o6"): True,
                      ("ue5m3", "abs-max"): True, ("e8m0", "abs-max"): False,
                      ("e4m3", "bf"): False}


def test_advice_reads_the_numbers():
    rows = tradeoff.pareto([row("e4m3", "abs-max", 4, 0.04, 300), row("e4m3", "abs-max", 32, 0.02, 80),
                            row("ue5m3", "abs-max", 4, 0.005, 320), row("e4m3", "4o6", 4, 0.01, 500)])
    text = tradeoff.advice(rows)
    assert "UE5M3 scales, abs-max, blocks of 4" in text
    assert "8.00x lower MSE" in text
    assert "inverts" in text and "4.00x better" in text


def test_accuracy_rows_show_the_inversion_and_its_fixes():
    rows = tradeoff.accuracy(0.007, formats=("e4m3", "ue5m3", "e8m0"), rules=("abs-max", "4o6"),
                             blocks=(4, 32), nblocks=3000, progress=False)
    get = {(r["scale_format"], r["rule"], r["block_size"]): r["rel_mse"] for r in rows}
    assert get["e4m3", "abs-max", 4] > get["e4m3", "abs-max", 32]   # inversion
    assert get["e4m3", "4o6", 4] < get["e4m3", "abs-max", 4]
    assert get["ue5m3", "abs-max", 4] < get["ue5m3", "abs-max", 32]  # UE5M3 does not invert
    assert ("e8m0", "pz", 4) not in get and all(np.isfinite(v) for v in get.values())


def test_nvfp4_row_and_storage_axis():
    """NVFP4 (E4M3 under the FP32 per-tensor scale) is an E4M3-only row; storage counts codes,
    scale codes and the per-tensor scale."""
    from finescale import golden

    x = np.random.default_rng(3).normal(0, 0.01, (2, 32)).astype(np.float32)
    q = golden.quantize(x, recipe="nvfp4")  # blocks of 16: 64 codes, 4 scales, one FP32 scale
    assert q.global_scale is not None and q.scale_codes.size == 4
    assert tradeoff.bits_per_element(q) == (4 * 64 + 8 * 4 + 32) / 64
    rows = tradeoff.accuracy(0.0098, formats=("e4m3", "ue5m3"), rules=("abs-max", "nvfp4"),
                             blocks=(4, 16), nblocks=2000, progress=False)
    get = {(r["scale_format"], r["rule"], r["block_size"]): r for r in rows}
    assert ("ue5m3", "nvfp4", 4) not in get
    for b in (4, 16):
        assert get["e4m3", "abs-max", b]["bits_per_element"] == 4 + 8 / b
        assert get["e4m3", "nvfp4", b]["bits_per_element"] == 4 + 8 / b + 32 / (2000 * b)
        # region B: the per-tensor scale lifts E4M3's block scales out of its subnormals
        assert get["e4m3", "nvfp4", b]["rel_mse"] < get["e4m3", "abs-max", b]["rel_mse"]

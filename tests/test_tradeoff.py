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

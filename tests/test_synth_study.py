"""Headline ratios, tables and figures of the study, on hand-made result rows."""

import json

import pytest

from finescale.synth import plots, study


def row(unit, fmt, size, area, **params):
    params = {"scale_format": fmt, "block_size": size, "input_format": "bf16", **params}
    lanes = params.get("lanes", size)
    r = {"name": f"{unit}_{fmt}_{size}_{'_'.join(map(str, params.values()))}", "unit": unit,
         **params, "params": params, "lanes": lanes, "sky130_um2": float(area),
         "um2_per_lane": area / lanes, "depth_cells": 10, "latency": 0}
    return r


def dot(fmt, size, area, lanes=None, accumulate=False):
    return row("dot", fmt, size, area, lanes=lanes or size, accumulate=accumulate,
               stages=int(accumulate))


ROWS = [
    row("scale", "e4m3", 16, 1000, rule="abs-max", prevent_zero=False),
    row("scale", "ue5m3", 16, 1200, rule="abs-max", prevent_zero=False),
    row("scale", "e4m3", 16, 1100, rule="abs-max", prevent_zero=True),
    row("scale", "e4m3", 4, 400, rule="abs-max", prevent_zero=False),
    row("scale", "e4m3", 32, 1800, rule="abs-max", prevent_zero=False),
    row("4o6", "e4m3", 16, 5000),
    row("4o6", "ue5m3", 16, 5400),
    dot("e4m3", 16, 8000), dot("e8m0", 16, 7000), dot("e4m3", 4, 2400),
    dot("e4m3", 16, 12000, accumulate=True), dot("e4m3", 16, 3000, lanes=4),
]


def test_headline_ratios():
    heads = {h["question"]: h for h in study.headlines(ROWS)}
    assert heads["UE5M3 / E4M3 scales, scale unit"]["ratio"] == pytest.approx(1.2)
    assert heads["UE5M3 / E4M3 scales, scale unit"]["pairs"] == 1   # pz has no UE5M3 partner
    assert heads["UE5M3 / E4M3 scales, 4o6 unit"]["ratio"] == pytest.approx(1.08)
    # 4o6 against the plain abs-max unit of the same format and size, never the pz one
    assert heads["4-over-6 unit / abs-max scale unit"]["ratio"] == pytest.approx(
        (5000 / 1000 * 5400 / 1200) ** 0.5)
    assert heads["block size 4 / 16, area per element, scale unit"]["ratio"] == pytest.approx(
        (400 / 4) / (1000 / 16))
    assert heads["block size 32 / 16, area per element, scale unit"]["ratio"] == pytest.approx(
        (1800 / 32) / (1000 / 16))
    # dot-product variants compare only with their own kind
    assert heads["E8M0 / E4M3 scales, dot unit"]["ratio"] == pytest.approx(7 / 8)
    assert heads["accumulating / plain dot product"]["ratio"] == pytest.approx(1.5)
    assert heads["4-lane / full-width dot product (same block size)"]["ratio"] == pytest.approx(
        3 / 8)
    assert heads["block size 4 / 16, area per element, dot unit"]["pairs"] == 1
    assert heads["block size 4 / 16, area per element, dot unit"]["ratio"] == pytest.approx(
        (2400 / 4) / (8000 / 16))
    assert not any("(4 lanes)" in q for q in heads)


def test_tables_and_figures(tmp_path):
    heads = study.headlines(ROWS)
    study.write_tables(ROWS, heads, tmp_path, liberty_label="test", wall_s=1.0)
    data = json.loads((tmp_path / "synth.json").read_text())
    assert len(data["rows"]) == len(ROWS) and data["headlines"] == heads
    assert "| UE5M3 / E4M3 scales, scale unit | 1.200 | 1 |" in (tmp_path / "synth.md").read_text()
    made = {p.name for p in plots.write_all(ROWS, tmp_path)}
    assert {"area_vs_block_size.png", "area_per_lane.png", "rules.png", "formats.png"} <= made


def test_delay_headlines_and_the_formatscope_row():
    timed = [dict(r, um2_at_clock=2 * r["sky130_um2"], delay_ps=1000.0 * (i + 1),
                  fastest_ps=500.0 * (i + 1)) for i, r in enumerate(ROWS)]
    heads = {h["question"]: h for h in study.headlines(timed)}
    q = "UE5M3 / E4M3 scales, scale unit"
    assert heads[f"{q}, delay at the common clock"]["ratio"] == pytest.approx(2000.0 / 1000.0)
    assert heads[f"{q}, delay of the fastest mapping"]["ratio"] == pytest.approx(1000.0 / 500.0)
    assert heads[f"{q}, area at the common clock"]["ratio"] == pytest.approx(1.2)
    assert "4-over-6 unit / abs-max scale unit, delay of the fastest mapping" in heads
    assert not any(", delay" in h["question"] for h in study.headlines(ROWS))
    fs = study.FORMATSCOPE
    peer = row("dot", "e8m0", 32, 30000, lanes=32, accumulate="fp32", stages=1)
    def timing(k):  # fastest and at 36.6 ns, areas k x FormatScope's
        return {"fastest": {"um2": 0.9 * k * fs["fastest_um2"], "flops": 33,
                            "delay_ps": 0.5 * fs["fastest_ps"]},
                "36p6ns": {"um2": 0.8 * k * fs["um2_at_clock"], "delay_ps": 30000.0,
                           "flops": 33, "clock_ns": 36.6}}
    peer |= {"timing": timing(2.0), "formatscope_scope": timing(1.0)}
    other = row("dot", "e4m3", 32, 30000, lanes=32, accumulate="fp32", stages=1)
    own, bounded = study.formatscope_rows(ROWS + [peer, other])
    assert own["design"] == bounded["design"] == peer["name"]
    assert own["scope"].startswith("FormatScope's") and bounded["scope"] == "boundary registers"
    assert (own["area_ratio_fastest"], own["delay_ratio_fastest"], own["area_ratio_at_clock"]) \
        == pytest.approx((0.9, 0.5, 0.8))
    assert (bounded["area_ratio_fastest"], bounded["area_ratio_at_clock"]) \
        == pytest.approx((1.8, 1.6))


def test_area_vs_clock_figure_and_formatscope_table(tmp_path):
    curve = {f"{ns}ns": {"clock_ns": float(ns), "um2": 1000.0 / ns, "slack_ps": ns - 3.0,
                         "delay_ps": 3000.0} for ns in (2, 3, 5, 8, 12)}
    rows = [dict(ROWS[0], timing=curve, delay_ps=3000.0, um2_at_clock=100.0)]
    assert plots.area_vs_clock(ROWS, tmp_path / "none.png") is None
    assert plots.area_vs_clock(rows, tmp_path / "c.png").is_file()
    study.write_tables(rows, [], tmp_path, liberty_label="test", wall_s=1.0)
    md = (tmp_path / "synth.md").read_text()
    assert "| FormatScope DP32 (published) | its own register | 33 | 35967 | 26451 | 35294 |" in md
    assert "no design with accumulate=\"fp32\"" in md and "## Timing scope" in md


def test_area_at_a_clock_is_the_smallest_mapping_that_meets_it():
    timing = {"fastest": {"um2": 300.0, "delay_ps": 9000.0},
              "10ns": {"um2": 200.0, "delay_ps": 11000.0, "clock_ns": 10.0},   # missed it
              "20ns": {"um2": 150.0, "delay_ps": 12000.0, "clock_ns": 20.0},
              "8ns": {"um2": 400.0, "delay_ps": 8500.0, "clock_ns": 8.0}}
    got = study.at_clock(timing, 10.0)
    assert (got["mapped_for"], got["um2"], got["slack_ps"]) == ("fastest", 300.0, 1000.0)
    assert study.at_clock(timing, 20.0)["um2"] == 150.0
    missed = study.at_clock(timing, 8.0)                 # nothing meets 8 ns: its own mapping
    assert (missed["mapped_for"], missed["slack_ps"]) == ("8ns", -500.0)

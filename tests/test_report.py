"""End to end: ``finescale report --quick`` writes every promised file, the page links only
files that exist, and the tables hold the expected rows."""

import csv
import hashlib
import json
import re

import pytest

from finescale import cli
from finescale import report as report_mod
from finescale.hw import units
from finescale.synth import liberty


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    code = cli.main(["report", "--quick", "--out", str(out)])
    return out, code


def test_report_runs_and_writes_every_file(report):
    out, code = report
    assert code == 0, (out / "errors.log").read_text() if (out / "errors.log").exists() else ""
    for name in ["index.html", "summary.md", "report.json", "tradeoff.csv", "pareto.png",
                 "study/study.csv", "study/mse.png", "study/clip_mse.png", "study/theory.png",
                 "rtl/manifest.json", "regress/regress.csv", "mutate/mutate.md",
                 "selectors/selectors.csv", "selectors/pareto.png", "selectors/target.md"]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    stages = {s["title"]: s["status"] for s in json.loads((out / "report.json").read_text())
              ["stages"]}
    assert stages["Regression: RTL vs golden model"] == "ok"
    assert stages["Synthesis: area and logic depth"] == ("ok" if liberty.available() else
                                                          "skipped")
    run = json.loads((out / "report.json").read_text())
    assert [s["title"] for s in run["stages"]][:4] == [
        "Numerical study (MSE vs sigma)", "RTL generation", "Regression: RTL vs golden model",
        "Synthesis: area and logic depth"]
    # with the default two workers regression and synthesis run side by side, and say so
    assert run["side_by_side"] == ["Regression: RTL vs golden model",
                                   "Synthesis: area and logic depth"]
    reg, syn = (next(s for s in run["stages"] if s["title"] == t) for t in run["side_by_side"])
    assert syn["start"] < reg["start"] + reg["seconds"]  # they overlapped
    assert "ran side by side" in (out / "summary.md").read_text()


def test_page_references_only_existing_files(report):
    out, _ = report
    page = (out / "index.html").read_text()
    refs = re.findall(r'src="([^"]+)"', page)
    assert refs and all((out / r).is_file() for r in refs), refs
    md = (out / "summary.md").read_text()
    assert all((out / r).is_file() for r in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md))


def test_tables_hold_the_expected_rows(report):
    out, _ = report
    rows = list(csv.DictReader(open(out / "tradeoff.csv")))
    keys = {(r["scale_format"], r["rule"], r["block_size"]) for r in rows}
    for f in ("e4m3", "ue5m3", "e8m0"):
        for b in ("4", "8", "16", "32"):
            assert (f, "abs-max", b) in keys and (f, "4o6", b) in keys and (f, "bf", b) in keys
    assert ("e8m0", "pz", "4") not in keys  # E8M0 has no zero scale to prevent
    assert {k for k in keys if k[1] == "nvfp4"} == {("e4m3", "nvfp4", b)
                                                   for b in ("4", "8", "16", "32")}
    bits = {(r["rule"], r["block_size"]): float(r["bits_per_element"]) for r in rows}
    assert bits["abs-max", "4"] == 4 + 8 / 4 and bits["abs-max", "32"] == 4 + 8 / 32
    assert 4 + 8 / 16 < bits["nvfp4", "16"] < 4 + 8 / 16 + 0.01  # + 32 bits over the tensor
    if liberty.available():
        assert any(r["area_per_element"] for r in rows)
        assert any(r["pareto"] == "True" for r in rows)
    regress = list(csv.DictReader(open(out / "regress" / "regress.csv")))
    assert regress and all(r["status"] == "PASS" and r["mismatches"] == "0" for r in regress)
    assert {r["unit"] for r in regress} == {"scale", "element", "quantizer", "4o6", "dot",
                                            "selector"}
    assert len(regress) == 16  # one parameter set a unit kind and scale format (selector: E4M3)
    for r in regress:  # the file regressed is the emitted file synthesis reads
        text = (out / "rtl" / f"{r['name']}.v").read_text()
        assert r["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    # quick mode emits exactly what it regresses and synthesizes (--full: the whole matrix)
    emitted = json.loads((out / "rtl" / "manifest.json").read_text())["names"]
    assert sorted(p.stem for p in (out / "rtl").glob("*.v")) == sorted(emitted)
    wanted = {s.name for s in report_mod.quick_synthesis(units.matrix("default"))}
    assert {r["name"] for r in regress} < wanted  # the regressed units are synthesized too
    # 33: the quick synthesis's selectors are kc-m6_4-up and pg1-m6_4-up
    assert set(emitted) == wanted and len(emitted) == 33 < len(units.matrix("default"))
    if liberty.available():
        synth = list(csv.DictReader(open(out / "synth" / "synth.csv")))
        assert {r["name"] for r in synth} == wanted
    mutants = json.loads((out / "mutate" / "mutate.json").read_text())["summary"]
    assert [s["mutants"] for s in mutants] == [8] * 8  # every unit kind, 8 mutants each
    assert all(s["killed"] + s["equivalent"] + s["survivors"] == 8 for s in mutants)
    md = (out / "summary.md").read_text()
    assert "Most accurate buildable configuration" in md and "region" in md
    if liberty.available():
        assert "passed regression on the identical file" in md
    sel = list(csv.DictReader(open(out / "selectors" / "selectors.csv")))
    measured = {(r["selector"], r["block_size"]) for r in sel if r["area_um2"]}
    if liberty.available():  # the quick synthesis prices 4o6 and the selectors at blocks of 4
        assert {("4o6", "4"), ("kc-m6_4-up", "4"), ("pg1-m6_4-up", "4"), ("abs-max", "4")} \
            <= measured
    assert not any(r["area_um2"] for r in sel if r["selector"] == "brute-force")
    assert "Scale selectors" in md and "gap closed B16" in md

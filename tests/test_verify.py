"""Generated mutants (Yosys ``mutate``) are killed by the regression or proved equivalent;
pipelined units are proved equal to their combinational twins (Yosys)."""

from __future__ import annotations

import json

import pytest

from finescale.hw import emit
from finescale.sim import formal, mutate


@pytest.fixture(scope="module")
def scale_campaign(tmp_path_factory):
    """Eight sampled mutants of the scale unit through the regression (one Verilator build)."""
    wd = tmp_path_factory.mktemp("mutate")
    return mutate.run_kind(mutate.KINDS["scale"], n=8, seed=5, vectors=200, workdir=wd), wd


def test_sampled_mutants_are_killed_or_proved_equivalent(scale_campaign):
    (rows, summary), _ = scale_campaign
    assert len(rows) == 8 and all(r["mutation"].startswith("mutate -mode ") for r in rows)
    left = [r for r in rows if not r["killed"] and not r["verdict"].startswith("equivalent")]
    assert not left, left
    assert summary["killed"] >= 1 and summary["survivors"] == 0
    assert summary["kill_rate"] == 1.0


def test_the_bundle_selects_mutants_by_mutsel(scale_campaign):
    _, wd = scale_campaign
    bundle = next(wd.rglob("mutants.v"))
    side = json.loads(bundle.with_suffix(".json").read_text())
    assert {"name": "mutsel", "dir": "in", "width": 4, "lanes": None,
            "lane_width": None} in side["ports"]
    assert "mutsel" in bundle.read_text() and side["mutations"] == 8


def test_an_equivalence_proof_can_fail(scale_campaign, tmp_path):
    """A mutant the regression killed is not proved equivalent: Yosys finds a difference."""
    (rows, _), _ = scale_campaign
    killed = next(r for r in rows if r["killed"])
    spec = mutate.KINDS["scale"]
    em = emit.emit(spec, tmp_path / "rtl")
    verdict = mutate.prove_equivalent(em, tmp_path / "p", killed["mutation"], clocked=False)
    assert verdict.startswith("differs"), verdict


@pytest.mark.parametrize("kind", ["scale", "element", "quantizer", "dot"])
def test_pipelined_unit_equals_its_combinational_twin(kind, tmp_path):
    row = formal.prove(kind, tmp_path, block_size=4)
    assert row["result"] == "proved", row
    assert row["delay"] == formal.twins(kind)[0].latency - formal.twins(kind)[1].latency


@pytest.mark.slow
def test_fouroversix_pipeline_equals_its_twin(tmp_path):
    row = formal.prove("4o6", tmp_path, block_size=4)
    assert row["result"] == "proved", row


def test_a_wrong_latency_is_not_proved(tmp_path):
    assert formal.prove("scale", tmp_path, block_size=4, delay=1)["result"] == "FAILED"


def test_register_depths_catch_an_unbalanced_pipeline(tmp_path):
    """The scale unit with its output register made a wire: 'scale' is 1 register deep
    while valid_out is 2, and the depth check says so."""
    from finescale.synth.flow import run_yosys

    p, _ = formal.twins("scale")
    ep = emit.emit(p, tmp_path)
    text = ep.path.read_text()
    cut = "always @(posedge clk)\n    scale <= "
    assert text.count(cut) == 1
    ep.path.write_text(text.replace(cut, "always @*\n    scale <= "))
    (tmp_path / "d.ys").write_text(f"read_verilog -sv {ep.path.name}\nprep -top {p.name} "
                                   "-flatten\nwrite_json p.json\n")
    run_yosys(tmp_path, "d.ys")
    outs, _ = formal.register_depths(json.loads((tmp_path / "p.json").read_text()), p.name)
    assert outs["scale"] == {1} and outs["valid_out"] == {2}
    ep.path.write_text(text)  # and the emitted unit is balanced
    run_yosys(tmp_path, "d.ys")
    outs, clash = formal.register_depths(json.loads((tmp_path / "p.json").read_text()), p.name)
    assert outs["scale"] == {2} and outs["valid_out"] == {2} and not clash

"""Generated mutants (Yosys ``mutate``) are killed by the regression or proved equivalent;
pipelined units are proved equal to their combinational twins (Yosys)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finescale.hw import emit
from finescale.sim import directed, formal, mutate, stimulus


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


def test_learning_runs_one_kind_at_a_time(tmp_path):
    """Learnt vectors are written to one store: a parallel campaign refuses --learn."""
    with pytest.raises(ValueError, match="--learn .* --jobs 1"):
        mutate.campaign(["scale"], learn=True, jobs=2, out=tmp_path, workdir=tmp_path)


def test_an_equivalence_proof_can_fail(scale_campaign, tmp_path):
    """A mutant the regression killed is not proved equivalent: Yosys finds a difference."""
    (rows, _), _ = scale_campaign
    killed = next(r for r in rows if r["killed"])
    spec = mutate.KINDS["scale"]
    em = emit.emit(spec, tmp_path / "rtl")
    verdict = mutate.prove_equivalent(em, tmp_path / "p", killed["mutation"], clocked=False)
    assert verdict.startswith("differs"), verdict
    # its SAT model, read back as unit inputs, is stimulus the golden model and the unit agree on
    cx = mutate.counterexample(spec, em, tmp_path / "p")
    assert cx is not None and set(cx) == {"x"} and cx["x"].shape == (1, 4)
    assert directed.agrees(spec, cx)


def _trace(**signals):
    """A WaveJSON trace as Yosys's ``sat -dump_json`` writes it (one-bit signals as 0/1)."""
    return {"signal": [{"name": n, "wave": "".join(str(v) for v in vals) + "4"}
                       if n in ("valid_in", "rst", "acc_clear") else
                       {"name": n, "wave": "=" * len(vals) + "4",
                        "data": [format(v, "016b") for v in vals] + [""]}
                       for n, vals in signals.items()]}


def test_a_trace_becomes_blocks_of_beats():
    """Steps with valid_in high and rst low, two beats (two lanes each) a block; the scale
    codes read at the block's first beat."""
    spec = mutate.KINDS["dot-lanes"]  # block 8 in beats of 4 lanes
    side = spec.sidecar()
    a = [0x4321, 0x8765, 0xFFFF, 0xCBA9, 0x0FED, 0x1111]
    t = _trace(rst=[0, 0, 0, 0, 0, 1], valid_in=[1, 1, 0, 1, 1, 1], a=a, b=a,
               scale_a=[1, 2, 3, 4, 5, 6], scale_b=[7, 7, 7, 7, 7, 7])
    cx = directed.from_trace(t, spec, side)
    assert cx["a"].tolist() == [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 0]]
    assert cx["scale_a"].tolist() == [1, 4] and cx["b"].dtype == np.uint8


def test_a_sequential_trace_skips_its_initial_state_column():
    """``sat -seq`` / ``-tempinduct`` models start with the initial state ('4', no value)."""
    spec = mutate.KINDS["dot-acc"]
    t = {"signal": [{"name": "valid_in", "wave": "41.0"}, {"name": "acc_clear", "wave": "40.1"},
                    *({"name": n, "wave": "4===", "data": ["", "0101", "0011", "1111"]}
                      for n in ("a", "b", "scale_a", "scale_b"))]}
    cx = directed.from_trace(t, spec, spec.sidecar())
    assert cx["acc_clear"].tolist() == [1, 0, 0] and cx["scale_a"].tolist() == [0, 5, 3]


def test_an_accumulating_trace_starts_with_a_clear():
    spec = mutate.KINDS["dot-acc"]
    t = _trace(valid_in=[1], acc_clear=[0], a=[0x2222], b=[0x3333], scale_a=[9], scale_b=[9])
    cx = directed.from_trace(t, spec, spec.sidecar())
    assert cx["acc_clear"].tolist() == [1, 0] and cx["a"].tolist() == [[0] * 4, [2] * 4]
    assert directed.from_trace(_trace(valid_in=[0], acc_clear=[0], a=[1], b=[1], scale_a=[1],
                                      scale_b=[1]), spec, spec.sidecar()) is None


def test_learnt_vectors_are_appended_to_the_stimulus(tmp_path, monkeypatch):
    spec = mutate.KINDS["dot"]
    monkeypatch.setenv("FINESCALE_DIRECTED", str(tmp_path))
    base = stimulus.for_spec(spec, np.random.default_rng(3), 20)
    cx = {"a": np.array([[14, 3, 12, 6]], np.uint8), "b": np.array([[7, 3, 4, 7]], np.uint8),
          "scale_a": np.array([1], np.uint8), "scale_b": np.array([1], np.uint8)}
    assert directed.learn(spec, cx, "a test") and not directed.learn(spec, cx, "again")
    got = stimulus.for_spec(spec, np.random.default_rng(3), 20)
    assert all(np.array_equal(got[p], np.concatenate([base[p], cx[p]])) for p in cx)


@pytest.mark.parametrize("kind", ["scale", "element", "quantizer", "dot"])
def test_pipelined_unit_equals_its_combinational_twin(kind, tmp_path):
    row = formal.prove(kind, tmp_path, block_size=4)
    assert row["result"] == "proved", row
    assert row["delay"] == formal.twins(kind)[0].latency - formal.twins(kind)[1].latency


@pytest.mark.parametrize("kind,state", [("dot-acc", "acc +3"), ("dot-fp32", "acc +3"),
                                        ("dot-lanes", "partial +1")])
def test_pipeline_with_state_equals_its_twin(kind, state, tmp_path):
    """State across blocks or beats: balanced cuts with the state at its lag, and the same
    next state and outputs for every state once the pipeline registers are wires."""
    row = formal.prove(kind, tmp_path, block_size=4)
    assert row["result"] == "proved", row
    assert state in row["proof"] and row["delay"] == formal.twins(kind)[0].latency - \
        formal.twins(kind)[1].latency


def test_a_state_register_at_the_wrong_lag_is_not_proved(tmp_path, monkeypatch):
    monkeypatch.setattr(formal, "ACC_STATE_AFTER", ("products", "sum"))
    row = formal.prove("dot-acc", tmp_path, block_size=4)
    assert row["result"] == "FAILED" and "unbalanced" in row["proof"], row


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

"""The DUT-side stimulus/response harness: hex files, the stream schedule, and cocotb runs
that check every block went through it (pipelined and accumulating units) and that a
corrupted response is caught."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finescale import cli
from finescale.hw.units import spec
from finescale.sim import harness, runner, scoreboard

PIPELINED = spec("quantizer", scale_format="ue5m3", block_size=4, pipelined=True)
ACCUMULATING = spec("dot", scale_format="e4m3", block_size=8, accumulate=True, stages=4)


@pytest.mark.parametrize("width,lanes", [(1, None), (8, None), (32, None), (64, None),
                                         (16 * 4, 4), (4 * 32, 32), (3 * 5, 5), (6 * 2, 2)])
def test_hex_lines_round_trip_against_python_formatting(width, lanes):
    rng = np.random.default_rng(width)
    lw = width // (lanes or 1)
    v = rng.integers(0, 1 << lw, (300, lanes) if lanes else 300, dtype=np.uint64)
    v[0] = (1 << lw) - 1  # all ones
    text = harness.hex_lines(v, width)
    words = scoreboard.pack(v, lw) if lanes else [int(x) for x in v]  # independent packing
    digits = -(-width // 4)
    assert text == b"".join(f"{w:0{digits}x}\n".encode() for w in words)
    np.testing.assert_array_equal(harness.parse_hex(text, width, lanes), v)


def test_parse_hex_reads_writememh_forms_and_wide_ports():
    wide = [(1 << 536) | 5, 0, (1 << 100) - 1]
    text = b"// comment\n@0\n" + b"".join(f"{w:x}\n".encode() for w in wide)  # no padding
    assert harness.parse_hex(text, 537).tolist() == wide
    assert harness.parse_hex(b"a\nFF\n", 8).tolist() == [10, 255]
    with pytest.raises(ValueError, match="non-hex"):
        harness.parse_hex(b"x1\n", 8)


def test_schedule_keeps_every_beat_once_in_order():
    rows, valid = harness.schedule(500, 4, np.random.default_rng(0), 0.3)
    np.testing.assert_array_equal(rows[valid], np.arange(2000))
    assert 0.15 < (~valid).mean() < 0.35 and len(rows) <= 2 * 2000
    rows, valid = harness.schedule(10, 1, np.random.default_rng(0), 0.0)
    assert valid.all() and (rows == np.arange(10)).all()


def test_wrapper_names_every_port_and_checks_depth():
    text = harness.verilog(ACCUMULATING, depth=1024)
    for port in ("a", "b", "scale_a", "scale_b", "acc_clear", "result", "acc_out",
                 "acc_overflow"):
        assert f"{port}(u_{port})" in text or f".{port}({port})" in text
    assert f"module {harness.top_name(ACCUMULATING)}(" in text
    assert f"h_i == h_rows + {ACCUMULATING.latency + 1}" in text
    with pytest.raises(ValueError, match="power of two"):
        harness.verilog(ACCUMULATING, depth=1000)


# --- through cocotb + Verilator ----------------------------------------------------------------

@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("harness_build")


@pytest.mark.parametrize("unit", [PIPELINED, ACCUMULATING], ids=lambda s: s.name)
def test_harness_runs_every_block(unit, build_root):
    rep = runner.run_unit(unit, vectors=3000, build_root=build_root)
    h = rep["harness"]
    assert rep["passed"] and rep["mismatches"] == 0, rep["first_mismatches"]
    assert not rep["protocol_errors"] and not rep["missed"], rep
    # the harness counted one response a block (h_count), for every stimulus vector
    assert h["blocks"] == h["responses"] == rep["vectors"] > 3000
    assert h["cycles"] > rep["vectors"] * unit.beats  # valid gaps were inserted
    # then the per-cycle drivers: a reset mid-stream, random gaps
    assert rep["resets"] == 1 and rep["protocol_vectors"] == 400


def test_harness_catches_a_corrupted_response(build_root, monkeypatch):
    monkeypatch.setenv("FINESCALE_CORRUPT", "1234")
    rep = runner.run_unit(PIPELINED, vectors=2000, build_root=build_root)
    assert not rep["passed"] and rep["mismatches"] == 1
    assert rep["first_mismatches"][0].startswith(f"vector 1234 of {PIPELINED.name}")


def test_per_cycle_path_without_harness(build_root):
    rep = runner.run_unit(PIPELINED, vectors=300, build_root=build_root / "plain",
                          harness=False)
    assert rep["passed"] and rep["harness"] is None and rep["resets"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("unit", [PIPELINED, ACCUMULATING], ids=lambda s: s.name)
def test_harness_long_run_in_chunks(unit, build_root):
    rep = runner.run_unit(unit, vectors=100_000, build_root=build_root)
    assert rep["passed"] and rep["harness"]["responses"] == rep["vectors"] > harness.DEPTH


def test_bench_regress_prints_blocks_per_second(tmp_path, capsys):
    js = tmp_path / "bench.json"
    assert cli.main(["bench", "regress", "--cases", "dot Kulisch pipelined", "--vectors", "500",
                     "--build-dir", str(tmp_path / "b"), "--json", str(js)]) == 0
    (row,) = json.loads(js.read_text())
    assert row["unit"] == "fs_dot_e4m3_b16_acc16_s4" and row["path"] == "harness"
    assert row["passed"] and row["blocks"] > 500 and row["blocks_per_s"] > 0
    assert "| dot Kulisch pipelined |" in capsys.readouterr().out
    assert cli.main(["bench", "regress", "--cases", "abs-max"]) == 1
    assert "not a regress case" in capsys.readouterr().err

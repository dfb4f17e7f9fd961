"""``finescale rtl``: Verilog + sidecars + manifest, and every emitted file lints clean."""

import argparse
import hashlib
import json
import pathlib

import pytest

from finescale.cli import rtl
from finescale.hw import emit
from finescale.hw.lint import lint, verilator_path
from finescale.hw.units import UNITS, matrix, spec


def run_rtl(*argv):
    parser = argparse.ArgumentParser()
    rtl.register(parser.add_subparsers())
    args = parser.parse_args(["rtl", *argv])
    return args.func(args)


def test_one_unit_writes_verilog_sidecar_and_manifest(tmp_path):
    assert run_rtl("--unit", "scale", "--scale-format", "ue5m3", "--block-size", "32",
                   "--prevent-zero", "--out", str(tmp_path)) == 0
    name = "fs_scale_ue5m3_b32_bf16_absmax_pz"
    assert f"module {name}(" in (tmp_path / f"{name}.v").read_text()
    side = json.loads((tmp_path / f"{name}.json").read_text())
    assert side["top"] == name and side["latency"] == 0 and side["clock"] is None
    assert side["params"]["prevent_zero"] is True
    ports = {p["name"]: p for p in side["ports"]}
    assert ports["x"] == dict(name="x", dir="in", width=512, lanes=32, lane_width=16)
    assert ports["scale"]["width"] == 8 and ports["scale"]["dir"] == "out"
    assert json.loads((tmp_path / "manifest.json").read_text()) == [name]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--unit must be one of"):
        run_rtl("--unit", "nope", "--out", str(tmp_path))
    with pytest.raises(ValueError, match="either --unit or --all"):
        run_rtl("--out", str(tmp_path))
    with pytest.raises(ValueError, match="does not apply"):
        run_rtl("--unit", "element", "--rule", "mx", "--out", str(tmp_path))


def test_emit_writes_once_with_the_hash_of_the_verilog(tmp_path):
    s = spec("element", scale_format="e8m0", block_size=4)
    em = emit.emit(s, tmp_path)
    text = em.path.read_text()
    assert em.sha256 == hashlib.sha256(text.encode()).hexdigest() == em.sidecar["sha256"]
    assert json.loads((tmp_path / f"{s.name}.json").read_text())["sha256"] == em.sha256
    back = emit.load(em.path)
    assert back.sha256 == em.sha256 and back.name == s.name
    em.path.write_text(text.replace("endmodule", "endmodule // edited", 1))
    assert emit.load(em.path).sha256 != em.sha256  # the file's own hash, not the sidecar's
    (tmp_path / f"{s.name}.json").unlink()
    with pytest.raises(FileNotFoundError, match="no sidecar"):
        emit.load(em.path)


def test_one_verilog_backend_call_in_the_tree():
    root = pathlib.Path(emit.__file__).resolve().parents[1]
    calls = [p for p in root.rglob("*.py") if ".venv" not in p.parts
             and "verilog." + "convert(" in p.read_text()]
    assert [p.relative_to(root).as_posix() for p in calls] == ["hw/emit.py"]


def test_every_registered_unit_is_in_the_matrix():
    for which in ("default", "all"):
        assert {s.unit for s in matrix(which)} == set(UNITS)


def test_matrix_names_are_unique():
    for which in ("default", "all"):
        names = [s.name for s in matrix(which)]
        assert len(names) == len(set(names))
    assert "fs_scale_e4m3_b16_bf16_absmax" in [s.name for s in matrix()]


LINT_SPECS = [spec("scale", scale_format="e4m3", block_size=4),
              spec("scale", scale_format="e8m0", block_size=4, pipelined=True),
              spec("quantizer", scale_format="ue5m3", block_size=4, input_format="fp32"),
              spec("element", scale_format="e4m3", block_size=4),
              spec("selector", rule="kc-m6_4_3-up", block_size=4, pipelined=True),
              spec("selector", rule="pg1-m6_4-up", block_size=4, pipelined=True),
              spec("selector", rule="pg2-m6_4", block_size=8),
              spec("selector", rule="kc-on1_0_2-maxabs", block_size=4),
              spec("dot", scale_format="e8m0", block_size=8, lanes=2, accumulate=True, stages=4),
              spec("dot", scale_format="ue5m3", block_size=4, lanes=2),
              spec("dot", scale_format="e8m0", block_size=32, accumulate="fp32"),
              spec("dot", scale_format="e4m3", block_size=8, lanes=4, accumulate="fp32", stages=4)]


@pytest.mark.skipif(verilator_path() is None, reason="verilator not installed")
@pytest.mark.parametrize("s", LINT_SPECS, ids=lambda s: s.name)
def test_verilog_lints_clean(tmp_path, s):
    emit.emit(s, tmp_path)
    ok, out = lint(tmp_path / f"{s.name}.v")
    assert ok, out


@pytest.mark.slow
@pytest.mark.skipif(verilator_path() is None, reason="verilator not installed")
def test_whole_matrix_lints_clean(tmp_path):
    assert run_rtl("--all", "--matrix", "all", "--out", str(tmp_path)) == 0
    names = json.loads((tmp_path / "manifest.json").read_text())
    assert len(names) == len(matrix("all"))
    for name in names:
        ok, out = lint(tmp_path / f"{name}.v")
        assert ok, out

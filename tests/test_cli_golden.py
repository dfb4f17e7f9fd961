"""The quantize and bench commands, end to end through ``finescale.cli.main``."""

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from finescale import cli, golden
from finescale.cli import tensorio


def write_safetensors(path, tensors):
    """A minimal safetensors writer (the format: u64 header length, JSON header, data)."""
    names = {np.dtype(np.float32): "F32", np.dtype(ml_dtypes.bfloat16): "BF16",
             np.dtype(np.int64): "I64"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_safetensors_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    t = {"w": rng.standard_normal((4, 32)).astype(np.float32),
         "b": rng.standard_normal(32).astype(ml_dtypes.bfloat16),
         "step": np.array([3], np.int64)}
    write_safetensors(tmp_path / "m.safetensors", t)
    back = tensorio.load(tmp_path / "m.safetensors")
    for k in t:
        assert back[k].dtype == t[k].dtype and np.array_equal(back[k], t[k])


def test_quantize_command_writes_codes_and_summary(tmp_path, capsys):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((8, 64)) * 0.01).astype(np.float32)
    write_safetensors(tmp_path / "m.safetensors",
                      {"w": w, "b": w[0].astype(ml_dtypes.bfloat16), "n": np.arange(3)})
    out = tmp_path / "q.npz"
    assert cli.main(["quantize", str(tmp_path / "m.safetensors"), "--recipe", "nvfp4-4o6",
                     "--block-size", "8", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| w | 512 |" in text and "| b | 64 |" in text and "| n |" not in text
    z = np.load(out)
    q = golden.quantize(w, recipe="nvfp4-4o6", block_size=8)
    assert np.array_equal(z["w.element_codes"], q.element_codes)
    assert np.array_equal(z["w.scale_codes"], q.scale_codes)
    assert np.array_equal(z["w.choice"], q.choice)
    assert z["w.global_scale"] == q.global_scale


def test_quantize_command_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["quantize", str(tmp_path / "missing.npy")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    np.save(tmp_path / "x.npy", np.array([1.0, np.nan], np.float32))
    assert cli.main(["quantize", str(tmp_path / "x.npy")]) == 1
    assert "NaN" in capsys.readouterr().err


def test_quantize_command_says_empty_and_bad_files(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", e=np.zeros((0, 16), np.float32), w=np.ones((2, 16), np.float32))
    assert cli.main(["quantize", str(tmp_path / "m.npz"), "-o", str(tmp_path / "q.npz")]) == 0
    out, err = capsys.readouterr()
    assert "'e' is empty" in err and "nan" not in out and "| w | 32 |" in out
    np.save(tmp_path / "e.npy", np.zeros(0, np.float32))
    assert cli.main(["quantize", str(tmp_path / "e.npy")]) == 1
    assert "no non-empty floating-point tensors" in capsys.readouterr().err
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    assert cli.main(["quantize", str(tmp_path / "bad.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable safetensors file" in err


def test_bench_command_reports_ratios(tmp_path, capsys):
    js = tmp_path / "b.json"
    assert cli.main(["bench", "golden", "--elements", "65536", "--repeat", "1",
                     "--cases", "abs-max", "4o6", "--no-torchao", "--json", str(js)]) == 0
    rows = json.loads(js.read_text())
    assert [(r["case"], r["shape"]) for r in rows] == [
        ("abs-max", "1-D"), ("abs-max", "2-D"), ("4o6", "1-D"), ("4o6", "2-D")]
    assert all(r["ratio_to_copy"] > 0 and r["cpu_ratio_to_copy"] > 0
               and r["torchao_elements_per_s"] is None for r in rows)
    assert "| abs-max | 1-D |" in capsys.readouterr().out


def test_bench_rejects_elements_not_a_multiple_of_1024(capsys):
    assert cli.main(["bench", "golden", "--elements", "1000"]) == 1
    assert "multiple of 1024" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_cold_first_call_runs_in_a_fresh_process(tmp_path, capsys):
    js = tmp_path / "b.json"
    assert cli.main(["bench", "golden", "--elements", "65536", "--repeat", "1", "--cases",
                     "nvfp4", "--no-torchao", "--cold", "--json", str(js)]) == 0
    cold = [r for r in json.loads(js.read_text()) if "first_call_s" in r]
    assert [r["case"] for r in cold] == ["nvfp4"]
    assert cold[0]["first_call_s"] > 0 and cold[0]["first_call_cpu_s"] > 0
    assert "| nvfp4 |" in capsys.readouterr().out.split("first call")[1]


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "quantize" in out and "bench" in out

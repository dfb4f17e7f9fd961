"""The one emit step: a unit's Verilog and JSON sidecar, written once, with the Verilog's hash.

:func:`emit` writes ``<out>/<top>.v`` and ``<out>/<top>.json``; the sidecar
holds the sha256 of the Verilog text, so regression and synthesis results that
record the hash of the file they read show that they worked on the same file.
:func:`verilog_text` is the project's only call of Amaranth's Verilog backend;
:func:`load` reads an emitted (or hand-edited) file back with its sidecar.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

__all__ = ["Emitted", "emit", "load", "render", "sha256", "verilog_text"]


@dataclasses.dataclass(frozen=True)
class Emitted:
    """One emitted unit: top name, Verilog path, sidecar (dict) and sha256 of the Verilog."""

    name: str
    path: Path
    sidecar: dict
    sha256: str


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def verilog_text(component, name: str) -> str:
    """Verilog of an Amaranth component with top module ``name``."""
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def _write(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps mtimes for make)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def render(spec) -> tuple[str, dict]:
    """``spec``'s Verilog text and sidecar (with the text's ``sha256``), in memory."""
    text = verilog_text(spec.build(), spec.name)
    return text, dict(spec.sidecar(), sha256=sha256(text))


def emit(spec, out_dir) -> Emitted:
    """Write ``spec``'s Verilog and sidecar (with ``sha256``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text, side = render(spec)
    path = out / f"{spec.name}.v"
    _write(path, text)
    _write(out / f"{spec.name}.json", json.dumps(side, indent=2) + "\n")
    return Emitted(spec.name, path, side, side["sha256"])


def load(verilog) -> Emitted:
    """A Verilog file and the sidecar ``FILE.json`` beside it; the hash is the file's own."""
    path = Path(verilog)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such Verilog file")
    side_path = path.with_suffix(".json")
    if not side_path.is_file():
        raise FileNotFoundError(f"{path}: no sidecar {side_path.name} beside it "
                                "(write one with 'finescale rtl')")
    try:
        side = json.loads(side_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{side_path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    missing = [k for k in ("top", "unit", "params") if k not in side]
    if missing:
        raise ValueError(f"{side_path}: sidecar lacks {missing}")
    return Emitted(side["top"], path, side, sha256(path.read_text()))

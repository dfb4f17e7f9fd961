"""Where the designs come from: a folder written by ``finescale rtl`` or the hw unit registry.

Either way the Verilog comes from the one emit step (:mod:`finescale.hw.emit`) and
the sidecar carries its sha256, which the synthesis results record."""

from __future__ import annotations

import json
from pathlib import Path

from .flow import Design


def from_rtl_dir(folder) -> list[Design]:
    """Designs listed in ``folder/manifest.json`` (``<name>.v`` plus its ``<name>.json`` sidecar)."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder}: no manifest.json (write one with 'finescale rtl --all')")
    data = json.loads(manifest.read_text())
    names = data.get("names", data) if isinstance(data, dict) else data
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{manifest}: expected a list of design names")
    from finescale.hw.emit import load
    designs = []
    for name in names:
        verilog, sidecar = folder / f"{name}.v", folder / f"{name}.json"
        if not verilog.is_file() or not sidecar.is_file():
            raise FileNotFoundError(f"{folder}: {name}.v or {name}.json is missing")
        em = load(verilog)  # the hash of the file read, whatever the sidecar says
        designs.append(Design(name, verilog.read_text(), dict(em.sidecar, sha256=em.sha256)))
    return designs


def from_component(name: str, component, *, unit: str, params: dict, latency: int = 0) -> Design:
    """A Design from an Amaranth component, its Verilog top called ``name``."""
    from finescale.hw.emit import sha256, verilog_text
    text = verilog_text(component, name)
    return Design(name, text, {"top": name, "unit": unit, "params": dict(params),
                               "latency": int(latency), "sha256": sha256(text)})


def _registry():
    try:
        from finescale.hw import units
    except ImportError as exc:
        raise RuntimeError("finescale.hw.units is not available yet; pass --rtl DIR with the "
                           "output of 'finescale rtl --all'") from exc
    return units


def _convert(job: tuple[str, int]) -> Design:
    which, index = job
    from finescale.hw.emit import render
    spec = _registry().matrix(which)[index]
    text, side = render(spec)
    return Design(spec.name, text, side)


def from_registry(which: str = "default", *, jobs: int = 1, **filters) -> list[Design]:
    """The units of ``finescale.hw.units.matrix(which)`` that pass :func:`select` with
    ``filters``, converted to Verilog as Dask tasks (``jobs`` processes at a time)."""
    specs = _registry().matrix(which)
    chosen = select(specs, **filters)
    work = [(which, i) for i, s in enumerate(specs) if any(s is c for c in chosen)]
    from finescale import cluster
    return cluster.map_progress(_convert, work, jobs=jobs if len(work) > 1 else 1,
                                desc="verilog", unit="unit")


def select(designs: list, *, units=None, formats=None, block_sizes=None) -> list:
    """Designs (or unit specs: anything with ``unit`` and ``params``) whose unit, scale format
    and block size (or lane count) are among those given."""
    def keep(d) -> bool:
        p = d.params
        size = p.get("block_size", p.get("lanes"))
        return ((not units or d.unit in units)
                and (not formats or p.get("scale_format") in formats)
                and (not block_sizes or size in block_sizes))
    return [d for d in designs if keep(d)]

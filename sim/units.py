"""Which units the regression runs: the hardware registry, or another that follows its contract.

``source`` is ``"module:function"``; the function takes ``which`` ("default" or
"all") and returns UnitSpecs.  The default is :func:`finescale.hw.units.matrix`.
The testbench, running in the simulator's process, gets the unit back through
:func:`find`: from the unit kind and parameters the runner passes (a sidecar's),
or by name.
"""

from __future__ import annotations

import importlib
import json

DEFAULT_SOURCE = "finescale.hw.units:matrix"


def matrix(which: str = "default", source: str = DEFAULT_SOURCE) -> list:
    """The UnitSpecs of ``source`` for ``which`` ("default" | "all" | whatever it accepts)."""
    module, _, func = source.partition(":")
    if not func:
        raise ValueError(f"unit source {source!r} must read 'module:function'")
    return list(getattr(importlib.import_module(module), func)(which))


def find(name: str, source: str = DEFAULT_SOURCE, params: str | None = None):
    """The UnitSpec of ``params`` (JSON ``{"unit": ..., "params": {...}}``, as a sidecar
    holds them) or else the one called ``name`` in ``matrix("all")``."""
    if params:
        from finescale.hw.units import UnitSpec
        d = json.loads(params)
        return UnitSpec(d["unit"], d["params"])
    for spec in matrix("all", source):
        if spec.name == name:
            return spec
    raise KeyError(f"no unit named {name!r} in {source}")

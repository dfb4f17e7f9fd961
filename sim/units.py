"""Which units the regression runs: the hardware registry, or another that follows its contract.

``source`` is ``"module:function"``; the function takes ``which`` ("default" or
"all") and returns UnitSpecs.  The default is :func:`finescale.hw.units.matrix`.
The testbench, running in the simulator's process, gets the name back through
:func:`find` (plus an optional mutation for the regression's self-test).
"""

from __future__ import annotations

import dataclasses
import importlib

DEFAULT_SOURCE = "finescale.hw.units:matrix"


def matrix(which: str = "default", source: str = DEFAULT_SOURCE) -> list:
    """The UnitSpecs of ``source`` for ``which`` ("default" | "all" | whatever it accepts)."""
    module, _, func = source.partition(":")
    if not func:
        raise ValueError(f"unit source {source!r} must read 'module:function'")
    return list(getattr(importlib.import_module(module), func)(which))


def find(name: str, source: str = DEFAULT_SOURCE, mutation: str | None = None):
    """The UnitSpec called ``name`` (searched in ``matrix("all")``), optionally mutated."""
    for spec in matrix("all", source):
        if spec.name == name:
            return dataclasses.replace(spec, mutation=mutation) if mutation else spec
    raise KeyError(f"no unit named {name!r} in {source}")

"""Pipeline registers: one helper so every unit cuts its datapath the same way.

A unit built with ``pipelined=True`` puts a register (``sync`` domain: ports
``clk`` and ``rst``) at each cut its docstring names and accepts a new block
every cycle; ``pipelined=False`` makes the same cut a wire, so the unit is
combinational and has no clock.  ``valid`` travels beside the data through
the same cuts, so ``latency`` is the number of cuts.
"""

from __future__ import annotations

from amaranth.hdl import Signal

__all__ = ["cut", "check_flag", "Cuts"]


def cut(m, value, *, name: str, registered: bool):
    """A signal (of ``value``'s shape or layout) holding ``value`` one cycle later or at once."""
    sig = Signal(value.shape(), name=name)
    domain = m.d.sync if registered else m.d.comb
    domain += sig.eq(value)
    return sig


class Cuts:
    """Mixin of a unit whose pipelined variant registers at each of its ``CUTS``."""

    CUTS: tuple = ()

    @property
    def latency(self) -> int:
        """Cycles from the inputs to the outputs: one a cut when pipelined, none otherwise."""
        return len(self.CUTS) if self.pipelined else 0


def check_flag(name: str, value) -> bool:
    """A boolean parameter, refused unless it is exactly True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value

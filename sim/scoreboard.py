"""Scoreboard: lane packing and the bit-for-bit comparison against the golden model.

Ports carry lanes packed little-end first (lane i in bits [W*i+W-1 : W*i]).
:func:`pack` turns a (vectors, lanes) integer array into one Python int per
vector for driving; :func:`unpack` is its inverse for what was sampled.
:func:`check` computes the expected outputs with ``spec.reference`` in one
vectorised call and reports the first mismatches with their inputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .stimulus import input_dtype

#: outputs the testbench checks itself (handshake), not the reference
HANDSHAKE = ("valid_out",)


def pack(values: np.ndarray, lane_width: int) -> list[int]:
    """One int per row: lane i of ``values`` (vectors, lanes) in bits [W*i+W-1 : W*i]."""
    values = np.asarray(values)
    if values.ndim == 1:
        return [int(v) for v in values]
    acc = np.zeros(len(values), dtype=object)
    for i in range(values.shape[1]):
        acc |= values[:, i].astype(np.uint64).astype(object) << (lane_width * i)
    return acc.tolist()


def unpack(words, lanes: int | None, lane_width: int) -> np.ndarray:
    """Inverse of :func:`pack`: (vectors,) or (vectors, lanes) uint64."""
    words = np.asarray(list(words), dtype=object)
    if lanes is None:  # ports wider than 64 bits (an accumulator) stay Python ints
        return words.astype(np.uint64) if lane_width <= 64 else words
    mask = (1 << lane_width) - 1
    return np.stack([((words >> (lane_width * i)) & mask).astype(np.uint64)
                     for i in range(lanes)], axis=-1).reshape(len(words), lanes)


def _fmt(v) -> str:
    v = np.atleast_1d(np.asarray(v))
    return "[" + " ".join(f"0x{int(e):x}({int(e)})" for e in v.ravel()) + "]"


@dataclasses.dataclass
class Result:
    """What one check found."""

    vectors: int
    mismatches: int
    first: list[str]
    expected: dict
    got: dict

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


def check(spec, inputs: dict, words: dict, widths: dict, *, seed=None, show: int = 5) -> Result:
    """Compare sampled port words (port -> one int a vector, or the array :func:`unpack`
    would give) with ``spec.reference(inputs)``.

    ``widths`` gives each port's bit width; lanes come from the reference's
    shapes.  A vector mismatches when any lane of any port differs; the first
    ``show`` are described with their inputs in hex and decimal and the seed.
    """
    expected = {k: np.asarray(v) for k, v in spec.reference(inputs).items()
                if k not in HANDSHAKE}
    n = len(next(iter(inputs.values())))
    bad = np.zeros(n, bool)
    got = {}
    for port, exp in expected.items():
        if port not in words:
            raise KeyError(f"the reference of {spec.name} has output {port!r} the testbench "
                           "did not sample")
        lanes = exp.shape[1] if exp.ndim > 1 else None
        g = words[port]  # sampled ints, or arrays already unpacked (the harness's)
        if not isinstance(g, np.ndarray):
            g = unpack(g, lanes, widths[port] // (lanes or 1))
        got[port] = g
        bad |= (g != exp.astype(g.dtype)).reshape(n, -1).any(axis=1)
    first = []
    for i in np.flatnonzero(bad)[:show]:
        lines = [f"vector {i} of {spec.name} (seed {seed}) mismatches:"]
        lines += [f"  in  {p} = {_fmt(v[i])}" for p, v in inputs.items()]
        if "x" in inputs:  # the block as numbers too
            fdt, udt = input_dtype(spec.params.get("input_format", "bf16"))
            vals = np.asarray(inputs["x"][i]).astype(udt).view(fdt).astype(np.float64)
            lines.append("  in  x values = [" + " ".join(f"{v:.6g}" for v in vals) + "]")
        for p, exp in expected.items():
            g = got[p][i]
            mark = "" if np.array_equal(g, exp[i]) else "   <-- differs"
            lines.append(f"  out {p}: expected {_fmt(exp[i])} got {_fmt(g)}{mark}")
        first.append("\n".join(lines))
    return Result(vectors=n, mismatches=int(bad.sum()), first=first, expected=expected, got=got)

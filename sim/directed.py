"""Directed vectors learnt from SAT counterexamples: Yosys's model becomes stimulus.

When :mod:`.mutate` finds a mutant the regression misses and Yosys finds inputs
on which it differs from the unit (``sat ... -dump_json``, a WaveJSON trace),
:func:`from_trace` turns that trace into the unit's input vectors mechanically:
the time steps with ``valid_in`` high (and ``rst`` low) in order, ``beats`` of
them to a block, lane ports split into lanes by the sidecar's lane width,
scalar ports read at the block's first beat.  An accumulating unit's sequence
starts with a clear (a zero block) when the trace does not start with one, as
the trace starts from the reset state.

Only inputs are kept: :func:`learn` appends them to ``data/directed/<unit
name>.json`` of this package, with the mutation they came from, and
:func:`vectors` gives them back to :func:`.stimulus.for_spec`, which appends
them to the unit's stimulus; the expected outputs come from the golden model
like every other vector's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: where the learnt vectors live, one JSON file per unit name (``FINESCALE_DIRECTED``
#: overrides it, for tests)
STORE = Path(__file__).resolve().parent / "data" / "directed"


def _steps(signal: dict) -> list[int]:
    """A WaveJSON signal's value at each time step ('=' a new value from ``data``, '0'/'1'
    a one-bit value, '.' the last one, '4' first the initial-state column, '4' later the
    end; undefined bits read as 0)."""
    data, out, k = signal.get("data", []), [], 0
    for i, ch in enumerate(signal["wave"]):
        if ch == "4" and i == 0:  # a sequential model's first column: the initial state
            k += bool(data)
        elif ch == "=":
            bits = data[k]
            k += 1
            out.append(int("".join("1" if b == "1" else "0" for b in bits) or "0", 2))
        elif ch in "01x":  # a one-bit signal's value
            out.append(int(ch == "1"))
        elif ch == "." and out:
            out.append(out[-1])
        else:
            break
    return out


def from_trace(trace: dict, spec, sidecar: dict, *, prefix: str = "") -> dict | None:
    """The unit's input vectors (port -> array, the layout of ``spec.random_inputs``) from
    a WaveJSON trace of its input ports (named ``prefix + port``); None when it holds no
    complete block."""
    sig = {s["name"].lstrip("\\")[len(prefix):]: _steps(s) for s in trace.get("signal", [])
           if s.get("name", "").lstrip("\\").startswith(prefix)}
    probe = spec.random_inputs(np.random.default_rng(0), 1)
    if not all(p in sig for p in probe):
        return None
    steps = len(next(iter(sig.values())))
    valid = sig.get("valid_in", [1] * steps)
    rst = sig.get("rst", [0] * steps)
    beats = [t for t in range(steps) if valid[t] and not rst[t]]
    beats = beats[: len(beats) - len(beats) % spec.beats]
    if not beats:
        return None
    ports = {q["name"]: q for q in sidecar["ports"]}
    out = {}
    for p, v in probe.items():
        q = ports[p]
        if q["lanes"]:
            mask = (1 << q["lane_width"]) - 1
            lanes = [[(sig[p][t] >> (q["lane_width"] * i)) & mask for i in range(q["lanes"])]
                     for t in beats]
            out[p] = np.array(lanes, v.dtype).reshape(-1, v.shape[1])
        else:
            out[p] = np.array([sig[p][t] for t in beats[::spec.beats]], v.dtype)
    if spec.params.get("accumulate") and not out["acc_clear"][0]:
        head = {p: np.zeros((1, *v.shape[1:]), v.dtype) for p, v in out.items()}
        head["acc_clear"][0] = 1
        out = {p: np.concatenate([head[p], v]) for p, v in out.items()}
    return out


def _path(name: str, store: Path | None) -> Path:
    return Path(store or os.environ.get("FINESCALE_DIRECTED") or STORE) / f"{name}.json"


def learn(spec, inputs: dict, source: str, store: Path | None = None) -> bool:
    """Append ``inputs`` (with ``source``, e.g. the mutation) to the unit's directed vectors;
    False when the same vectors are there already."""
    path = _path(spec.name, store)
    entries = json.loads(path.read_text()) if path.exists() else []
    new = {p: np.asarray(v).tolist() for p, v in inputs.items()}
    if any(e["inputs"] == new for e in entries):
        return False
    entries.append({"source": source, "inputs": new})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n")
    return True


def vectors(spec, like: dict, store: Path | None = None) -> dict | None:
    """Every learnt vector of ``spec`` (by name) in the dtypes of ``like``, one sequence
    after the other; None when there are none."""
    path = _path(spec.name, store)
    if not path.exists():
        return None
    entries = json.loads(path.read_text())
    if not entries:
        return None
    return {p: np.concatenate([np.asarray(e["inputs"][p], v.dtype).reshape(-1, *v.shape[1:])
                               for e in entries]) for p, v in like.items()}


def agrees(spec, inputs: dict) -> bool:
    """Whether the unit as built (Amaranth's simulator, from reset) gives the golden model's
    bits on ``inputs``: a counterexample outside the model's domain is not stimulus."""
    from finescale.hw.simulate import simulate

    got = simulate(spec.build(), inputs, latency=spec.latency)
    want = spec.reference(inputs)
    ints = lambda a: [int(v) for v in np.asarray(a, dtype=object).ravel()]  # noqa: E731
    return all(ints(got[p]) == ints(want[p]) for p in want)

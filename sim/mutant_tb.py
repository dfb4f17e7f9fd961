"""The cocotb test of a mutant bundle: one design, every mutant selected by its ``mutsel`` input.

:mod:`.mutate` builds one Verilog design holding all of a unit's mutations, each
active when ``mutsel`` equals its index (0: the unit as emitted).  This test
generates the regression's stimulus once (:func:`.stimulus.for_spec`, the
golden model's expected outputs once), then for each index in
``FINESCALE_MUTANTS`` drives ``mutsel``, resets a clocked unit and runs the same
drivers and scoreboard as :mod:`.tb`, :data:`CHUNK` vectors at a time.  A
mutant is killed by a mismatch or a handshake error (and stops there).  The report lists every mutant; the test fails only when the
unmutated design (index 0) does not pass, since then no kill means anything.
"""

from __future__ import annotations

import json
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from . import scoreboard, stimulus, units
from .tb import TB, _env


#: vectors a mutant runs before it is checked; a killed mutant stops there
CHUNK = int(__import__("os").environ.get("FINESCALE_CHUNK", "1000"))


class _Expected:
    """``spec`` with given expected outputs (the reference is computed once, then sliced)."""

    def __init__(self, spec, expected):
        self.name, self.params, self.unit = spec.name, spec.params, spec.unit
        self._exp = expected

    def reference(self, inputs):
        return self._exp


def _chunks(inputs, expected, words, n):
    """(inputs, expected, words) of consecutive slices of ``n`` vectors."""
    total = len(next(iter(inputs.values())))
    for i in range(0, total, n):
        sl = slice(i, i + n)
        yield ({p: v[sl] for p, v in inputs.items()}, {p: v[sl] for p, v in expected.items()},
               {p: v[sl] for p, v in words.items()})


async def select_mutant(tb: TB, k: int) -> None:
    """Drive ``mutsel`` = k; a clocked unit is then reset for two cycles (valid low)."""
    tb.dut.mutsel.value = k
    tb.errors, tb.resets = [], 0
    if tb.clocked:
        tb.dut.rst.value = 1
        tb._valid(0)
        for _ in range(2):
            await FallingEdge(tb.dut.clk)
        tb.dut.rst.value = 0


@cocotb.test()
async def mutants(dut):
    """Every mutant of the bundle through the regression's stimulus and scoreboard."""
    spec = units.find(_env("SPEC"), _env("SOURCE", units.DEFAULT_SOURCE), _env("PARAMS"))
    seed, n = int(_env("SEED", "1")), int(_env("VECTORS", "300"))
    ids = [int(k) for k in _env("MUTANTS", "0").split(",")]
    inputs = stimulus.for_spec(spec, np.random.default_rng(seed), n)
    expected = {k: np.asarray(v) for k, v in spec.reference(inputs).items()}
    tb = TB(dut, spec)
    words = tb.words(inputs)
    await tb.start()
    results = []
    t0 = time.perf_counter()
    for k in [0] + [k for k in ids if k != 0]:
        await select_mutant(tb, k)
        done, bad, first = 0, 0, []
        for i, (ins, exp, wds) in enumerate(_chunks(inputs, expected, words, CHUNK)):
            if tb.clocked:
                # a chunk starts from reset, as the first, unless a reset would lose a running
                # sum the expected outputs carry on (an accumulator not cleared at its start)
                clears = ins.get("acc_clear")
                if i and (clears is None or clears[0]):
                    await tb.reset()
                got = await tb.run_stream(wds, random.Random(seed))
            else:
                got = await tb.run_comb(wds)
            res = scoreboard.check(_Expected(spec, exp), ins, got, tb.widths, seed=seed,
                                   show=1)
            done, bad, first = done + res.vectors, bad + res.mismatches, first or res.first
            if bad or tb.errors:
                break
        results.append({"mutant": k, "vectors": done, "mismatches": bad,
                        "protocol_errors": tb.errors[:3], "first": first[:1],
                        "killed": bool(bad or tb.errors)})
    report = {"name": spec.name, "unit": spec.unit, "params": spec.params, "seed": seed,
              "vectors": len(next(iter(inputs.values()))), "mutants": results,
              "latency": tb.latency, "mismatches": results[0]["mismatches"],
              "first_mismatches": results[0]["first"], "protocol_errors": results[0][
                  "protocol_errors"], "missed": {}, "summary": "", "seconds":
              time.perf_counter() - t0, "vectors_per_s": 0.0}
    with open(_env("REPORT", "finescale_report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    assert not results[0]["killed"], (f"{spec.name}: the unmutated design (mutsel=0) fails: "
                                      f"{results[0]['first'] or results[0]['protocol_errors']}")

"""The cocotb test of a mutant bundle: one design, every mutant selected by its ``mutsel`` input.

:mod:`.mutate` builds one Verilog design holding all of a unit's mutations, each
active when ``mutsel`` equals its index (0: the unit as emitted).  This test
generates the regression's stimulus once (:func:`.stimulus.for_spec`, the
golden model's expected outputs once), then for each index in
``FINESCALE_MUTANTS`` drives ``mutsel``, resets a clocked unit and runs the same
drivers and scoreboard as :mod:`.tb`.  A mutant is killed by a mismatch or a
handshake error.  The report lists every mutant; the test fails only when the
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


class _Expected:
    """``spec`` with its reference computed once (every mutant is checked against it)."""

    def __init__(self, spec, inputs):
        self.name, self.params, self.unit = spec.name, spec.params, spec.unit
        self._exp = spec.reference(inputs)

    def reference(self, inputs):
        return self._exp


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
    expected = _Expected(spec, inputs)
    tb = TB(dut, spec)
    words = tb.words(inputs)
    await tb.start()
    results = []
    t0 = time.perf_counter()
    for k in [0] + [k for k in ids if k != 0]:
        await select_mutant(tb, k)
        if tb.clocked:
            got = await tb.run_stream(words, random.Random(seed))
        else:
            got = await tb.run_comb(words)
        res = scoreboard.check(expected, inputs, got, tb.widths, seed=seed, show=1)
        results.append({"mutant": k, "vectors": res.vectors, "mismatches": res.mismatches,
                        "protocol_errors": tb.errors[:3], "first": res.first[:1],
                        "killed": bool(res.mismatches or tb.errors)})
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

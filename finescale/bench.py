"""``finescale bench``: throughput of the golden model and of the cocotb regression.

``bench golden``: every rate is reported next to the rate of ``x.copy()`` of
the same array, timed in the same run, because absolute numbers on shared
machines are noise; "ratio per CPU s" divides CPU seconds instead (all threads of
the process; with ``NUMBA_NUM_THREADS=1``, one core's efficiency, which load does not
change).  Each case runs on the array as 1-D and shaped 2-D (rows of
1024; ``--elements`` is a multiple of 1024).  Each figure is the best of
``--repeat`` runs after one warm-up (which also compiles the numba kernels).
Where torch and torchao are installed, the 2-D NVFP4 and MXFP4 rows also time
torchao's CPU path (``NVFP4Tensor.to_nvfp4`` with a per-tensor scale /
``MXTensor.to_mx``, then ``dequantize``) on the same data.
``--cold`` adds the first call of each case in a fresh process whose numba cache
(``NUMBA_CACHE_DIR``) is an empty folder: wall seconds and CPU seconds (the
figure that does not depend on other load), the import of finescale excluded.

``bench regress``: blocks a second through cocotb + Verilator for one unit of
every kind (E4M3 scales, blocks of 16, BF16; combinational and pipelined,
the dot product plain, in 4-lane beats and accumulating), checked by the same
scoreboard (``spec.reference`` on the whole batch).  The rate counts the
stimulus and response transfer and the simulation, not the Verilator build nor
the check; it is given per wall second and per CPU second of the simulator
process (one core; the figure that does not depend on other load).
``--per-cycle`` also runs the per-cycle drivers on every vector (the
regression before the harness) for comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: name -> (quantize options, bar: minimum ratio to the copy rate, torchao format or None)
GOLDEN_CASES = {
    "abs-max": (dict(recipe="paper-e4m3"), 0.25, None),
    "nvfp4": (dict(recipe="nvfp4"), 0.25, "nvfp4"),
    "mxfp4": (dict(recipe="mxfp4"), 0.25, "mxfp4"),
    "4o6": (dict(recipe="paper-e4m3-4o6"), 0.12, None),
    "brute-force": (dict(recipe="paper-e4m3-bf"), 0.02, None),
}


def best_time(fn, repeat: int, cpu: bool = False):
    """Best wall seconds of ``repeat`` calls after a warm-up; with ``cpu``, also the best
    CPU seconds of the process (all threads)."""
    fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return (best, best_cpu) if cpu else best


def torchao_call(fmt: str, x: np.ndarray):
    """torchao's CPU quantize + dequantize of x as a function, or None without torchao."""
    try:
        import torch
        from torchao.prototype.mx_formats.mx_tensor import MXTensor
        from torchao.prototype.mx_formats.nvfp4_tensor import (NVFP4Tensor,
                                                               per_tensor_amax_to_scale)
    except ImportError:
        return None
    t = torch.from_numpy(x)
    if fmt == "nvfp4":
        return lambda: NVFP4Tensor.to_nvfp4(
            t, per_tensor_scale=per_tensor_amax_to_scale(t.abs().max())).dequantize(torch.float32)
    return lambda: MXTensor.to_mx(t, torch.float4_e2m1fn_x2, 32).dequantize(torch.float32)


def bench_golden(n: int, repeat: int, seed: int = 0, cases=None, torchao=True) -> list[dict]:
    from tqdm import tqdm

    from finescale import golden

    flat = (np.random.default_rng(seed).standard_normal(n) * 0.01).astype(np.float32)
    shapes = {"1-D": flat, "2-D": flat.reshape(-1, 1024)}
    names = list(cases or GOLDEN_CASES)
    for name in names:  # warm up every case first: kernel compilation, thread pool, page faults
        golden.quantize(flat[:1024], **GOLDEN_CASES[name][0]).dequantize()
    rows = []
    for name, shape in tqdm([(c, s) for c in names for s in shapes], desc="bench golden",
                            unit="case"):
        x = shapes[shape]
        opts, bar, tao = GOLDEN_CASES[name]
        copy, copy_cpu = best_time(x.copy, max(repeat, 5), cpu=True)
        t, cpu = best_time(lambda: golden.quantize(x, **opts).dequantize(),
                           1 if name == "brute-force" else repeat, cpu=True)
        ref = torchao_call(tao, x) if tao and torchao and x.ndim == 2 else None
        t_ao = best_time(ref, repeat) if ref else None
        ratio = copy / t
        rows.append({"case": name, "shape": shape, "options": opts, "elements": n, "seconds": t,
                     "elements_per_s": n / t, "copy_elements_per_s": n / copy,
                     "ratio_to_copy": ratio, "bar": bar, "pass": ratio >= bar,
                     "cpu_ratio_to_copy": copy_cpu / cpu,
                     "torchao_elements_per_s": n / t_ao if t_ao else None})
    return rows


_COLD = """
import json, sys, time
import numpy as np
from finescale import golden
x = (np.random.default_rng(0).standard_normal(4096) * 0.01).astype(np.float32)
t, c = time.perf_counter(), time.process_time()
golden.quantize(x, **json.loads(sys.argv[1])).dequantize()
print(json.dumps([time.perf_counter() - t, time.process_time() - c]))
"""


def bench_cold(cases=None) -> list[dict]:
    """First call of each case in a fresh process with an empty numba cache."""
    from tqdm import tqdm

    rows = []
    for name in tqdm(list(cases or GOLDEN_CASES), desc="first calls", unit="case"):
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run([sys.executable, "-c", _COLD, json.dumps(GOLDEN_CASES[name][0])],
                                 env=dict(os.environ, NUMBA_CACHE_DIR=cache), check=True,
                                 capture_output=True, text=True).stdout
        wall, cpu = json.loads(out.splitlines()[-1])
        rows.append({"case": name, "options": GOLDEN_CASES[name][0], "first_call_s": wall,
                     "first_call_cpu_s": cpu})
    return rows


#: unit kinds of ``bench regress``: name -> (unit, parameters); E4M3, blocks of 16, BF16
REGRESS_CASES = {
    "scale": ("scale", {}), "scale pipelined": ("scale", {"pipelined": True}),
    "element": ("element", {}), "element pipelined": ("element", {"pipelined": True}),
    "quantizer": ("quantizer", {}), "quantizer pipelined": ("quantizer", {"pipelined": True}),
    "4o6": ("4o6", {}), "4o6 pipelined": ("4o6", {"pipelined": True}),
    "dot": ("dot", {}), "dot pipelined": ("dot", {"stages": 4}),
    "dot 4 lanes": ("dot", {"lanes": 4}), "dot 4 lanes pipelined": ("dot", {"lanes": 4, "stages": 4}),
    "dot Kulisch": ("dot", {"accumulate": True}),
    "dot Kulisch pipelined": ("dot", {"accumulate": True, "stages": 4}),
}


def regress_units(which: str = "all") -> list:
    """The UnitSpecs of :data:`REGRESS_CASES` (a unit source for :mod:`finescale.sim.units`)."""
    from finescale.hw.units import spec
    return [spec(u, scale_format="e4m3", block_size=16, **p) for u, p in REGRESS_CASES.values()]


def bench_regress(vectors: int, *, cases=None, per_cycle=False, build_root="sim_build/bench",
                  seed=1) -> list[dict]:
    """One row per unit kind (and path): blocks, seconds, blocks/s (wall and CPU), build time."""
    from tqdm import tqdm

    from finescale.sim import runner

    source = f"{__name__}:regress_units"
    names = list(cases or REGRESS_CASES)
    specs = dict(zip(REGRESS_CASES, regress_units()))
    paths = [True, False] if per_cycle else [True]
    rows = []
    for name, harness in tqdm([(n, h) for n in names for h in paths], desc="bench regress",
                              unit="run"):
        root = Path(build_root) / ("harness" if harness else "per-cycle")
        rep = runner.run_unit(specs[name], vectors=vectors, seed=seed, source=source,
                              build_root=root, harness=harness)
        rows.append({"case": name, "unit": rep["name"], "path": "harness" if harness else
                     "per-cycle", "blocks": rep["vectors"], "seconds": rep["seconds"],
                     "blocks_per_s": rep["vectors_per_s"], "cpu_s": rep["cpu_s"],
                     "blocks_per_cpu_s": rep["vectors_per_cpu_s"], "build_s": rep["build_s"],
                     "passed": bool(rep["passed"] and not rep["mismatches"])})
    return rows


def markdown_regress(rows) -> str:
    lines = ["| unit kind | top | path | blocks | blocks/s (wall) | blocks/s (CPU) | build s | "
             "pass |", "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['unit']} | {r['path']} | {r['blocks']} | "
                     f"{r['blocks_per_s']:,.0f} | {r['blocks_per_cpu_s']:,.0f} | "
                     f"{r['build_s']:.1f} | {'yes' if r['passed'] else 'NO'} |")
    return "\n".join(lines)


def markdown(rows) -> str:
    lines = ["| case | shape | quantize+dequantize (Melem/s) | numpy copy (Melem/s) | ratio | bar "
             "| ratio per CPU s | torchao CPU (Melem/s) |",
             "|---|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        tao = r["torchao_elements_per_s"]
        lines.append(f"| {r['case']} | {r['shape']} | {r['elements_per_s'] / 1e6:.1f} | "
                     f"{r['copy_elements_per_s'] / 1e6:.0f} | {r['ratio_to_copy']:.4f} | "
                     f"{'>=' if r['pass'] else '<'} {r['bar']} | {r['cpu_ratio_to_copy']:.4f} | "
                     f"{'' if tao is None else f'{tao / 1e6:.1f}'} |")
    return "\n".join(lines)


def markdown_cold(rows) -> str:
    lines = ["| case | first call, fresh process, empty cache (s) | CPU s |", "|---|---:|---:|"]
    lines += [f"| {r['case']} | {r['first_call_s']:.2f} | {r['first_call_cpu_s']:.2f} |"
              for r in rows]
    return "\n".join(lines)

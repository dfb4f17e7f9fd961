"""Row-parallel execution of the compiled kernels on a thread pool.

The kernels are plain ``nogil`` numba functions over a row range ``(lo, hi)``
(no ``parallel=True``: its compilation costs seconds a kernel), so Python
threads run them side by side.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

#: rows (blocks) a task takes; below ``2 * CHUNK`` rows a call runs on the caller's thread
CHUNK = 8192
_POOL: dict = {}  # process id -> executor (a forked child has none of its parent's threads)


def threads() -> int:
    """Worker threads: NUMBA_NUM_THREADS, else the CPUs this process may use."""
    n = os.environ.get("NUMBA_NUM_THREADS")
    if n:
        return max(1, int(n))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run_rows(kernel, nrows: int, *args) -> None:
    """``kernel(lo, hi, *args)`` over row ranges that cover ``range(nrows)``."""
    nt = threads()
    if nt == 1 or nrows < 2 * CHUNK:
        kernel(0, nrows, *args)
        return
    pid = os.getpid()
    if pid not in _POOL:
        _POOL.clear()
        _POOL[pid] = ThreadPoolExecutor(nt, thread_name_prefix="finescale-kernel")
    step = max(CHUNK, -(-nrows // (4 * nt)))  # a few tasks a thread: balance under load
    jobs = [_POOL[pid].submit(kernel, lo, min(nrows, lo + step), *args)
            for lo in range(0, nrows, step)]
    for j in jobs:
        j.result()

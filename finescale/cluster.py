"""Where sweeps run: a Dask client, and a map over it with a tqdm progress bar.

``jobs=1`` without a scheduler runs the jobs here, one after another (no Dask); ``jobs=N`` starts a
``distributed.LocalCluster`` of N worker processes with one thread each; ``scheduler=ADDRESS``
sends the jobs to a running Dask cluster (``dask scheduler`` + ``dask worker``, or
``dask-jobqueue`` on Slurm), whose workers must be able to import finescale.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

from tqdm import tqdm


def _local_cluster(jobs: int):
    """A ``LocalCluster`` of ``jobs`` one-thread worker processes, without the workers'
    statistical profiler (it samples the running task's frames every 10 ms, which costs CPU and
    can keep a task's locals alive past their last use: a report's worker once printed
    Amaranth's 'created but never used' of a component built only to read its signature)."""
    import dask
    from distributed import LocalCluster
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                            dashboard_address=":0")


@contextlib.contextmanager
def client(jobs: int = 1, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client`` (None for ``jobs=1`` without a scheduler), closed on exit."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if scheduler is None and jobs == 1:
        yield None
        return
    from distributed import Client
    if scheduler is not None:
        with Client(scheduler) as c:
            yield c
        return
    with _local_cluster(jobs) as cluster, Client(cluster) as c:
        yield c


@contextlib.contextmanager
def local(jobs: int) -> Iterator[str | None]:
    """The address of a ``LocalCluster`` of ``jobs`` one-thread worker processes, for several
    sweeps to share (pass it as ``scheduler``); None for ``jobs=1``.  Closed on exit."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1:
        yield None
        return
    with _local_cluster(jobs) as cluster:
        yield cluster.scheduler_address


def as_completed(fn: Callable, items: Iterable, *, jobs: int = 1, scheduler: str | None = None,
                 desc: str = "jobs", unit: str = "job", progress: bool = True,
                 priority: int = 0) -> Iterator:
    """(index, fn(item)) for every item as each finishes, with a progress bar; on a cluster
    shared by several sweeps, tasks of a higher ``priority`` start first."""
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress)
    try:
        with client(jobs, scheduler) as c:
            if c is None:
                for i, item in enumerate(items):
                    yield i, fn(item)
                    bar.update()
                return
            from distributed import as_completed as completed
            futures = c.map(fn, items, pure=False, priority=priority)
            index = {f.key: i for i, f in enumerate(futures)}
            for fut in completed(futures):
                yield index[fut.key], fut.result()
                bar.update()
    finally:
        bar.close()


def map_progress(fn: Callable, items: Iterable, **kwargs) -> list:
    """``[fn(item) for item in items]`` through :func:`as_completed`, results in input order."""
    items = list(items)
    out = [None] * len(items)
    for i, result in as_completed(fn, items, **kwargs):
        out[i] = result
    return out

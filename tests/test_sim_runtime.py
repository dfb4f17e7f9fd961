"""The Verilator runtime objects are compiled once: parallel builds on an empty cache wait for
the first to store them (:func:`finescale.sim.runner._runtime_once`), and stored files appear
whole (written under a temporary name, then renamed)."""

import threading
import time

from finescale.sim import runner

FILES = [f"{o}{ext}" for o in runner.RUNTIME_OBJECTS for ext in (".o", ".d")]


def _store(build, cache):
    build.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        (build / f).write_text(f)
    runner._share_runtime(build, cache, store=True)


def test_a_second_build_waits_for_the_first_to_store_the_runtime(tmp_path):
    cache = tmp_path / ".runtime"
    events = []
    first_in = threading.Event()

    def first():
        with runner._runtime_once(cache):
            first_in.set()
            time.sleep(0.5)  # compiling the runtime
            _store(tmp_path / "a", cache)
            events.append("first stored")

    def second():
        first_in.wait()
        with runner._runtime_once(cache):
            events.append("second built")
            assert all((cache / f).is_file() for f in FILES)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events == ["first stored", "second built"]
    assert not list(cache.glob("*.part"))
    # a build on a complete cache takes it without the lock
    lock = tmp_path / ".runtime.lock"
    lock.unlink()
    with runner._runtime_once(cache):
        runner._share_runtime(tmp_path / "b", cache, store=False)
    assert not lock.exists()
    assert [(tmp_path / "b" / f).read_text() for f in FILES] == FILES
    assert (tmp_path / "b" / FILES[0]).stat().st_mtime > time.time() + 3600  # kept by make


def test_an_empty_build_leaves_the_cache_empty(tmp_path):
    """A build that failed (no runtime objects) stores nothing."""
    cache = tmp_path / ".runtime"
    with runner._runtime_once(cache):
        runner._share_runtime(tmp_path / "failed", cache, store=True)
    assert not cache.exists() or not any(cache.iterdir())

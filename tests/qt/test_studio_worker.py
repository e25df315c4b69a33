"""The QThreadPool worker: results and failures carry request ids; cancel is cooperative."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from liverseg_studio.core.errors import CancelledError
from liverseg_studio.qt.worker import TaskRunner, Worker, WorkerFailure, WorkerResult

pytestmark = pytest.mark.timeout(60)


def test_returned_carries_request_id_and_progress(qtbot: Any) -> None:
    runner = TaskRunner(1)

    def job(n: int, *, progress: Any, is_cancelled: Any) -> int:
        for i in range(n):
            progress(i + 1, n)
        return n * 2

    w = Worker(job, 3, kind="test")
    seen: list[tuple[int, int, int]] = []
    w.signals.progress.connect(lambda rid, d, t: seen.append((rid, d, t)))
    with qtbot.waitSignal(w.signals.finished, timeout=5000):
        with qtbot.waitSignal(w.signals.returned, timeout=5000) as blocker:
            runner.start(w)
    res = blocker.args[0]
    assert isinstance(res, WorkerResult)
    assert (res.request_id, res.kind, res.value) == (w.request_id, "test", 6)
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=2000)
    assert seen[-1] == (w.request_id, 3, 3)
    with pytest.raises(Exception):
        res.value = 1  # frozen
    assert runner.join(5)


def test_errors_arrive_as_failures(qtbot: Any) -> None:
    runner = TaskRunner(1)

    def boom(*, progress: Any, is_cancelled: Any) -> None:
        raise ValueError("bad input")

    w = Worker(boom)
    with qtbot.waitSignal(w.signals.errored, timeout=5000) as blocker:
        runner.start(w)
    f = blocker.args[0]
    assert isinstance(f, WorkerFailure) and f.request_id == w.request_id
    assert isinstance(f.error, ValueError) and not f.cancelled and "bad input" in f.traceback
    runner.join(5)


def test_cancel_is_cooperative_and_join_waits(qtbot: Any) -> None:
    runner = TaskRunner(1)
    started = threading.Event()

    def slow(*, progress: Any, is_cancelled: Any) -> str:
        started.set()
        while not is_cancelled():
            time.sleep(0.01)
        raise CancelledError("stopped")

    w1 = Worker(slow)
    w2 = Worker(lambda **_: "second")
    failures: list = []
    results: list = []
    w1.signals.errored.connect(failures.append)
    w2.signals.returned.connect(results.append)
    runner.start(w1)
    runner.start(w2)  # queued behind w1 (one thread)
    assert started.wait(5)
    assert runner.is_busy() and not w2.is_done()
    w1.cancel()
    assert runner.join(5)
    assert w1.is_done() and w2.is_done()
    qtbot.waitUntil(lambda: bool(failures and results), timeout=2000)
    assert failures[0].cancelled and results[0].value == "second"


def test_shutdown_cancels_running_work(qtbot: Any) -> None:
    runner = TaskRunner(1)
    started = threading.Event()

    def forever(*, progress: Any, is_cancelled: Any) -> None:
        started.set()
        while not is_cancelled():
            time.sleep(0.01)
        raise CancelledError("stopped")

    w = Worker(forever)
    runner.start(w)
    assert started.wait(5)
    t0 = time.perf_counter()
    assert runner.shutdown(5)
    assert w.is_done() and time.perf_counter() - t0 < 2


def test_worker_drops_its_inputs_after_running(qtbot: Any) -> None:
    import gc
    import weakref

    class Big:
        pass

    big = Big()
    ref = weakref.ref(big)
    runner = TaskRunner(1)
    w = Worker(lambda obj, **_: None, big)
    del big
    with qtbot.waitSignal(w.signals.finished, timeout=5000):
        runner.start(w)
    runner.join(5)
    gc.collect()
    assert ref() is None

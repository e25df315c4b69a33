"""Background work for the studio: a QThreadPool worker shaped like superqt's.

A :class:`Worker` is a ``QRunnable`` that calls a plain Python function in a
pool thread.  It cannot emit signals itself (``QRunnable`` is not a
``QObject``), so it owns a separate :class:`WorkerSignals` object with
``started``, ``progress``, ``returned``, ``errored`` and ``finished``.

Every job carries a *request id*.  Results and failures arrive as frozen
dataclasses (:class:`WorkerResult`, :class:`WorkerFailure`) that carry that id,
so the receiver can drop a stale answer (the user opened another image, or
started another run, in the meantime).

Cancellation is cooperative: :meth:`Worker.cancel` sets a flag that the
function polls through the ``is_cancelled`` callable it is given (the backends
poll it between batches and raise
:class:`~liverseg_studio.core.errors.CancelledError`).

:class:`TaskRunner` owns a private ``QThreadPool``, keeps the Python workers
alive until they finish (PySide would otherwise garbage-collect them) and can
cancel and join everything when the window closes.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from liverseg_studio.core.errors import CancelledError

_ids = itertools.count(1)


def next_request_id() -> int:
    """A process-wide increasing request id."""
    return next(_ids)


@dataclass(frozen=True)
class WorkerResult:
    """The value a job returned, tagged with its request id and kind."""

    request_id: int
    kind: str
    value: Any


@dataclass(frozen=True)
class WorkerFailure:
    """A job that raised (or was cancelled), tagged with its request id and kind."""

    request_id: int
    kind: str
    error: BaseException
    traceback: str
    cancelled: bool = False


class WorkerSignals(QObject):
    """Signals of one :class:`Worker` (a separate QObject, as superqt does)."""

    #: request id
    started = Signal(int)
    #: request id, done, total
    progress = Signal(int, int, int)
    #: :class:`WorkerResult`
    returned = Signal(object)
    #: :class:`WorkerFailure`
    errored = Signal(object)
    #: request id; always emitted last, after ``returned`` or ``errored``
    finished = Signal(int)


class Worker(QRunnable):
    """Run ``fn(*args, progress=..., is_cancelled=..., **kwargs)`` in a pool thread.

    ``fn`` receives two keyword callables: ``progress(done, total)`` which
    emits :attr:`WorkerSignals.progress`, and ``is_cancelled()`` which returns
    True once :meth:`cancel` was called.  Set ``pass_callbacks=False`` for
    functions that take neither.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        request_id: int | None = None,
        kind: str = "job",
        pass_callbacks: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the TaskRunner owns the Python object
        self.signals = WorkerSignals()
        self.request_id = next_request_id() if request_id is None else int(request_id)
        self.kind = kind
        self._fn: Callable[..., Any] | None = fn
        self._args: tuple[Any, ...] = args
        self._kwargs: dict[str, Any] = kwargs
        self._pass_callbacks = pass_callbacks
        self._cancel = threading.Event()
        self._done = threading.Event()

    # -- control ---------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at its next ``is_cancelled()`` poll."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    def _progress(self, done: int, total: int) -> None:
        self.signals.progress.emit(self.request_id, int(done), int(total))

    # -- QRunnable -------------------------------------------------------------
    def run(self) -> None:  # noqa: D102 - runs in the pool thread
        rid, kind = self.request_id, self.kind
        try:
            self.signals.started.emit(rid)
            fn, args, kwargs = self._fn, self._args, dict(self._kwargs)
            if fn is None:  # pragma: no cover - run twice
                raise RuntimeError("worker already ran")
            if self._cancel.is_set():
                raise CancelledError("cancelled before it started")
            if self._pass_callbacks:
                kwargs["progress"] = self._progress
                kwargs["is_cancelled"] = self.is_cancelled
            value = fn(*args, **kwargs)
            del fn, args, kwargs
            if self._cancel.is_set():
                # finished anyway, but the user no longer wants it
                raise CancelledError("cancelled")
            self.signals.returned.emit(WorkerResult(rid, kind, value))
            del value
        except BaseException as exc:  # noqa: BLE001 - every failure goes to one place
            tb = traceback.format_exc()
            # drop the frames: they would keep the job's inputs (a whole CT volume) alive
            if exc.__traceback__ is not None:
                traceback.clear_frames(exc.__traceback__)
            exc = exc.with_traceback(None)
            cancelled = isinstance(exc, CancelledError) or self._cancel.is_set()
            self.signals.errored.emit(WorkerFailure(rid, kind, exc, tb, cancelled))
        finally:
            # free the inputs as soon as the job is over
            self._fn, self._args, self._kwargs = None, (), {}
            self._done.set()
            self.signals.finished.emit(rid)


class TaskRunner(QObject):
    """A private thread pool that keeps its workers alive and can join them.

    ``max_threads=1`` makes the pool a queue: a job started while another runs
    waits until the first one has finished (after being cancelled, say).
    """

    def __init__(self, max_threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, int(max_threads)))
        self._active: dict[int, Worker] = {}
        self._lock = threading.Lock()

    def start(self, worker: Worker) -> Worker:
        """Queue ``worker``; it is forgotten after its ``finished`` signal."""
        with self._lock:
            self._active[worker.request_id] = worker
        worker.signals.finished.connect(self._forget)
        self.pool.start(worker)
        return worker

    def _forget(self, request_id: int) -> None:
        with self._lock:
            self._active.pop(request_id, None)

    def active(self) -> list[Worker]:
        """Workers queued or running (not yet finished)."""
        with self._lock:
            return [w for w in self._active.values() if not w.is_done()]

    def is_busy(self) -> bool:
        return bool(self.active())

    def cancel_all(self) -> None:
        for w in self.active():
            w.cancel()

    def join(self, timeout_s: float = 30.0) -> bool:
        """Wait for every started worker to finish; True when all did in time."""
        ok = self.pool.waitForDone(int(timeout_s * 1000))
        with self._lock:
            self._active = {k: w for k, w in self._active.items() if not w.is_done()}
        return bool(ok)

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel everything, then join; used when the window closes."""
        self.pool.clear()  # queued jobs that never started
        self.cancel_all()
        return self.join(timeout_s)

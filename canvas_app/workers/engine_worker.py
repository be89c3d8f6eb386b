"""The bridge between the GUI thread and the engine: one long-lived QThread.

The engine is built inside the thread by a factory, so importing this module (and starting the
window) never imports torch. Requests wait in a FIFO queue; events reach the GUI as queued Qt
signals. Step previews are coalesced per (request, tile): when the GUI is slower than the engine,
stale previews are dropped instead of piling up in the event queue.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Engine,
    EngineEvent,
    Failed,
    Finished,
    GenerationRequest,
    Loading,
    Progress,
    Started,
)

EngineFactory = Callable[[], Engine]


@dataclass
class _Job:
    request_id: int
    request: GenerationRequest | None
    token: CancelToken
    # A non-generation job (model preload): called with the engine, in the worker thread.
    call: Callable[[Engine], Any] | None = None
    label: str = ""
    # A switch to a new engine (another device): built in the worker thread, replacing the old one.
    factory: EngineFactory | None = None


class _Thread(QThread):
    def __init__(self, worker: EngineWorker) -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:  # runs in the worker thread
        self._worker._thread_main()


class EngineWorker(QObject):
    """Owns one engine in a background thread. All public methods are called from the GUI thread.

    Signals carry the engine's event objects (``Loading``, ``Started``, ``Progress``, ``Finished``,
    ``Cancelled``, ``Failed``); they are emitted from the worker thread and delivered queued.
    """

    loading = Signal(object)  # Loading: the model loads / inputs are prepared (before Started)
    started = Signal(object)
    progress = Signal(object)
    finished = Signal(object)
    cancelled = Signal(object)
    failed = Signal(object)
    engine_ready = Signal(str)  # device description
    engine_error = Signal(str)  # the factory raised: a readable message
    queue_changed = Signal(int)  # number of jobs waiting or running
    task_started = Signal(int, str)  # background call (model load) began: id, label
    task_done = Signal(int, str, str)  # id, label, error message ("" when it worked)
    _progress_ready = Signal()

    def __init__(self, factory: EngineFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._current: _Job | None = None
        self._stopping = False
        self._engine: Engine | None = None
        self._engine_error = ""
        self._pending_progress: dict[tuple[int, int], Progress] = {}
        self._progress_signalled = False
        self._thread = _Thread(self)
        self._progress_ready.connect(self._drain_progress)
        self.device = ""
        self.last_run_seconds = 0.0

    # -- GUI-thread API ------------------------------------------------------------------------
    def start(self) -> None:
        if not self._thread.isRunning():
            self._thread.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._current is not None or bool(self._queue)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._queue) + (1 if self._current is not None else 0)

    def submit(self, request: GenerationRequest) -> int:
        """Queue a request; returns its id. Events for it carry the same id."""
        return self._enqueue(_Job(next(self._ids), request, CancelToken()))

    def submit_call(self, call: Callable[[Engine], Any], label: str) -> int:
        """Queue ``call(engine)`` (e.g. loading a model) behind the generations already queued."""
        return self._enqueue(_Job(next(self._ids), None, CancelToken(), call=call, label=label))

    def replace_engine(self, factory: EngineFactory, label: str = "Starting the engine") -> int | None:
        """Use a new engine (e.g. on another device) from now on, without a restart: the runs
        already queued finish first; the old engine and its models are dropped. ``engine_ready``
        or ``engine_error`` reports the new one. Returns the task id (None: not started yet, the
        new factory is simply used at the start)."""
        if not self._thread.isRunning():
            self._factory = factory
            return None
        return self._enqueue(_Job(next(self._ids), None, CancelToken(), label=label, factory=factory))

    def cancel(self, request_id: int) -> bool:
        """Cancel a queued or running request. A running one stops within one engine step."""
        dropped: _Job | None = None
        with self._lock:
            if self._current is not None and self._current.request_id == request_id:
                self._current.token.cancel()
                return True
            for job in self._queue:
                if job.request_id == request_id:
                    dropped = job
                    break
            if dropped is None:
                return False
            self._queue.remove(dropped)
            count = len(self._queue) + (1 if self._current else 0)
        self.cancelled.emit(Cancelled(request_id, 0))
        self.queue_changed.emit(count)
        return True

    def cancel_all(self) -> None:
        with self._lock:
            ids = [j.request_id for j in self._queue if j.request is not None]
            current = self._current
        for rid in ids:
            self.cancel(rid)
        if current is not None:
            current.token.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything and stop the thread. Returns True when the thread has ended."""
        with self._lock:
            self._stopping = True
            self._queue.clear()
            if self._current is not None:
                self._current.token.cancel()
            self._lock.notify_all()
        if not self._thread.isRunning():
            return True
        return bool(self._thread.wait(timeout_ms))

    # -- internals -------------------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> int:
        with self._lock:
            if self._stopping:
                raise RuntimeError("the engine worker has been shut down")
            self._queue.append(job)
            count = len(self._queue) + (1 if self._current else 0)
            self._lock.notify_all()
        self.queue_changed.emit(count)
        self.start()
        return job.request_id

    def _drain_progress(self) -> None:
        with self._lock:
            events = list(self._pending_progress.values())
            self._pending_progress.clear()
            self._progress_signalled = False
        for event in events:
            self.progress.emit(event)

    def _emit(self, event: EngineEvent) -> None:
        """Called by the engine in the worker thread."""
        if isinstance(event, Progress):
            with self._lock:
                self._pending_progress[(event.request_id, event.tile)] = event
                if self._progress_signalled:
                    return
                self._progress_signalled = True
            self._progress_ready.emit()
            return
        if isinstance(event, Loading):
            self.loading.emit(event)
        elif isinstance(event, Started):
            self.started.emit(event)
        elif isinstance(event, Finished):
            self.finished.emit(event)
        elif isinstance(event, Cancelled):
            self.cancelled.emit(event)
        elif isinstance(event, Failed):
            self.failed.emit(event)

    def _build_engine(self) -> None:
        try:
            self._engine = self._factory()
            self.device = self._engine.describe_device()
            self.engine_ready.emit(self.device)
        except Exception as exc:  # any failure must become a message, not a dead thread
            self._engine_error = f"The engine could not start: {exc}"
            traceback.print_exc()
            self.engine_error.emit(self._engine_error)

    def _thread_main(self) -> None:
        self._build_engine()
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                self._current = job
            try:
                self._run_job(job)
            finally:
                with self._lock:
                    self._current = None
                    count = len(self._queue)
                self.queue_changed.emit(count)

    def _run_job(self, job: _Job) -> None:
        if job.factory is not None:
            self.task_started.emit(job.request_id, job.label)
            self._factory, self._engine, self._engine_error = job.factory, None, ""
            self._build_engine()
            self.task_done.emit(job.request_id, job.label, self._engine_error)
            return
        if job.call is not None:
            self.task_started.emit(job.request_id, job.label)
            error = ""
            if self._engine is None:
                error = self._engine_error
            else:
                try:
                    job.call(self._engine)
                except Exception as exc:
                    error = str(exc) or type(exc).__name__
            self.task_done.emit(job.request_id, job.label, error)
            return
        assert job.request is not None
        if self._engine is None:
            self.failed.emit(Failed(job.request_id, self._engine_error))
            return
        if job.token.cancelled:
            self.cancelled.emit(Cancelled(job.request_id, 0))
            return
        t0 = time.perf_counter()
        try:
            self._engine.generate(job.request, self._emit, job.token, job.request_id)
        except Exception as exc:  # the protocol says engines never raise; guard anyway
            traceback.print_exc()
            self.failed.emit(Failed(job.request_id, f"Generation failed: {exc}"))
        self.last_run_seconds = time.perf_counter() - t0

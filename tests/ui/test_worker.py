"""The engine worker thread: queueing, relaying events, cancelling, shutting down."""

from __future__ import annotations

import threading

import pytest
from fake_engine import FakeEngine

from canvas_app.engine.api import Cancelled, Failed, Finished, GenerationRequest, Progress, Started
from canvas_app.workers import EngineWorker


@pytest.fixture
def worker(qtbot):
    engine = FakeEngine(step_delay=0.005)
    w = EngineWorker(lambda: engine)
    w.engine = engine
    events = []
    for sig in (w.started, w.progress, w.finished, w.cancelled, w.failed):
        sig.connect(events.append)
    w.events = events
    yield w
    assert w.shutdown(5000)


def test_generation_events_arrive_in_order_on_gui_thread(qtbot, worker):
    seen_threads = set()
    worker.finished.connect(lambda ev: seen_threads.add(threading.current_thread()))
    # Listen before submitting: the worker thread may emit before a later connection exists.
    with qtbot.waitSignal(worker.finished, timeout=5000):
        rid = worker.submit(GenerationRequest(width=256, height=128, steps=3, seed=5, batch=2))
    assert seen_threads == {threading.main_thread()}
    kinds = [type(e) for e in worker.events]
    assert kinds[0] is Started and kinds[-1] is Finished
    assert Progress in kinds
    assert {e.request_id for e in worker.events} == {rid}
    done = worker.events[-1]
    assert done.seeds == [5, 6] and done.candidates[0].shape == (128, 256, 3)
    # Both tiles of the 256-wide run streamed previews.
    assert {e.tile for e in worker.events if isinstance(e, Progress)} == {0, 1}


def test_cancel_running_request_stops_within_a_step(qtbot, worker):
    worker.engine.step_delay = 0.05
    with qtbot.waitSignal(worker.started, timeout=5000):
        rid = worker.submit(GenerationRequest(steps=200))
    with qtbot.waitSignal(worker.cancelled, timeout=2000) as blocker:
        worker.cancel(rid)
    assert isinstance(blocker.args[0], Cancelled) and blocker.args[0].step < 200
    assert not any(isinstance(e, Finished) for e in worker.events)


def test_cancel_queued_request_never_runs(qtbot, worker):
    worker.engine.gate = threading.Event()
    first = worker.submit(GenerationRequest(steps=2, prompt="first"))
    second = worker.submit(GenerationRequest(steps=2, prompt="second"))
    assert worker.pending_count() == 2
    assert worker.cancel(second)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.engine.gate.set()
    qtbot.wait(50)
    assert [r.prompt for r in worker.engine.requests] == ["first"]
    assert [e.request_id for e in worker.events if isinstance(e, Cancelled)] == [second]
    assert not worker.cancel(first)  # already done


def test_engine_failure_becomes_failed_event(qtbot, worker):
    worker.engine.fail_with = "out of memory"
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        worker.submit(GenerationRequest())
    assert isinstance(blocker.args[0], Failed) and "out of memory" in blocker.args[0].message


def test_factory_error_is_reported_and_requests_fail(qtbot):
    def broken():
        raise RuntimeError("no such device")

    w = EngineWorker(broken)
    with qtbot.waitSignal(w.engine_error, timeout=5000) as err:
        with qtbot.waitSignal(w.failed, timeout=5000) as failed:
            w.submit(GenerationRequest())
    assert "no such device" in err.args[0]
    assert "no such device" in failed.args[0].message
    assert w.shutdown(5000)


def test_background_call_reports_errors(qtbot, worker):
    with qtbot.waitSignal(worker.task_done, timeout=5000) as ok:
        worker.submit_call(lambda e: e.load("builtin"), "Loading builtin")
    assert ok.args[1:] == ["Loading builtin", ""]
    with qtbot.waitSignal(worker.task_done, timeout=5000) as bad:
        worker.submit_call(lambda e: e.load("missing-x"), "Loading x")
    assert "no model" in bad.args[2]


def test_shutdown_during_run_cancels_and_joins(qtbot, worker):
    worker.engine.step_delay = 0.05
    with qtbot.waitSignal(worker.started, timeout=5000):
        worker.submit(GenerationRequest(steps=500))
    assert worker.shutdown(3000)
    with pytest.raises(RuntimeError):
        worker.submit(GenerationRequest())

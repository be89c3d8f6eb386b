"""A queue of 50 mixed requests with random cancels through the real worker thread and the real
engine (a tiny random model): every request ends exactly once, in order, the worker stays alive,
no thread leaks and memory stays flat."""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from canvas_app.engine.api import GenerationRequest, Mode
from canvas_app.workers.engine_worker import EngineWorker

COUNT = 50


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def mixed_requests(tiny_sd: str, rng: random.Random) -> list[GenerationRequest]:
    init = np.random.default_rng(0).integers(0, 256, (64, 64, 4), dtype=np.uint8)
    init[..., 3] = 255
    hole = init.copy()
    hole[:, 40:, 3] = 0
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    base = GenerationRequest(prompt="a red house", model=tiny_sd, width=64, height=64, steps=2)
    kinds = [
        base,
        base.with_changes(mode=Mode.IMG2IMG, init_image=init[..., :3], strength=0.6),
        base.with_changes(mode=Mode.INPAINT, init_image=init, mask=mask),
        base.with_changes(mode=Mode.OUTPAINT, init_image=hole),
        base.with_changes(batch=2, prompt=""),
        base.with_changes(width=60),  # fails: not a multiple of 8
        base.with_changes(model=str(Path(tiny_sd).parent / "missing")),  # fails: no such model
        base.with_changes(mode=Mode.INPAINT, init_image=init, mask=np.zeros_like(mask)),  # fails: empty mask
    ]
    return [rng.choice(kinds).with_changes(seed=i) for i in range(COUNT)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_fifty_mixed_requests_with_random_cancels(qtbot, tiny_sd: str) -> None:
    from canvas_app.engine.local import LocalDiffusersEngine

    rng = random.Random(1234)
    threads_before = set(threading.enumerate())
    engine = LocalDiffusersEngine(device="cpu", preview_interval_s=0.0)
    worker = EngineWorker(lambda: engine)
    ended: list[tuple[int, str]] = []
    started: list[int] = []
    worker.started.connect(lambda e: started.append(e.request_id))
    for signal, name in (
        (worker.finished, "finished"),
        (worker.cancelled, "cancelled"),
        (worker.failed, "failed"),
    ):
        signal.connect(lambda e, name=name: ended.append((e.request_id, name)))

    # Warm up: the first request loads torch's kernels and the model; memory is measured after it.
    first = worker.submit(GenerationRequest(prompt="warm", model=tiny_sd, width=64, height=64, steps=2))
    qtbot.waitUntil(lambda: len(ended) == 1, timeout=300_000)
    assert ended == [(first, "finished")]
    rss_first = rss_mb()

    requests = mixed_requests(tiny_sd, rng)
    ids: list[int] = []
    for request in requests:
        ids.append(worker.submit(request))
        if rng.random() < 0.15:
            worker.cancel(rng.choice(ids))  # queued or running, or already done (then a no-op)
        if rng.random() < 0.3:
            qtbot.wait(rng.randint(1, 30))
    # A few cancels while the queue drains, at random moments.
    t0 = time.monotonic()
    while len(ended) < COUNT + 1:
        qtbot.wait(rng.randint(5, 60))
        if rng.random() < 0.2:
            worker.cancel(rng.choice(ids))
        assert time.monotonic() - t0 < 600, f"stuck: {len(ended)} of {COUNT + 1} ended"
    qtbot.wait(200)  # any stray event would arrive now

    outcome = dict(ended)
    assert len(ended) == len(outcome) == COUNT + 1, "a request ended twice"
    assert set(outcome) == {first, *ids}
    # The ones the engine ran ended in the order they were queued (a queued request cancelled
    # before its turn ends at once, out of the queue).
    ran = [rid for rid, _ in ended if rid in started]
    assert ran == sorted(ran) and started == sorted(started)
    kinds = {
        name: sum(1 for v in outcome.values() if v == name) for name in ("finished", "cancelled", "failed")
    }
    assert all(kinds.values()), kinds  # the mix produced all three endings
    for rid, request in zip(ids, requests, strict=True):
        if request.width == 60 or request.model.endswith("missing"):
            assert outcome[rid] in ("failed", "cancelled")

    # The worker is alive and correct after all that.
    last = worker.submit(
        GenerationRequest(prompt="after", model=tiny_sd, width=64, height=64, steps=2, seed=7)
    )
    qtbot.waitUntil(lambda: ended[-1][0] == last, timeout=120_000)
    assert ended[-1] == (last, "finished")
    rss_after = rss_mb()
    print(
        f"RSS after first request {rss_first:.0f} MB, after {COUNT + 2} requests {rss_after:.0f} MB; {kinds}"
    )
    assert rss_after - rss_first < 200, (rss_first, rss_after)

    assert worker.shutdown(30_000) and not worker._thread.isRunning()
    qtbot.wait(50)
    leaked = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not [t for t in leaked if not t.daemon and "pydevd" not in t.name], leaked

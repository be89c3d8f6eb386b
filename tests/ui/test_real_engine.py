"""The window driving the real LocalDiffusersEngine in its worker thread.

With the built-in model (skipped when ``resources/models/builtin`` is not installed) and with a tiny
random pipeline built on the spot (always runs), so the real engine path is covered either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ScriptedDialogs, drag, make_settings

from canvas_app.app import make_engine_factory
from canvas_app.ui.job_state import JobState
from canvas_app.ui.main_window import MainWindow
from canvas_app.workers import EngineWorker

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "resources" / "models" / "builtin"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    sys.path.insert(0, str(ROOT / "tests" / "engine"))
    from tiny_models import build_pipeline

    return str(build_pipeline(tmp_path_factory.mktemp("ui-tiny") / "sd4", vae_factor=4, unet_channels=4))


def real_window(qtbot, tmp_path) -> MainWindow:
    worker = EngineWorker(make_engine_factory("cpu", 0.0))
    window = MainWindow(worker, make_settings(tmp_path), dialogs=ScriptedDialogs())
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    return window


def run_frame(qtbot, window: MainWindow, model: str, size: int, steps: int) -> int:
    drag(window, "frame", [(0, 0), (size, size)])
    fid = window.ws.selected_frame_id
    window.ws.doc.update_frame(fid, model=model, steps=steps, prompt="a red house", seed=3)
    previews = []
    window.worker.progress.connect(lambda ev: previews.append(ev) if ev.preview is not None else None)
    rid = window.generate()
    qtbot.waitUntil(lambda: not window.gen.jobs[rid].state.active, timeout=600_000)
    job = window.gen.jobs[rid]
    assert job.state == JobState.FINISHED, job.message
    assert previews, "no step previews arrived"
    return rid


def close(window: MainWindow) -> None:
    window.io.dialogs.save_answers = ["discard"]
    window.close()
    # close() waits a while; on a loaded CPU one engine step can take longer than that.
    assert window.worker._thread.wait(180_000)


def test_tiny_real_engine_generate_cancel_accept(qtbot, tmp_path, tiny_model):
    window = real_window(qtbot, tmp_path)
    try:
        rid = run_frame(qtbot, window, tiny_model, 64, 2)
        fid = window.gen.jobs[rid].frame.id
        assert window.ws.scene.frame_items[fid].staged is not None
        patch = window.gen.accept(fid)
        assert patch is not None
        assert window.ws.doc.image.read(0, 0, 64, 64)[..., 3].min() == 255
        # Cancel a long run after its first step: it stops within a step. 1,000 steps keep even a
        # fast machine from finishing the run before the cancel arrives.
        window.ws.doc.update_frame(fid, steps=1000, strength=1.0)
        rid2 = window.gen.generate(fid)
        qtbot.waitUntil(lambda: window.gen.jobs[rid2].step >= 1, timeout=180_000)
        seen = window.gen.jobs[rid2].step
        # Listen before cancelling: the worker may report the cancel before a later connect.
        cancelled = []
        window.worker.cancelled.connect(cancelled.append)
        window.escape()
        qtbot.waitUntil(lambda: window.gen.jobs[rid2].state == JobState.CANCELLED, timeout=180_000)
        qtbot.waitUntil(lambda: bool(cancelled), timeout=10_000)
        assert seen <= cancelled[0].step < 1000  # stopped early, not at the end
    finally:
        close(window)


@pytest.mark.skipif(not (BUILTIN / "model_index.json").is_file(), reason="built-in model not installed")
def test_builtin_model_generates_into_frame(qtbot, tmp_path):
    window = real_window(qtbot, tmp_path)
    try:
        rid = run_frame(qtbot, window, "builtin", 128, 6)
        fid = window.gen.jobs[rid].frame.id
        patch = window.gen.accept(fid)
        assert patch is not None
        pixels = window.ws.doc.image.read(0, 0, 128, 128)
        assert pixels[..., 3].min() == 255
        assert np.std(pixels[..., :3].astype(np.float32)) > 5.0  # an image, not a flat fill
    finally:
        close(window)

"""End to end on the real built-in engine: a region drawn on the canvas and its prompt typed reach the
generation request, the staged result and the accepted patch's lineage (skipped without the model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import ScriptedDialogs, make_settings
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from canvas_app.app import make_engine_factory
from canvas_app.ui.job_state import JobState
from canvas_app.ui.main_window import MainWindow
from canvas_app.workers import EngineWorker

BUILTIN = Path(__file__).resolve().parents[2] / "resources" / "models" / "builtin"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BUILTIN / "model_index.json").is_file(), reason="built-in model not installed"),
]


def mouse_drag(qtbot, window, points) -> None:
    view = window.ws.view
    at = [view.mapFromScene(QPointF(*p)) for p in points]
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=at[0])
    for p in at[1:]:
        qtbot.mouseMove(view.viewport(), pos=p)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=at[-1])


def test_region_drawn_on_the_canvas_reaches_the_builtin_engine(qtbot, tmp_path):
    worker = EngineWorker(make_engine_factory("cpu", 0.0))
    window = MainWindow(worker, make_settings(tmp_path), dialogs=ScriptedDialogs())
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)  # keys go to the focused widget
    try:
        view = window.ws.view
        view.center_on_point(32, 32)
        # 1. A frame, its background prompt typed into the panel.
        window.tool_actions["frame"].trigger()
        mouse_drag(qtbot, window, [(0, 0), (32, 32), (64, 64)])  # small: seconds on a CPU
        fid = window.ws.selected_frame_id
        window.ws.doc.update_frame(fid, model="builtin", steps=3, seed=7)
        window.frame_panel.prompt.setFocus()
        qtbot.keyClicks(QApplication.focusWidget(), "blue sky, green hills")
        # 2. R, drag the left third: a region whose prompt field has the focus.
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_R)
        assert window.ws.tool_name == "region"
        mouse_drag(qtbot, window, [(0, 0), (10, 30), (21, 64)])
        qtbot.waitUntil(lambda: window.frame_panel.regions.prompt.hasFocus())
        qtbot.keyClicks(QApplication.focusWidget(), "a red house")
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
        (region,) = window.ws.doc.frame(fid).regions
        assert (region.rect, region.prompt) == ((0, 0, 24, 64), "a red house")
        # 3. Generate (Ctrl+Enter on the canvas), wait, accept (Enter).
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        (rid,) = window.gen.jobs
        qtbot.waitUntil(lambda: not window.gen.jobs[rid].state.active, timeout=300_000)
        job = window.gen.jobs[rid]
        assert job.state == JobState.FINISHED, job.message
        request = job.request
        assert request.prompt == "blue sky, green hills"
        ox, oy = request.origin
        assert [(r.prompt, r.rect) for r in request.regions] == [("a red house", (0 - ox, 0 - oy, 24, 64))]
        qtbot.keyClick(view, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(window.ws.doc.patches))
        (patch,) = window.ws.doc.patches
        lineage = json.loads(patch.request_json)
        assert [r["prompt"] for r in lineage["regions"]] == ["a red house"]
        pixels = window.ws.doc.image.read(0, 0, 64, 64)
        assert pixels[..., 3].min() == 255 and np.std(pixels[..., :3].astype(np.float32)) > 5.0
    finally:
        window.io.dialogs.save_answers = ["discard"]
        window.close()
        assert window.worker._thread.wait(180_000)

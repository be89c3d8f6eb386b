"""The artist's loop from frame to patch through the real window (fake engine): undo after accept,
edits during a run, live previews on a second run, and what the status says (issue 13)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import drag, make_window
from PySide6.QtCore import Qt

from canvas_app.engine.compiling import COMPILING_STAGE
from canvas_app.ui.job_state import JobState


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def finish(qtbot, window, rid):
    qtbot.waitUntil(lambda: not window.gen.jobs[rid].state.active, timeout=10000)


def photo(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    img[..., 3] = 255
    return img


def test_undo_is_enabled_after_accept_and_ctrl_z_undoes_it(qtbot, window):
    """Defect 1: Edit > Undo stayed greyed after Accept until the next edit."""
    drag(window, "frame", [(0, 0), (128, 128)])
    rid = window.generate()
    finish(qtbot, window, rid)
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)  # the Accept Candidate action's key
    assert len(window.ws.doc.patches) == 1
    assert window.undo_action.isEnabled()
    assert "Accept patch" in window.undo_action.text()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.ws.doc.patches
    assert window.ws.doc.image.read(10, 10, 1, 1)[0, 0, 3] == 0


def test_stroke_painted_during_the_run_survives_accept(qtbot, window):
    """Defect 2: accept wrote the whole frame from the submit-time crop, reverting the stroke."""
    doc = window.ws.doc
    doc.paste(0, 0, photo(128, 128))
    drag(window, "frame", [(0, 0), (128, 128)])
    doc.fill_mask(8, 8, 16, 16)
    engine = window.gen.worker.engine
    engine.gate = threading.Event()
    rid = window.generate()
    assert window.gen.jobs[rid].request.mode.value == "inpaint"
    qtbot.waitUntil(lambda: window.gen.jobs[rid].state == JobState.RUNNING, timeout=5000)
    drag(window, "brush", [(70, 100), (110, 100)])  # far from the mask, inside the frame
    painted = doc.image.read(0, 0, 128, 128)
    assert not np.array_equal(painted[100, 70:110], photo(128, 128)[100, 70:110])
    engine.gate.set()
    finish(qtbot, window, rid)
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    assert len(doc.patches) == 1
    after = doc.image.read(0, 0, 128, 128)
    assert np.array_equal(after[90:110, 60:120], painted[90:110, 60:120])
    assert not np.array_equal(after[8:24, 8:24], painted[8:24, 8:24])


def test_second_run_shows_live_previews_not_the_old_candidate(qtbot, window):
    """Defect 5: the staged candidate hid the new run's previews for the whole run."""
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    item = window.ws.scene.frame_items[fid]
    finish(qtbot, window, window.generate())
    assert item.staged is not None
    engine = window.gen.worker.engine
    engine.step_delay = 0.05
    window.ws.doc.update_frame(fid, steps=60)
    rid = window.generate()
    qtbot.waitUntil(lambda: item.has_previews(), timeout=5000)
    assert item.staged is None
    assert window.gen.jobs[rid].state == JobState.RUNNING
    window.gen.cancel(fid)
    finish(qtbot, window, rid)
    # The earlier candidate is still staged and shown again once the run ends.
    assert item.staged is not None and len(window.gen.staging[fid].candidates) == 1


def test_escape_says_cancelled_and_a_finished_run_says_done(qtbot, window):
    """Defect 8: after Esc the status bar said "Done"."""
    drag(window, "frame", [(0, 0), (128, 128)])
    finish(qtbot, window, window.generate())
    assert window.statusBar().currentMessage() == "Done"
    window.ws.doc.update_frame(window.ws.selected_frame_id, steps=400)
    window.gen.worker.engine.step_delay = 0.02
    rid = window.generate()
    qtbot.waitUntil(lambda: window.gen.jobs[rid].state == JobState.RUNNING, timeout=5000)
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Escape)
    finish(qtbot, window, rid)
    assert window.gen.jobs[rid].state == JobState.CANCELLED
    assert window.statusBar().currentMessage() == "Cancelled"


def test_a_compiling_run_says_so_until_its_steps_start(qtbot, window):
    """With --compile the first run of a tile size compiles for minutes before step 1 (engine/compiling.py)."""
    engine = window.gen.worker.engine
    engine.compile_gate = threading.Event()
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    rid = window.generate()
    item = window.ws.scene.frame_items[fid]
    qtbot.waitUntil(lambda: COMPILING_STAGE in item.badge.status, timeout=5000)
    assert COMPILING_STAGE in window.frame_panel.status.text()
    assert window.gen.jobs[rid].state == JobState.LOADING
    engine.compile_gate.set()
    finish(qtbot, window, rid)
    assert window.gen.jobs[rid].state == JobState.FINISHED
    assert COMPILING_STAGE not in item.badge.status


def test_first_run_shows_the_model_loading(qtbot, window):
    """Defect 8: the first run showed only "queued" while the model loaded."""
    engine = window.gen.worker.engine
    engine.load_gate = threading.Event()
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    rid = window.generate()
    qtbot.waitUntil(lambda: window.gen.jobs[rid].state == JobState.LOADING, timeout=5000)
    item = window.ws.scene.frame_items[fid]
    assert "loading model" in item.badge.status
    assert "loading model" in window.frame_panel.status.text()
    assert window.frame_panel.progress.isVisible()
    engine.load_gate.set()
    finish(qtbot, window, rid)
    assert window.gen.jobs[rid].state == JobState.FINISHED

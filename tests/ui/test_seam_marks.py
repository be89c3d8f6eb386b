"""Seam marks and Generate > Repair Seam (issue 15): a result whose colours jump at its boundary is
outlined on the canvas; the action re-inpaints a thin band along it, staged like any candidate."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import drag, make_window
from PySide6.QtCore import Qt

from canvas_app.core.request import Mode
from canvas_app.core.seams import REPAIR_STRENGTH
from canvas_app.ui.job_state import JobState


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    w.activateWindow()
    qtbot.waitActive(w)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def _red_pixels(window) -> int:
    image = window.ws.view.viewport().grab().toImage()
    ptr = image.convertToFormat(image.Format.Format_RGB32).constBits()
    px = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.width(), 4)
    b, g, r = px[..., 0].astype(int), px[..., 1].astype(int), px[..., 2].astype(int)
    return int(((r > 220) & (g < 80) & (b < 80)).sum())


def _staged(window, frame_id: str) -> bool:
    staging = window.gen.staging.get(frame_id)
    return staging is not None and staging.current is not None and not window.gen.active_jobs(frame_id)


def test_a_seam_is_marked_and_repair_seam_restages_a_thin_band(qtbot, window):
    # Blue on the left, orange on the right; the fake engine paints one flat tint over the mask, so
    # its colours jump at the mask's edge.
    pixels = np.zeros((192, 192, 4), np.uint8)
    pixels[:, :96] = (60, 90, 160, 255)
    pixels[:, 96:] = (200, 150, 80, 255)
    window.ws.doc.paste(0, 0, pixels)
    drag(window, "frame", [(32, 32), (160, 160)])
    frame_id = window.ws.selected_frame_id
    window.ws.doc.fill_mask(64, 64, 64, 64)
    action = window.repair_seam_action
    assert not action.isEnabled()  # nothing generated yet
    engine = window.gen.worker.engine

    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    # The staged result is checked and its seam outlined, in red, on the canvas.
    state = window.seams.state(frame_id)
    assert state is not None and state.check.has_seam and state.candidate is not None
    item = window.seams.items[frame_id]
    assert item.scene() is window.ws.scene and item.isVisible()
    box = item.sceneBoundingRect()
    assert 60 <= box.left() and box.right() <= 132 and 60 <= box.top() and box.bottom() <= 132
    window.fit_to_content()
    shown = _red_pixels(window)
    item.setVisible(False)
    assert shown > _red_pixels(window) + 20
    item.setVisible(True)
    assert action.isEnabled()

    # Repair: the staged result is accepted, then a band along the seam is inpainted at low strength.
    action.trigger()
    assert len(window.ws.doc.patches) == 1
    assert not action.isEnabled()  # the repair runs
    job = max(window.gen.jobs.values(), key=lambda j: j.request_id)
    qtbot.waitUntil(lambda: job.state is JobState.FINISHED, timeout=10000)
    request = engine.requests[-1]
    assert request.mode is Mode.INPAINT and request.strength == REPAIR_STRENGTH
    cx, cy = request.origin
    band = request.mask > 0
    assert band[64 - cy, 96 - cx] and band[66 - cy, 96 - cx]  # on the seam, inside
    assert not band[96 - cy, 96 - cx]  # not the middle of the patch
    assert band.sum() < 22 * 4 * 64  # a thin band: about 20 px wide along the patch's 4 edges
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    assert window.seams.state(frame_id).candidate is not None  # the repair's result is checked too
    assert action.isEnabled() == window.seams.state(frame_id).check.has_seam

    # Accept the repair, then undo both: the seam marks go with the patches.
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    assert len(window.ws.doc.patches) == 2
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert not window.ws.doc.patches
    assert window.seams.state(frame_id) is None and frame_id not in window.seams.items
    assert not action.isEnabled()


def test_repair_seam_without_a_seam_says_so(qtbot, window):
    drag(window, "frame", [(0, 0), (64, 64)])
    assert not window.repair_seam_action.isEnabled()
    assert window.repair_seam() is None
    assert "no seam" in window.statusBar().currentMessage()
    assert not window.gen.jobs

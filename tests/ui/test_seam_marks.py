"""Seam marks and Generate > Repair Seam (issue 15): a result whose colours jump at its boundary is
outlined on the canvas; the action re-inpaints a thin band along it, staged like any candidate."""

from __future__ import annotations

import numpy as np
from helpers import drag
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from canvas_app.core.request import Mode
from canvas_app.core.seams import REPAIR_STRENGTH
from canvas_app.ui.job_state import JobState


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


def _status(window) -> str:
    """What the status bar shows on its left: a passing message, else its visible normal widgets."""
    bar = window.statusBar()
    if bar.currentMessage():
        return bar.currentMessage()
    labels = [w for w in bar.findChildren(QLabel) if w.isVisible() and w.parent() is not None]
    permanent = {window.engine_label, window.pos_label, window.zoom_label}
    return " ".join(w.text() for w in labels if w not in permanent)


def _two_colours(window) -> str:
    """Blue left, orange right, a frame over both with a mask across the edge: the fake engine's flat
    tint jumps in colour at the mask's edge."""
    pixels = np.zeros((192, 192, 4), np.uint8)
    pixels[:, :96] = (60, 90, 160, 255)
    pixels[:, 96:] = (200, 150, 80, 255)
    window.ws.doc.paste(0, 0, pixels)
    drag(window, "frame", [(32, 32), (160, 160)])
    window.ws.doc.fill_mask(64, 64, 64, 64)
    return window.ws.selected_frame_id


def test_the_status_bar_says_a_seam_was_found_and_names_the_shortcut(qtbot, window):
    frame_id = _two_colours(window)
    hint = "marked in red: Generate > Repair Seam (Ctrl+Alt+R) blends it."
    assert "Seam" not in _status(window)
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    # "Done" shows for its time, then the hint (it does not cover the passing message).
    assert window.seams.state(frame_id).check.has_seam
    qtbot.waitUntil(lambda: "Seam found" in _status(window), timeout=6000)
    text = _status(window)
    assert text.startswith("Seam found at the edge of the staged result (colour step ΔE00 ") and hint in text
    step = window.seams.state(frame_id).check.step("after")
    assert f"ΔE00 {step:.1f}," in text

    # Another message passes over it, and it comes back.
    window.statusBar().showMessage("The clipboard holds no image.", 200)
    assert _status(window) == "The clipboard holds no image." and not window.seam_hint.isVisible()
    qtbot.waitUntil(lambda: "Seam found" in _status(window), timeout=3000)

    # With no frame selected, the marks stay and the hint says where to go.
    window.ws.select_frame("")
    assert _status(window) == (
        "A seam is marked in red on another frame: select it, then Generate > Repair Seam (Ctrl+Alt+R)."
    )
    window.ws.select_frame(frame_id)
    assert "Seam found at the edge of the staged result" in _status(window)

    # Accepted with Enter: the accepted result's seam is named; undo takes the marks and the hint.
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    assert len(window.ws.doc.patches) == 1
    qtbot.waitUntil(lambda: "Seam found at the edge of the accepted result" in _status(window), timeout=6000)
    window.undo_action.trigger()
    assert not window.ws.doc.patches and frame_id not in window.seams.items
    qtbot.waitUntil(lambda: not window.statusBar().currentMessage(), timeout=6000)
    assert "Seam" not in _status(window) and not window.seam_hint.isVisible()


def test_discarding_the_staged_result_takes_the_hint_away(qtbot, window):
    frame_id = _two_colours(window)
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    assert "Seam found" in window.seam_hint.text()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Backspace)
    assert frame_id not in window.seams.items
    assert window.seam_hint.text() == "" and "Seam" not in _status(window)


def test_repair_seam_without_a_seam_says_so(qtbot, window):
    drag(window, "frame", [(0, 0), (64, 64)])
    assert not window.repair_seam_action.isEnabled()
    assert window.repair_seam() is None
    assert "no seam" in window.statusBar().currentMessage()
    assert not window.gen.jobs

"""The frame panel's inpaint settings: "Masked" (original / fill from around: what an inpaint starts
from) and "Keep the photo's colours" (colour correction)."""

from __future__ import annotations

import numpy as np
from helpers import drag
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from canvas_app.core.request import MASKED_CONTENT_MODES
from canvas_app.ui.frame_panel import MASKED_CONTENT_TEXT
from canvas_app.ui.job_state import JobState


def test_panel_offers_every_masked_content_mode() -> None:
    assert tuple(MASKED_CONTENT_TEXT) == MASKED_CONTENT_MODES


def test_fill_chosen_by_keys_reaches_the_request_and_undoes(qtbot, window):
    doc = window.ws.doc
    doc.paste(0, 0, np.full((128, 128, 4), 200, np.uint8))
    drag(window, "frame", [(0, 0), (128, 128)])
    frame_id = window.ws.selected_frame_id
    panel = window.frame_panel
    panel.refresh_mode()
    # img2img: nothing is masked, so there is nothing for the choice to say.
    assert "img2img" in panel.mode_label.text() and not panel.masked_content.isEnabled()
    assert not panel.color_correction.isEnabled()
    drag(window, "mask", [(60, 60), (70, 70)])
    qtbot.waitUntil(lambda: "inpaint" in panel.mode_label.text(), timeout=3000)
    assert panel.masked_content.isEnabled() and panel.masked_content.currentData() == "original"
    assert panel.color_correction.isEnabled() and not panel.color_correction.isChecked()
    # Chosen with the keyboard in the combo box, as a person would.
    panel.masked_content.setFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
    assert doc.frame(frame_id).masked_content == "fill"
    # The colour correction box, ticked with the space bar.
    box = panel.color_correction
    box.setFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert doc.frame(frame_id).color_correction is True
    rid = window.gen.generate(frame_id)
    job = window.gen.jobs[rid]
    qtbot.waitUntil(lambda: job.state not in (JobState.QUEUED, JobState.RUNNING), timeout=10000)
    assert job.request.masked_content == "fill" and job.request.color_correction
    # Undo takes them back one at a time, and the panel shows it.
    window.undo_action.trigger()
    assert not doc.frame(frame_id).color_correction and not box.isChecked()
    window.undo_action.trigger()
    assert doc.frame(frame_id).masked_content == "original"
    assert panel.masked_content.currentData() == "original"
    # The mask erased (undone) again: img2img, the choice is off.
    while doc.mask.read(0, 0, 128, 128).any() and window.undo_action.isEnabled():
        window.undo_action.trigger()
    qtbot.waitUntil(lambda: "img2img" in panel.mode_label.text(), timeout=3000)
    assert not panel.masked_content.isEnabled() and not box.isEnabled()


def test_an_outpaint_offers_the_choices_only_with_a_brushed_mask(qtbot, window):
    doc = window.ws.doc
    doc.paste(0, 0, np.full((128, 64, 4), 200, np.uint8))  # the right half of the frame is empty
    drag(window, "frame", [(0, 0), (128, 128)])
    panel = window.frame_panel
    panel.refresh_mode()
    assert "outpaint" in panel.mode_label.text()
    assert not panel.masked_content.isEnabled() and not panel.color_correction.isEnabled()
    drag(window, "mask", [(20, 60), (30, 60)])
    panel.refresh_mode()
    assert "outpaint" in panel.mode_label.text()
    assert panel.masked_content.isEnabled() and panel.color_correction.isEnabled()

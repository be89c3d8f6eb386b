"""A new artist's first moves and the keys of the loop, driven as a person would (issue 13, 6/7/11)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import drag
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from canvas_app.core.frames import PromptFrame
from canvas_app.core.request import DEFAULT_SCHEDULER
from canvas_app.ui.job_state import JobState


def finish(qtbot, window, rid):
    qtbot.waitUntil(
        lambda: window.gen.jobs[rid].state not in (JobState.QUEUED, JobState.RUNNING), timeout=10000
    )


def focused():
    return QApplication.focusWidget()


def type_into(qtbot, widget, text: str) -> None:
    """Click into the widget (as a person does) and type."""
    qtbot.mouseClick(widget.viewport() if hasattr(widget, "viewport") else widget, Qt.MouseButton.LeftButton)
    assert focused() is widget
    qtbot.keyClicks(focused(), text)


# -- 11: first moves -----------------------------------------------------------------------------
def test_typing_a_prompt_with_no_frame_types_it_and_fires_no_tool(qtbot, window):
    assert not window.ws.selected_frame_id
    before = window.ws.tool_name
    type_into(qtbot, window.frame_panel.prompt, "a red house")
    assert window.frame_panel.prompt.toPlainText() == "a red house"
    assert window.ws.tool_name == before  # "e" did not pick the Eraser, "h" not the Hand
    # The same letters on the canvas do switch tools: the shortcuts still work where they belong.
    window.ws.view.setFocus()
    qtbot.keyClick(focused(), Qt.Key.Key_E)
    assert window.ws.tool_name == "eraser"


def test_generate_with_no_frame_makes_a_native_size_frame_with_the_typed_prompt(qtbot, window):
    type_into(qtbot, window.frame_panel.prompt, "a red house")
    qtbot.keyClick(focused(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (frame,) = window.ws.doc.frames.values()
    assert (frame.w, frame.h) == (128, 128)  # the built-in model's native size
    assert frame.prompt == "a red house"
    assert window.ws.selected_frame_id == frame.id
    assert window.ws.doc.modified and window.isWindowModified()
    (job,) = window.gen.jobs.values()
    assert (job.request.width, job.request.height) >= (128, 128)
    finish(qtbot, window, job.request_id)
    # Quitting asks about the new frame.
    window.io.dialogs.save_answers = ["cancel"]
    assert not window.close()
    assert window.io.dialogs.asked[-1].startswith("save changes")


def test_empty_prompt_says_it_paints_a_random_scene(qtbot, window):
    note = window.frame_panel.prompt_note
    assert note.isVisible() and "random scene" in note.text()
    qtbot.mouseClick(window.frame_panel.generate_button, Qt.MouseButton.LeftButton)
    assert "random scene" in window.statusBar().currentMessage()
    type_into(qtbot, window.frame_panel.prompt, "a tree")
    assert not note.isVisible()


def test_empty_prompt_note_follows_the_frames_mode(qtbot, window):
    # Over a photo an empty prompt does not paint a random scene: the note says what it does.
    note = window.frame_panel.prompt_note
    window.ws.doc.paste(0, 0, np.full((128, 128, 4), 200, np.uint8))
    drag(window, "frame", [(0, 0), (128, 128)])
    qtbot.waitUntil(lambda: "repaints the picture" in note.text(), timeout=3000)
    drag(window, "mask", [(60, 60), (70, 70)])
    qtbot.waitUntil(lambda: "masked area is filled" in note.text(), timeout=3000)
    assert note.isVisible()
    # Back on empty canvas, with a new frame: a random scene again.
    drag(window, "frame", [(400, 0), (528, 128)])
    qtbot.waitUntil(lambda: "random scene" in note.text(), timeout=3000)


def test_drawn_frame_takes_the_prompt_typed_before(qtbot, window):
    type_into(qtbot, window.frame_panel.prompt, "a boat")
    drag(window, "frame", [(0, 0), (200, 120)])
    frame = window.ws.doc.frame(window.ws.selected_frame_id)
    assert frame.prompt == "a boat"


# -- 6: Enter accepts ----------------------------------------------------------------------------
def test_enter_right_after_ctrl_enter_accepts(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    type_into(qtbot, window.frame_panel.prompt, "a red house")
    qtbot.keyClick(focused(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (rid,) = window.gen.jobs
    finish(qtbot, window, rid)
    assert "Enter accepts" in window.frame_panel.status.text()
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    assert len(window.ws.doc.patches) == 1
    assert window.frame_panel.prompt.toPlainText() == "a red house"  # no newline typed


def test_enter_in_the_prompt_box_accepts_while_staged_shift_enter_types_a_newline(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    type_into(qtbot, window.frame_panel.prompt, "a red house")
    rid = window.generate()
    finish(qtbot, window, rid)
    type_into(qtbot, window.frame_panel.prompt, ",")
    qtbot.keyClick(focused(), Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(focused(), "at night")
    assert window.frame_panel.prompt.toPlainText() == "a red house,\nat night"
    assert not window.ws.doc.patches
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    assert len(window.ws.doc.patches) == 1
    # Nothing staged now: Enter is a newline again.
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    assert window.frame_panel.prompt.toPlainText().endswith("\n")


# -- 7: seed, sampler, strength -------------------------------------------------------------------
def test_seed_follows_the_selected_candidate(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    window.frame_panel.batch.setValue(3)
    rid = window.generate()
    finish(qtbot, window, rid)
    seeds = [c.seed for c in window.gen.staging[window.ws.selected_frame_id].candidates]
    assert int(window.frame_panel.seed.value()) == seeds[0]
    qtbot.keyClick(focused(), Qt.Key.Key_Right)
    assert int(window.frame_panel.seed.value()) == seeds[1]
    window.staging_bar.next_button.click()
    assert int(window.frame_panel.seed.value()) == seeds[2]


def test_seed_after_reopening_shows_the_accepted_patch_seed(qtbot, window, tmp_path):
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    rid = window.generate()
    finish(qtbot, window, rid)
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    (patch,) = window.ws.doc.patches
    path = tmp_path / "p.canvas"
    window.io.dialogs.save_paths = [str(path)]
    window.io.save_as()
    window.io.open(str(path))
    window.ws.select_frame(fid)
    assert int(window.frame_panel.seed.value()) == patch.seed != 0
    # A frame that never ran shows "random", not 0.
    drag(window, "frame", [(400, 0), (528, 128)])
    assert window.frame_panel.seed.text() == "random"


def test_one_default_sampler_with_and_without_a_frame(qtbot, window):
    assert window.frame_panel.scheduler.currentText() == DEFAULT_SCHEDULER == PromptFrame().scheduler
    drag(window, "frame", [(0, 0), (128, 128)])
    assert window.frame_panel.scheduler.currentText() == DEFAULT_SCHEDULER
    assert window.ws.doc.frame(window.ws.selected_frame_id).scheduler == DEFAULT_SCHEDULER


def test_strength_zero_is_refused_by_box_and_frame(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    box = window.frame_panel.strength
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(focused(), "0")
    qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    strength = window.ws.doc.frame(window.ws.selected_frame_id).strength
    assert strength > 0
    with pytest.raises(ValueError, match="strength"):
        PromptFrame(strength=0.0)
    with pytest.raises(ValueError, match="steps"):
        PromptFrame(steps=1001)
    assert window.frame_panel.steps.maximum() == 1000 and window.frame_panel.batch.maximum() == 64


def test_letters_typed_into_any_field_of_the_panel_fire_no_tool(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    panel = window.frame_panel
    for widget in (panel.prompt, panel.negative, panel.steps, panel.guidance, panel.seed):
        widget.setFocus()
        qtbot.keyClicks(focused(), "hemfbi[]")
        assert window.ws.tool_name == "frame", widget.objectName()
    assert panel.negative.toPlainText() == "hemfbi[]"


def test_typing_then_clicking_away_keeps_the_text_on_its_frame(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    type_into(qtbot, window.frame_panel.prompt, "a lighthouse")
    drag(window, "frame", [(300, 300)])  # a click on empty canvas: nothing selected
    assert not window.ws.selected_frame_id
    assert window.ws.doc.frame(fid).prompt == "a lighthouse"
    assert window.frame_panel.prompt.toPlainText() == ""  # the draft's (empty) prompt

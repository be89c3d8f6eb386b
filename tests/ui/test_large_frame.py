"""The per-frame choice for frames larger than the model's native size (issue 15): compose, then
refine (default) or one pass in tiles, and the refine strength, set from the frame panel."""

from __future__ import annotations

import threading

import pytest
from helpers import drag
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from canvas_app.core.request import DEFAULT_REFINE_STRENGTH, LARGE_FRAME_MODES
from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH
from canvas_app.ui.frame_panel import LARGE_FRAME_TEXT
from canvas_app.ui.job_state import JobState


def _generate(qtbot, window):
    window.frame_panel.prompt.setFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (job,) = [j for j in window.gen.jobs.values() if j.state in (JobState.QUEUED, JobState.RUNNING)]
    qtbot.waitUntil(lambda: job.state not in (JobState.QUEUED, JobState.RUNNING), timeout=10000)
    return job.request


def test_panel_offers_every_large_frame_mode() -> None:
    assert tuple(LARGE_FRAME_TEXT) == LARGE_FRAME_MODES


def test_new_frame_composes_then_refines_by_default(qtbot, window):
    drag(window, "frame", [(0, 0), (256, 256)])
    panel = window.frame_panel
    assert panel.large_frame.currentData() == "two-pass" and panel.refine_strength.isEnabled()
    assert panel.refine_strength.value() == pytest.approx(DEFAULT_REFINE_STRENGTH)
    request = _generate(qtbot, window)
    assert request.large_frame == "two-pass" and request.refine_strength == pytest.approx(
        DEFAULT_REFINE_STRENGTH
    )


def test_picking_tiles_and_refine_strength_by_keys_reaches_the_request(qtbot, window):
    drag(window, "frame", [(0, 0), (256, 256)])
    panel = window.frame_panel
    frame_id = window.ws.selected_frame_id
    # Refine strength typed into its box.
    panel.refine_strength.setFocus()
    panel.refine_strength.selectAll()
    qtbot.keyClicks(QApplication.focusWidget(), "0.55")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert window.ws.doc.frame(frame_id).refine_strength == pytest.approx(0.55)
    assert _generate(qtbot, window).refine_strength == pytest.approx(0.55)
    # One pass in tiles, chosen with the keyboard in the combo box.
    panel.large_frame.setFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
    assert window.ws.doc.frame(frame_id).large_frame == "tiled"
    assert not panel.refine_strength.isEnabled()  # nothing to refine in one pass
    assert _generate(qtbot, window).large_frame == "tiled"
    # Undo brings two-pass back, and the panel shows it.
    window.undo_action.trigger()
    assert window.ws.doc.frame(frame_id).large_frame == "two-pass"
    assert panel.large_frame.currentData() == "two-pass" and panel.refine_strength.isEnabled()


def test_two_decimals_typed_key_by_key_stay_in_the_refine_box(qtbot, window):
    # Before: each key committed, the panel re-set the box to 0.5, which rewrote its text to "0.50"
    # under the cursor, and the last "5" was refused: 0.55 ended as 0.5.
    drag(window, "frame", [(0, 0), (256, 256)])
    for name in ("refine_strength",):  # (the strength box shares the fix; it is off for txt2img)
        box = getattr(window.frame_panel, name)
        box.setFocus()
        box.selectAll()
        qtbot.keyClicks(QApplication.focusWidget(), "0.55")
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        assert getattr(window.ws.doc.frame(window.ws.selected_frame_id), name) == pytest.approx(0.55)


# -- Upscale x2 / x4 ---------------------------------------------------------------------------------
def _painted_frame(window, w: int = 64, h: int = 64) -> str:
    import numpy as np

    rng = np.random.default_rng(0)
    pixels = np.dstack([rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w), 255, np.uint8)])
    window.ws.doc.paste(0, 0, pixels)
    drag(window, "frame", [(0, 0), (w, h)])
    return window.ws.selected_frame_id


def test_upscale_x2_grows_the_frame_and_stages_the_refined_pixels(qtbot, window):
    frame_id = _painted_frame(window)
    window.ws.doc.update_frame(frame_id, seed=1234)  # the frame's own seed setting is the upscale's
    engine = window.gen.worker.engine
    assert window.upscale2_action.isEnabled()
    window.upscale2_action.trigger()
    frame = window.ws.doc.frame(frame_id)
    assert frame.rect == (0, 0, 128, 128)
    qtbot.waitUntil(
        lambda: frame_id in window.gen.staging and window.gen.staging[frame_id].current is not None,
        timeout=10000,
    )
    request = engine.requests[-1]
    assert (request.mode.value, request.width, request.height) == ("img2img", 128, 128)
    assert (
        request.large_frame == "tiled"
        and request.strength == DEFAULT_UPSCALE_STRENGTH
        and request.origin == (0, 0)
        and request.seed == 1234
    )
    # Accepting writes the 128 px result (Enter on the canvas), one undo step with the frame growth after it.
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    (patch,) = window.ws.doc.patches
    assert patch.rect == (0, 0, 128, 128)
    window.undo_action.trigger()  # the patch
    window.undo_action.trigger()  # the frame growth
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)


def test_upscale_of_an_empty_frame_says_why_and_changes_nothing(qtbot, window):
    drag(window, "frame", [(0, 0), (64, 64)])
    frame_id = window.ws.selected_frame_id
    window.upscale4_action.trigger()
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)
    assert not window.gen.jobs
    assert "nothing to upscale" in window.statusBar().currentMessage()


def _wait_staged(qtbot, window, frame_id: str) -> None:
    qtbot.waitUntil(
        lambda: frame_id in window.gen.staging and window.gen.staging[frame_id].current is not None,
        timeout=10000,
    )


def _accepted_patch(qtbot, window, prompt: str = "a red house"):
    """A 64x64 frame with ``prompt``, generated (fake engine) and accepted with Enter on the canvas."""
    frame_id = _painted_frame(window)
    window.ws.doc.update_frame(frame_id, prompt=prompt)
    window.generate()
    _wait_staged(qtbot, window, frame_id)
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    (patch,) = window.ws.doc.patches
    return patch


def _click_patch(qtbot, window, patch_id: str) -> None:
    lst = window.patch_list.list
    (item,) = [
        lst.item(r) for r in range(lst.count()) if lst.item(r).data(Qt.ItemDataRole.UserRole) == patch_id
    ]
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=lst.visualItemRect(item).center())


def test_upscale_frame_actions_follow_the_frame_selection(qtbot, window):
    assert not window.upscale2_action.isEnabled() and not window.upscale4_action.isEnabled()
    drag(window, "frame", [(0, 0), (64, 64)])
    assert window.upscale2_action.isEnabled() and window.upscale4_action.isEnabled()
    window.ws.select_frame("")
    assert not window.upscale2_action.isEnabled()


def test_upscale_patch_x2_refines_the_patch_with_its_own_prompt(qtbot, window):
    from canvas_app.core.upscale import lanczos

    patch = _accepted_patch(qtbot, window, "a red house")
    actions = window.patch_list.upscale_actions
    assert not actions[2].isEnabled() and not actions[4].isEnabled()  # no patch selected yet
    # The frame's prompt changes after the patch: the upscale keeps the patch's own.
    window.ws.doc.update_frame(patch.frame_id, prompt="something else")
    _click_patch(qtbot, window, patch.id)
    assert actions[2].isEnabled() and actions[4].isEnabled()
    assert actions[2] in window.menuBar().actions()[-2].menu().actions()  # in the Generate menu
    pixels = window.ws.doc.image.read(*patch.rect)
    engine = window.gen.worker.engine
    actions[2].trigger()
    frame = window.ws.doc.frame(patch.frame_id)
    assert frame.rect == (patch.x, patch.y, 128, 128) and window.ws.selected_frame_id == frame.id
    _wait_staged(qtbot, window, frame.id)
    request = engine.requests[-1]
    assert (request.mode.value, request.width, request.height) == ("img2img", 128, 128)
    assert request.prompt == "a red house" and request.large_frame == "tiled"
    assert request.strength == DEFAULT_UPSCALE_STRENGTH and request.origin == (patch.x, patch.y)
    assert (request.init_image == lanczos(pixels, 2)).all()
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    assert window.ws.doc.patches[-1].rect == (patch.x, patch.y, 128, 128)
    # Undo: the upscaled patch, then the frame's growth.
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert window.ws.doc.frame(frame.id).rect == patch.rect


def test_upscale_patch_again_asks_for_the_same_seed_the_patchs_own(qtbot, window):
    # Before: a random seed each time, so upscaling a patch again gave another picture (Upscale
    # Candidate already used the candidate's seed).
    patch = _accepted_patch(qtbot, window)
    engine = window.gen.worker.engine
    seeds = []
    for _run in range(2):
        _click_patch(qtbot, window, patch.id)
        window.patch_list.upscale_actions[2].trigger()
        frame_id = window.ws.selected_frame_id
        _wait_staged(qtbot, window, frame_id)
        seeds.append(engine.requests[-1].seed)
        qtbot.keyClick(window.ws.view, Qt.Key.Key_Backspace)  # Discard Candidates
        window.undo_action.trigger()  # the growth
        assert window.ws.doc.frame(frame_id).rect == patch.rect
    assert seeds == [patch.seed, patch.seed]


def test_upscale_of_a_patch_whose_frame_was_deleted_makes_a_frame_for_it(qtbot, window):
    patch = _accepted_patch(qtbot, window, "a yellow sun")
    window.ws.doc.remove_frame(patch.frame_id)
    _click_patch(qtbot, window, patch.id)
    window.patch_list.upscale_actions[4].trigger()
    (frame,) = window.ws.doc.frames.values()
    assert frame.rect == (patch.x, patch.y, 256, 256) and frame.prompt == "a yellow sun"
    _wait_staged(qtbot, window, frame.id)
    assert window.gen.worker.engine.requests[-1].prompt == "a yellow sun"


def _upscale_deleted_frames_patch(qtbot, window):
    """A patch whose frame was deleted (Delete on the canvas), upscaled x4 with the engine held
    before its first step; returns (patch, the frame made for it, the job)."""
    patch = _accepted_patch(qtbot, window, "a yellow sun")
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Delete)
    assert not window.ws.doc.frames
    _click_patch(qtbot, window, patch.id)
    window.gen.worker.engine.gate = threading.Event()
    window.patch_list.upscale_actions[4].trigger()
    (made,) = window.ws.doc.frames.values()
    job = max(window.gen.jobs.values(), key=lambda j: j.request_id)
    return patch, made, job


def _cancel(qtbot, window, job) -> None:
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Escape)
    window.gen.worker.engine.gate.set()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=10000)


def test_cancelled_upscale_of_a_deleted_frames_patch_takes_the_frame_away_and_keeps_later_edits(
    qtbot, window
):
    # Before: with an edit after the upscale, Esc left the frame it made in the document.
    patch, made, job = _upscale_deleted_frames_patch(qtbot, window)
    drag(window, "frame", [(400, 0), (464, 64)])  # the artist goes on: another frame
    other = window.ws.selected_frame_id
    _cancel(qtbot, window, job)
    assert list(window.ws.doc.frames) == [other] and made.id not in window.ws.scene.frame_items
    # The history as if the upscale never ran: Undo takes the new frame, then brings the deleted
    # one back; Redo goes forward again; the upscale's frame never comes back.
    assert window.undo_action.isEnabled() and window.ws.doc.history.undo_label == "Add frame"
    window.undo_action.trigger()
    assert not window.ws.doc.frames
    window.undo_action.trigger()
    assert list(window.ws.doc.frames) == [patch.frame_id]
    window.redo_action.trigger()
    window.redo_action.trigger()
    assert list(window.ws.doc.frames) == [other] and not window.redo_action.isEnabled()


def test_cancelled_upscale_of_a_deleted_frames_patch_after_editing_that_frame_loses_no_edit(qtbot, window):
    _patch, made, job = _upscale_deleted_frames_patch(qtbot, window)
    window.ws.doc.update_frame(made.id, prompt="a yellow moon")  # the artist edits the new frame
    _cancel(qtbot, window, job)
    assert not window.ws.doc.frames  # taken away by a step of its own ...
    assert window.ws.doc.history.undo_label == "Cancel upscale"
    window.undo_action.trigger()  # ... which Undo reverts: the edit is not lost
    assert window.ws.doc.frame(made.id).prompt == "a yellow moon"


def test_upscale_of_an_erased_patch_says_why_and_changes_nothing(qtbot, window):
    patch = _accepted_patch(qtbot, window)
    window.ws.doc.erase_rect(*patch.rect)
    _click_patch(qtbot, window, patch.id)
    frame, requests = window.ws.doc.frame(patch.frame_id), len(window.gen.worker.engine.requests)
    window.patch_list.upscale_actions[2].trigger()
    assert window.ws.doc.frame(patch.frame_id) == frame
    assert len(window.gen.worker.engine.requests) == requests
    assert "nothing to upscale" in window.statusBar().currentMessage()

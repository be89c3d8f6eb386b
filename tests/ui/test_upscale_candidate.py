"""Upscaling a staged candidate before accepting it (as Krita AI Diffusion and InvokeAI let one
upscale a result): Upscale Patch x2/x4 are enabled while a candidate is shown on the selected frame
and upscale that one, as the frame shows it, with the prompt, settings and seed that made it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import drag
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH, lanczos
from canvas_app.ui.job_state import JobState


def _staged(window, frame_id: str) -> bool:
    return window.gen.shown_candidate(frame_id) is not None


def _stage_two(qtbot, window) -> str:
    """A painted 64x64 frame, "a red house", batch 2, generated with Ctrl+Enter on the canvas;
    its candidates staged. The painted corner is masked: an inpaint, so what the frame shows is
    the candidate composited over the document, not the candidate alone."""
    rng = np.random.default_rng(0)
    pixels = np.dstack([rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), np.full((64, 64), 255, np.uint8)])
    window.ws.doc.paste(0, 0, pixels)
    drag(window, "frame", [(0, 0), (64, 64)])
    frame_id = window.ws.selected_frame_id
    window.ws.doc.update_frame(frame_id, prompt="a red house", batch=2, steps=3)
    window.ws.doc.fill_mask(0, 0, 32, 32)
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    assert len(window.gen.staging[frame_id].candidates) == 2
    return frame_id


def test_upscale_candidate_x2_upscales_the_shown_candidate_with_its_own_settings(qtbot, window):
    actions = window.patch_list.upscale_actions
    assert not actions[2].isEnabled() and not actions[4].isEnabled()  # nothing staged, no patch
    frame_id = _stage_two(qtbot, window)
    assert actions[2].isEnabled() and actions[4].isEnabled()
    assert actions[2].text() == "Upscale Candidate x2" and actions[4].text() == "Upscale Candidate x4"
    assert actions[2] in window.menuBar().actions()[-2].menu().actions()  # in the Generate menu

    # The second candidate is shown (Right on the canvas); the frame's prompt changes after the run:
    # the upscale keeps the candidate's own prompt, settings and seed.
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Right)
    shown = window.gen.shown_candidate(frame_id)
    assert shown is window.gen.staging[frame_id].candidates[1]
    window.ws.doc.update_frame(frame_id, prompt="something else", steps=9)
    doc_before = window.ws.doc.image.read(0, 0, 64, 64)
    as_shown = _as_accepted(window.ws.doc, shown)
    engine = window.gen.worker.engine
    actions[2].trigger()

    # The frame grows, the staged candidates go (they no longer fit), the run goes: nothing to upscale.
    frame = window.ws.doc.frame(frame_id)
    assert frame.rect == (0, 0, 128, 128)
    assert window.gen.active_jobs(frame_id)
    assert not actions[2].isEnabled() and actions[2].text() == "Upscale Patch x2"
    job = max(window.gen.jobs.values(), key=lambda j: j.request_id)
    qtbot.waitUntil(lambda: job.state is JobState.FINISHED, timeout=10000)
    request = engine.requests[-1]
    assert (request.mode.value, request.width, request.height, request.origin) == (
        "img2img",
        128,
        128,
        (0, 0),
    )
    assert request.prompt == "a red house" and request.steps == 3 and request.seed == shown.seed
    assert request.strength == DEFAULT_UPSCALE_STRENGTH and request.large_frame == "tiled"
    # Upscaled from what the frame showed: the candidate inside the feathered mask (top left), the
    # document's own pixels far from it (bottom right), not the bare candidate.
    assert np.array_equal(request.init_image, lanczos(as_shown, 2))
    assert np.array_equal(as_shown[48:, 48:], doc_before[48:, 48:])
    assert not np.array_equal(as_shown[:16, :16], doc_before[:16, :16])

    # The upscaled result is staged on the grown frame: 128 px, and the actions offer it again.
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    (result,) = window.gen.staging[frame_id].candidates
    assert result.image.shape[:2] == (128, 128) and result.frame.rect == (0, 0, 128, 128)
    assert actions[4].isEnabled() and actions[4].text() == "Upscale Candidate x4"

    # Enter accepts it: one 128 px patch; then the actions wait for a selected patch again.
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    (patch,) = window.ws.doc.patches
    assert patch.rect == (0, 0, 128, 128)
    assert not actions[2].isEnabled() and actions[2].text() == "Upscale Patch x2"
    window.undo_action.trigger()  # the patch
    window.undo_action.trigger()  # the frame growth
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)


def _as_accepted(doc, cand) -> np.ndarray:
    """The frame as Accept would leave it: the candidate accepted on a copy of the document's crop
    (Accept's own composite, not the upscale's code)."""
    from canvas_app.core.composite import accept_candidate
    from canvas_app.core.document import Document

    copy = Document()
    (cx, cy), w, h = cand.request.origin, cand.request.width, cand.request.height
    copy.paste(cx, cy, doc.image.read(cx, cy, w, h))
    frame = copy.add_frame(x=cand.frame.x, y=cand.frame.y, w=cand.frame.w, h=cand.frame.h)
    accept_candidate(copy, frame.id, cand.frame.rect, cand.request, cand.image, cand.seed)
    return copy.image.read(*cand.frame.rect)


def test_the_actions_follow_the_candidate_on_the_selected_frame(qtbot, window):
    actions = window.patch_list.upscale_actions
    frame_id = _stage_two(qtbot, window)
    assert actions[2].isEnabled()
    # Another frame selected: the candidate staged on the first is not on screen there.
    drag(window, "frame", [(128, 0), (192, 64)])
    assert window.ws.selected_frame_id != frame_id and not actions[2].isEnabled()
    window.ws.select_frame(frame_id)
    assert actions[2].isEnabled() and actions[2].text() == "Upscale Candidate x2"
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Backspace)  # Discard Candidates
    assert frame_id not in window.gen.staging
    assert not actions[2].isEnabled() and not actions[4].isEnabled()


def test_upscale_frame_with_a_staged_candidate_upscales_what_the_frame_shows(qtbot, window):
    # Ctrl+U on the canvas: the frame shows the candidate, so that is what is upscaled (before, the
    # document's pixels under it were, and the candidates were thrown away).
    frame_id = _stage_two(qtbot, window)
    shown = window.gen.shown_candidate(frame_id)
    as_shown = _as_accepted(window.ws.doc, shown)
    engine = window.gen.worker.engine
    qtbot.keyClick(window.ws.view, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 128, 128)
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    request = engine.requests[-1]
    assert request.seed == shown.seed and request.prompt == "a red house"
    assert np.array_equal(request.init_image, lanczos(as_shown, 2))


def _shown_index(window, frame_id: str) -> int:
    return window.gen.staging[frame_id].index


def _bar_offers_the_candidates(window) -> bool:
    bar = window.staging_bar
    return (
        bar.isVisible()
        and bar.accept_button.isEnabled()
        and bar.next_button.isEnabled()
        and bar.counter.text().endswith("/2")
    )


@pytest.mark.parametrize("how", ["x2 action", "Ctrl+U"])
def test_esc_during_an_upscale_leaves_the_frame_and_its_candidates_as_they_were(qtbot, window, how):
    actions = window.patch_list.upscale_actions
    frame_id = _stage_two(qtbot, window)
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Right)  # the second candidate is shown
    shown = window.gen.shown_candidate(frame_id)
    candidates = list(window.gen.staging[frame_id].candidates)
    frame_before = window.ws.doc.frame(frame_id)
    undo_label = window.ws.doc.history.undo_label
    engine = window.gen.worker.engine
    engine.gate = threading.Event()  # the upscale waits before its first step
    if how == "x2 action":
        actions[2].trigger()
    else:
        qtbot.keyClick(window.ws.view, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    job = max(window.gen.jobs.values(), key=lambda j: j.request_id)
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 128, 128)  # the previews fill the grown frame
    assert not window.staging_bar.isVisible()  # the small candidates are not offered meanwhile

    focused = QApplication.focusWidget()
    assert focused is window.ws.view
    qtbot.keyClick(focused, Qt.Key.Key_Escape)
    engine.gate.set()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=10000)

    # As before: the frame (size and all), both candidates, the second shown, the history.
    assert window.ws.doc.frame(frame_id) == frame_before
    assert window.gen.staging[frame_id].candidates == candidates
    assert window.gen.shown_candidate(frame_id) is shown and _shown_index(window, frame_id) == 1
    assert window.ws.scene.frame_items[frame_id].staged is not None
    assert window.ws.doc.history.undo_label == undo_label and not window.ws.doc.can_redo
    assert _bar_offers_the_candidates(window)
    assert actions[2].isEnabled() and actions[2].text() == "Upscale Candidate x2"
    # The keys act on them again: Left shows the first, Enter accepts it.
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Left)
    assert window.gen.shown_candidate(frame_id) is candidates[0]
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    (patch,) = window.ws.doc.patches
    assert patch.rect == (0, 0, 64, 64) and patch.seed == candidates[0].seed


def test_a_failed_upscale_leaves_the_candidates_staged(qtbot, window):
    frame_id = _stage_two(qtbot, window)
    candidates = list(window.gen.staging[frame_id].candidates)
    frame_before = window.ws.doc.frame(frame_id)
    window.gen.worker.engine.fail_with = "CUDA out of memory"
    window.patch_list.upscale_actions[4].trigger()
    job = max(window.gen.jobs.values(), key=lambda j: j.request_id)
    qtbot.waitUntil(lambda: job.state is JobState.FAILED, timeout=10000)
    assert "CUDA out of memory" in window.banner.text and window.banner.isVisible()
    assert window.ws.doc.frame(frame_id) == frame_before
    assert window.gen.staging[frame_id].candidates == candidates
    assert window.gen.shown_candidate(frame_id) is candidates[0]
    assert _bar_offers_the_candidates(window)


def _start_held_upscale(qtbot, window):
    """Two candidates staged, then Upscale x2 triggered with the engine held before its first step:
    (frame id, the candidates, the engine, the upscale's job)."""
    frame_id = _stage_two(qtbot, window)
    candidates = list(window.gen.staging[frame_id].candidates)
    engine = window.gen.worker.engine
    engine.gate = threading.Event()
    window.patch_list.upscale_actions[2].trigger()
    job = max(window.gen.jobs.values(), key=lambda j: j.request_id)
    return frame_id, candidates, engine, job


@pytest.mark.parametrize("edit", ["mask", "the frame"])
def test_a_cancel_after_other_edits_shrinks_the_frame_back_and_keeps_them(qtbot, window, edit):
    frame_id, candidates, engine, job = _start_held_upscale(qtbot, window)
    if edit == "mask":  # an edit while it runs stays
        window.ws.doc.fill_mask(200, 200, 8, 8)
    else:
        window.ws.doc.update_frame(frame_id, prompt="a blue house")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    engine.gate.set()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=10000)
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)
    assert window.gen.staging[frame_id].candidates == candidates
    if edit == "mask":
        # The growth leaves the history: Undo takes the mask back, the frame stays small.
        assert window.ws.doc.mask.read(200, 200, 8, 8).min() == 255
        window.undo_action.trigger()
        assert window.ws.doc.mask.read(200, 200, 8, 8).max() == 0
        assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)
    else:
        # The edit of the grown frame depends on the growth: a step of its own shrinks it back.
        assert window.ws.doc.history.undo_label == "Cancel upscale"
        window.undo_action.trigger()
        assert window.ws.doc.frame(frame_id).prompt == "a blue house"
        assert window.ws.doc.frame(frame_id).rect == (0, 0, 128, 128)


def test_undo_of_the_growth_brings_the_candidates_back_and_redo_the_result(qtbot, window):
    frame_id = _stage_two(qtbot, window)
    candidates = list(window.gen.staging[frame_id].candidates)
    window.patch_list.upscale_actions[2].trigger()
    qtbot.waitUntil(lambda: _staged(window, frame_id), timeout=10000)
    (result,) = window.gen.staging[frame_id].candidates
    assert window.undo_action.isEnabled()
    window.undo_action.trigger()  # Upscale x2
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)
    assert window.gen.staging[frame_id].candidates == candidates
    assert window.gen.shown_candidate(frame_id) is candidates[0] and _bar_offers_the_candidates(window)
    window.redo_action.trigger()
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 128, 128)
    assert window.gen.staging[frame_id].candidates == [result]
    # Accepting the result, then undoing the patch and the growth: back to the two candidates.
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)
    assert len(window.ws.doc.patches) == 1
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert not window.ws.doc.patches and window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)
    assert window.gen.staging[frame_id].candidates == candidates
    # A new edit drops the growth from the redo stack: the candidates stay, nothing is kept aside.
    window.ws.doc.fill_mask(200, 200, 8, 8)
    assert not window.gen.set_aside.settled
    assert window.gen.staging[frame_id].candidates == candidates


def test_undo_of_the_growth_while_the_upscale_runs_keeps_the_candidates_shown(qtbot, window):
    frame_id, candidates, engine, job = _start_held_upscale(qtbot, window)
    window.undo_action.trigger()  # Upscale x2, while it runs
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 64, 64)
    engine.gate.set()
    qtbot.waitUntil(lambda: job.state is JobState.FINISHED, timeout=10000)
    # The result belongs to the grown frame: the small one shows its own candidates; redo swaps.
    assert window.gen.staging[frame_id].candidates == candidates
    assert _bar_offers_the_candidates(window)
    window.redo_action.trigger()
    assert window.ws.doc.frame(frame_id).rect == (0, 0, 128, 128)
    (result,) = window.gen.staging[frame_id].candidates
    assert result.image.shape[:2] == (128, 128)

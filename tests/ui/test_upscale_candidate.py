"""Upscaling a staged candidate before accepting it (as Krita AI Diffusion and InvokeAI let one
upscale a result): Upscale Patch x2/x4 are enabled while a candidate is shown on the selected frame
and upscale that one, as the frame shows it, with the prompt, settings and seed that made it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import drag, make_window
from PySide6.QtCore import Qt

from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH, lanczos
from canvas_app.ui.job_state import JobState


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    w.activateWindow()
    qtbot.waitActive(w)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


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

"""Compositing a generated crop at accept: feathered over the whole crop, colour-matched, integer
blend against the document as it is then, one undoable step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_app.core.composite import (
    accept_candidate,
    accepted_pixels,
    color_match,
    composite,
    feather_alpha,
)
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import plan_frame
from canvas_app.core.request import GenerationRequest, Mode


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like RGBA image (gradients plus low-frequency texture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 4), np.uint8)
    for c in range(3):
        a, b = rng.uniform(0.02, 0.12, 2)
        img[..., c] = np.clip(128 + 60 * np.sin(a * xx + c) + 50 * np.cos(b * yy), 0, 255)
    img[..., 3] = 255
    return img


@given(
    feather=st.integers(0, 12),
    box=st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 24), st.integers(1, 24)),
    seed=st.integers(0, 1000),
)
@settings(max_examples=60, deadline=None)
def test_zero_alpha_pixels_are_bit_exact(feather: int, box: tuple[int, int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    current = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    generated = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    x, y, w, h = box
    mask[y : y + h, x : x + w] = 255
    out, alpha = composite(current, generated, mask, feather)
    assert np.array_equal(out[alpha == 0], current[alpha == 0])
    inside = (mask == 255) & (current[..., 3] >= 128)
    assert (out[inside][:, 3] == 255).all()


def test_feather_fades_outward_and_keeps_the_mask_whole() -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[24:40, 24:40] = 255
    alpha = feather_alpha(mask, 8)
    assert (alpha[mask == 255] == 255).all()
    assert 0 < alpha[32, 42] < 255
    assert alpha[0, 0] == 0


def test_color_match_removes_a_uniform_shift() -> None:
    original = photo(64, 64)
    shifted = np.clip(original[..., :3].astype(int) + 30, 0, 255).astype(np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    alpha = feather_alpha(mask, 8)
    matched = color_match(shifted, original, alpha, np.ones((64, 64), bool))
    band = (alpha > 0) & (alpha < 255)
    before = np.abs(shifted[band].astype(int) - original[band][:, :3]).mean()
    after = np.abs(matched[band].astype(int) - original[band][:, :3]).mean()
    assert after < before / 3


def inpaint_setup(mask_rect: tuple[int, int, int, int]) -> tuple[Document, str, GenerationRequest]:
    doc = Document()
    doc.paste(-64, -64, photo(256, 256))
    frame = doc.add_frame(x=0, y=0, w=64, h=64, prompt="sky")
    doc.fill_mask(*mask_rect)
    plan = plan_frame(doc, frame, context_padding=16, seed=123)
    return doc, frame.id, plan.request(frame)


def test_accept_composites_and_undoes_as_one_step() -> None:
    doc, fid, req = inpaint_setup((16, 16, 16, 16))
    frame = doc.frame(fid)
    before = doc.image.read(-64, -64, 256, 256)
    result = np.full((req.height, req.width, 3), 222, np.uint8)
    history_before = len(doc.history)
    patch = accept_candidate(doc, fid, frame.rect, req, result, seed=124)
    assert len(doc.history) == history_before + 1
    after = doc.image.read(-64, -64, 256, 256)
    alpha = np.zeros((256, 256), np.uint8)
    alpha[48:144, 48:144] = feather_alpha(req.mask, req.feather)
    assert np.array_equal(after[alpha == 0], before[alpha == 0])
    assert (
        after[64 + 16 : 64 + 32, 64 + 16 : 64 + 32, 0] != before[64 + 16 : 64 + 32, 64 + 16 : 64 + 32, 0]
    ).any()
    assert patch.frame_id == fid and patch.rect == frame.rect and patch.seed == 124
    lineage = GenerationRequest.from_json(patch.request_json)
    assert lineage.seed == 124 and lineage.prompt == "sky" and lineage.mode == Mode.INPAINT
    assert lineage.init_image is None and json.loads(patch.request_json)["origin"] == [-16, -16]
    assert doc.patches == [patch]
    doc.undo()
    assert doc.patches == [] and np.array_equal(doc.image.read(-64, -64, 256, 256), before)


def test_accepted_pixels_are_what_accept_writes_and_change_nothing() -> None:
    # What a staged result is upscaled from: the frame exactly as Accept would leave it.
    doc, fid, req = inpaint_setup((16, 16, 24, 24))
    frame = doc.frame(fid)
    generated = photo(req.width, req.height, seed=7)[..., :3]
    history, before = len(doc.history), doc.image.read(*frame.rect)
    shown = accepted_pixels(doc, req, generated, frame.rect)
    assert len(doc.history) == history and np.array_equal(doc.image.read(*frame.rect), before)
    assert shown.shape == (64, 64, 4) and not np.array_equal(shown, before)
    accept_candidate(doc, fid, frame.rect, req, generated, 1)
    assert np.array_equal(doc.image.read(*frame.rect), shown)
    with pytest.raises(ValueError, match="inside the request's crop"):
        accepted_pixels(doc, req, generated, (-40, 0, 64, 64))


def test_accept_fires_history_changed_after_the_step_lands() -> None:
    """Defect 1: add_patch opened the history group directly, so no event said Undo was possible."""
    doc, fid, req = inpaint_setup((16, 16, 16, 16))
    seen: list[bool] = []
    doc.events.history_changed.connect(lambda: seen.append(doc.can_undo))
    accept_candidate(doc, fid, doc.frame(fid).rect, req, np.zeros((req.height, req.width, 3), np.uint8), 1)
    assert seen and seen[-1] is True


def test_edits_made_during_the_run_survive_accept() -> None:
    """Defect 2: a stroke inside the frame, far from the mask, painted while the engine ran."""
    doc, fid, req = inpaint_setup((4, 4, 8, 8))
    stroke = np.zeros((6, 20, 4), np.uint8)
    stroke[..., 0] = 250
    stroke[..., 3] = 255
    doc.paste(36, 50, stroke)  # after the request was made
    painted = doc.image.read(-16, -16, 96, 96)
    accept_candidate(doc, fid, doc.frame(fid).rect, req, np.zeros((96, 96, 3), np.uint8), 1)
    assert np.array_equal(doc.image.read(36, 50, 20, 6), stroke)
    after = doc.image.read(-16, -16, 96, 96)
    outside = feather_alpha(req.mask, req.feather) == 0
    assert np.array_equal(after[outside], painted[outside])


def test_feather_continues_past_the_frame_edge() -> None:
    """Defect 4: a mask touching the frame edge faded out inside the frame only (a hard seam)."""
    doc, fid, req = inpaint_setup((0, 16, 16, 16))  # touches the frame's left edge (x = 0)
    before = doc.image.read(-16, -16, 96, 96)
    generated = np.full((96, 96, 3), (20, 200, 90), np.uint8)
    accept_candidate(doc, fid, doc.frame(fid).rect, req, generated, 1)
    after = doc.image.read(-16, -16, 96, 96)
    row = 16 + 24  # canvas y = 24, in the middle of the mask
    change = np.abs(after[row, :, :3].astype(int) - before[row, :, :3]).sum(1)
    # Canvas x = -1 .. -3 (crop columns 15..13) lie outside the frame, in the feather: blended,
    # less and less with distance from the mask.
    assert change[16] > change[15] > change[14] > change[13] > 0


def test_empty_canvas_in_the_context_stays_empty() -> None:
    """A frame flush with the photo's border: the feather does not paint onto empty canvas."""
    doc = Document()
    doc.paste(0, 0, photo(64, 64))
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    doc.fill_mask(0, 0, 16, 16)  # touches the photo's (and frame's) corner
    req = plan_frame(doc, frame, context_padding=16).request(frame)
    before = doc.image.read(-16, -16, 96, 96)
    accept_candidate(doc, frame.id, frame.rect, req, np.full((96, 96, 3), 200, np.uint8), 1)
    after = doc.image.read(-16, -16, 96, 96)
    assert (after[:16, :, 3] == 0).all() and (after[:, :16, 3] == 0).all()
    outside = feather_alpha(req.mask, req.feather) == 0
    assert np.array_equal(after[outside], before[outside])


def test_accept_checks_its_input() -> None:
    doc, fid, req = inpaint_setup((16, 16, 16, 16))
    rect = doc.frame(fid).rect
    with pytest.raises(ValueError, match="request was 96x96"):
        accept_candidate(doc, fid, rect, req, np.zeros((32, 64, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="uint8"):
        accept_candidate(doc, fid, rect, req, np.zeros((96, 96, 3), np.float32), 1)
    with pytest.raises(ValueError, match="inside"):
        accept_candidate(doc, fid, (200, 200, 64, 64), req, np.zeros((96, 96, 3), np.uint8), 1)
    assert not doc.patches

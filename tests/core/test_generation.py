"""Mode, crop and mask of a frame's request, and accepting a result as a patch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from canvas_app.core.document import Document
from canvas_app.core.frames import PromptFrame
from canvas_app.core.generation import accept_result, crop_rect, mode_for_frame, request_for_frame
from canvas_app.core.request import GenerationRequest, Mode


def opaque(w: int, h: int, value: int = 100) -> np.ndarray:
    arr = np.full((h, w, 4), value, np.uint8)
    arr[..., 3] = 255
    return arr


def test_modes_follow_what_is_under_the_frame() -> None:
    doc = Document()
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    assert mode_for_frame(doc, frame) == Mode.TXT2IMG
    doc.paste(-100, -100, opaque(150, 150))  # covers the left/top part of the frame
    assert mode_for_frame(doc, frame) == Mode.OUTPAINT
    doc.paste(0, 0, opaque(64, 64))
    assert mode_for_frame(doc, frame) == Mode.IMG2IMG
    doc.fill_mask(200, 200, 10, 10)  # outside the frame: no effect
    assert mode_for_frame(doc, frame) == Mode.IMG2IMG
    doc.fill_mask(10, 10, 5, 5, value=40)
    assert mode_for_frame(doc, frame) == Mode.INPAINT
    doc.erase_rect(60, 60, 4, 4)
    assert mode_for_frame(doc, frame) == Mode.OUTPAINT


def test_txt2img_request_carries_frame_settings() -> None:
    doc = Document()
    frame = doc.add_frame(
        x=-64, y=8, w=96, h=64, prompt="a tree", negative_prompt="blur", seed=42, steps=3, guidance=2.5,
        strength=0.4, scheduler="DDIM", model="other", batch=2,
    )  # fmt: skip
    req = request_for_frame(doc, frame)
    assert req.mode == Mode.TXT2IMG
    assert (req.width, req.height, req.origin) == (96, 64, (-64, 8))
    assert (req.prompt, req.negative_prompt, req.seed, req.steps) == ("a tree", "blur", 42, 3)
    assert (req.guidance, req.strength, req.scheduler, req.model, req.batch) == (2.5, 0.4, "DDIM", "other", 2)
    assert req.init_image is None and req.mask is None
    assert GenerationRequest.from_json(req.to_json()) == req
    assert request_for_frame(doc, frame, seed=7).seed == 7
    random_frame = doc.add_frame(seed=-1)
    seeds = {request_for_frame(doc, random_frame).seed for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= s < 2**32 for s in seeds)


def test_img2img_crop_is_the_frame() -> None:
    doc = Document()
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc.paste(8, 8, pixels)
    frame = doc.add_frame(x=8, y=8, w=64, h=64)
    req = request_for_frame(doc, frame, context_padding=40)
    assert req.mode == Mode.IMG2IMG and req.origin == (8, 8) and req.mask is None
    assert req.init_image is not None
    np.testing.assert_array_equal(req.init_image, pixels)


def test_inpaint_crop_has_context_and_mask_only_inside_the_frame() -> None:
    doc = Document()
    doc.paste(-200, -200, opaque(500, 500))
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    doc.fill_mask(-20, 30, 40, 10)  # straddles the frame's left edge
    req = request_for_frame(doc, frame, context_padding=20)  # rounded up to 24 (the 8 px grid)
    assert req.mode == Mode.INPAINT
    assert req.origin == (-24, -24) and (req.width, req.height) == (112, 112)
    assert req.init_image is not None and req.init_image.shape == (112, 112, 4)
    mask = req.mask
    assert mask is not None and mask.shape == (112, 112) and mask.dtype == np.uint8
    # Canvas (x, y) is mask[y + 24, x + 24]; the brushed part outside the frame is context only.
    assert mask[30 + 24, 0 + 24] == 255 and mask[30 + 24, 19 + 24] == 255
    assert mask[30 + 24, -1 + 24] == 0 and mask[29 + 24, 10 + 24] == 0
    assert int((mask > 0).sum()) == 20 * 10


def test_outpaint_mask_covers_empty_pixels_and_brushed_mask() -> None:
    doc = Document()
    doc.paste(0, 0, opaque(32, 64))  # left half of the frame painted
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    doc.fill_mask(4, 4, 4, 4, value=128)
    req = request_for_frame(doc, frame, context_padding=0)
    assert req.mode == Mode.OUTPAINT and req.origin == (0, 0)
    mask = req.mask
    assert mask is not None and req.init_image is not None
    assert (mask[:, 32:] == 255).all()
    assert (mask[4:8, 4:8] == 128).all()
    assert int((mask[:, :32] > 0).sum()) == 16
    assert (req.init_image[:, 32:, 3] == 0).all()
    assert crop_rect(frame, Mode.OUTPAINT, 32) == (-32, -32, 128, 128)
    with pytest.raises(ValueError):
        crop_rect(frame, Mode.OUTPAINT, -1)


def test_accept_result_writes_only_the_frame_and_undoes_as_one() -> None:
    doc = Document()
    doc.paste(-64, -64, opaque(200, 200, 10))
    frame = doc.add_frame(x=0, y=0, w=64, h=32, prompt="sky")
    doc.fill_mask(0, 0, 64, 32)
    req = request_for_frame(doc, frame, context_padding=16, seed=123)
    result = np.full((req.height, req.width, 3), 222, np.uint8)
    history_before = len(doc.history)
    patch = accept_result(doc, frame, req, result, seed=124)
    assert len(doc.history) == history_before + 1
    assert doc.image.read(0, 0, 64, 32)[..., 0].min() == 222
    # The context around the frame is untouched.
    assert doc.image.read(-16, -16, 16, 16)[..., 0].max() == 10
    assert doc.image.read(0, 32, 64, 1)[..., 0].max() == 10
    assert patch.frame_id == frame.id and patch.rect == frame.rect and patch.seed == 124
    lineage = GenerationRequest.from_json(patch.request_json)
    assert lineage.seed == 124 and lineage.prompt == "sky" and lineage.mode == Mode.INPAINT
    assert lineage.init_image is None and json.loads(patch.request_json)["origin"] == [-16, -16]
    assert doc.patches == [patch]
    doc.undo()
    assert doc.patches == [] and doc.image.read(0, 0, 1, 1)[0, 0, 0] == 10


def test_accept_result_checks_its_input() -> None:
    doc = Document()
    frame = doc.add_frame(PromptFrame(x=0, y=0, w=64, h=64))
    req = request_for_frame(doc, frame)
    with pytest.raises(ValueError, match="request was 64x64"):
        accept_result(doc, frame, req, np.zeros((32, 64, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="uint8"):
        accept_result(doc, frame, req, np.zeros((64, 64, 3), np.float32), 1)
    moved = frame.moved_to(200, 200)
    with pytest.raises(ValueError, match="inside"):
        accept_result(doc, moved, req, np.zeros((64, 64, 4), np.uint8), 1)
    assert len(doc.history) == 1


def test_forced_modes_for_re_rolls() -> None:
    doc = Document()
    doc.paste(-64, -64, opaque(256, 256))
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    # A re-roll of an outpaint patch: nothing is empty any more, so the whole frame is regenerated.
    req = request_for_frame(doc, frame, context_padding=8, mode=Mode.OUTPAINT)
    assert req.mode == Mode.OUTPAINT and req.mask is not None
    assert (req.mask[8:72, 8:72] == 255).all() and int((req.mask > 0).sum()) == 64 * 64
    # A re-roll of a txt2img patch starts from scratch even though pixels are there now.
    req = request_for_frame(doc, frame, mode="txt2img")
    assert req.mode == Mode.TXT2IMG and req.init_image is None and req.mask is None

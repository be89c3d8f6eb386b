"""The frame plan: mode, crop, regenerate mask and seed of a frame's request, for GUI and CLI."""

from __future__ import annotations

import numpy as np
import pytest

from canvas_app.core.document import Document
from canvas_app.core.frame_plan import (
    EMPTY_ALPHA,
    crop_rect,
    decide_mode,
    plan_frame,
    plan_image,
    request_for_frame,
)
from canvas_app.core.request import GenerationRequest, Mode


def opaque(w: int, h: int, value: int = 100) -> np.ndarray:
    arr = np.full((h, w, 4), value, np.uint8)
    arr[..., 3] = 255
    return arr


def mode_for_frame(doc: Document, frame) -> Mode:
    return plan_frame(doc, frame).mode


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
    assert crop_rect(frame.rect, Mode.OUTPAINT, 32) == (-32, -32, 128, 128)
    with pytest.raises(ValueError):
        crop_rect(frame.rect, Mode.OUTPAINT, -1)


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


def test_one_empty_threshold_decides_mode_and_regen() -> None:
    """Half-erased pixels (alpha < EMPTY_ALPHA) are empty; anti-aliased ones (>=) are content."""
    doc = Document()
    doc.paste(0, 0, opaque(64, 64))
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    edge = opaque(8, 8)
    edge[..., 3] = EMPTY_ALPHA
    doc.paste(0, 0, edge)
    assert plan_frame(doc, frame).mode == Mode.IMG2IMG
    edge[..., 3] = EMPTY_ALPHA - 1
    doc.paste(0, 0, edge)
    plan = plan_frame(doc, frame, context_padding=0)
    assert plan.mode == Mode.OUTPAINT and plan.regen is not None
    assert (plan.regen[:8, :8] == 255).all() and int((plan.regen > 0).sum()) == 64


def test_context_padding_over_empty_canvas_is_never_regenerated() -> None:
    """A frame flush with the photo's border: the padding hangs over empty canvas. Only the mask
    inside the frame is regenerated (defect 3: the engine used to add the empty padding)."""
    doc = Document()
    doc.paste(0, 0, opaque(64, 64))
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    doc.fill_mask(24, 24, 8, 8)
    plan = plan_frame(doc, frame, context_padding=16)
    assert plan.mode == Mode.INPAINT and plan.crop == (-16, -16, 96, 96)
    assert plan.init is not None and (plan.init[:16, :, 3] == 0).all()  # the padding is empty
    assert plan.regen is not None and int((plan.regen > 0).sum()) == 64
    req = plan.request(frame)
    assert req.mask is plan.regen and req.feather == plan.feather and req.origin == (-16, -16)


def test_plan_image_is_the_cli_mode_inference() -> None:
    photo = opaque(32, 32)
    assert plan_image(None, None, (32, 32), seed=3).mode == Mode.TXT2IMG
    assert plan_image(photo, None, (32, 32), seed=3).mode == Mode.IMG2IMG
    mask = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match="nothing to regenerate"):
        plan_image(photo, mask, (32, 32))
    mask[4:8, 4:8] = 255
    plan = plan_image(photo, mask, (32, 32), seed=3)
    assert plan.mode == Mode.INPAINT and plan.regen is not None and int((plan.regen > 0).sum()) == 16
    holes = photo.copy()
    holes[:, 16:, 3] = 0
    plan = plan_image(holes, None, (32, 32), seed=3)
    assert plan.mode == Mode.OUTPAINT and plan.regen is not None and (plan.regen[:, 16:] == 255).all()
    assert decide_mode(holes[..., :3], None) == Mode.IMG2IMG  # RGB has no empty pixels

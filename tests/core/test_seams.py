"""The seam check: a patch whose colours are off is flagged where it is off; a perfect one is not."""

import cv2
import numpy as np
import pytest

from canvas_app.core.composite import composite
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import plan_frame
from canvas_app.core.request import GenerationRequest, Mode
from canvas_app.core.seams import SEAM_THRESHOLD, check_candidate, check_seam, seam_geometry


def scene(h: int = 160, w: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like RGBA image: broad colour gradients with a little grain."""
    rng = np.random.default_rng(seed)
    broad = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 20)
    broad = (broad - broad.mean()) / broad.std()
    grain = rng.normal(0, 2, (h, w, 3))
    rgb = np.clip(120 + 15 * broad + grain, 0, 255).astype(np.uint8)
    return np.dstack([rgb, np.full((h, w), 255, np.uint8)])


def regen_rect(h: int = 160, w: int = 160) -> np.ndarray:
    regen = np.zeros((h, w), np.uint8)
    regen[48:112, 40:104] = 255
    return regen


def offset_patch(image: np.ndarray, offset: tuple[int, int, int], left_only: bool = False) -> np.ndarray:
    generated = image[..., :3].astype(np.int32)
    shift = np.zeros_like(generated)
    shift[:, : 72 if left_only else None] = offset
    return np.clip(generated + shift, 0, 255).astype(np.uint8)


def test_a_perfect_patch_has_no_seam() -> None:
    image, regen = scene(), regen_rect()
    after, _ = composite(image, image[..., :3].copy(), regen, 8, match_colors=False)
    check = check_seam(image, after, regen, 8)
    assert len(check.geometry.segments) >= 12
    assert not check.has_seam
    np.testing.assert_allclose(check.after, check.before)
    assert not check.band().any() and check.polylines() == []


def test_a_patch_with_a_colour_offset_is_flagged_along_its_boundary() -> None:
    image, regen = scene(), regen_rect()
    after, _ = composite(image, offset_patch(image, (30, 18, -10)), regen, 8, match_colors=False)
    check = check_seam(image, after, regen, 8)
    assert check.has_seam and check.flagged.mean() > 0.8
    assert check.step("after") - check.step("before") > SEAM_THRESHOLD
    band = check.band()
    # The band straddles the boundary: inside the patch and outside it, past the feather.
    assert band[48:56, 60].all() and band[40:48, 60].all() and not band[80, 72] and not band[20, 72]
    for line in check.polylines():  # drawn on the patch's edge
        x, y = line[:, 0], line[:, 1]
        on_edge = (
            (np.abs(x - 40.5) < 1)
            | (np.abs(x - 103.5) < 1)
            | (np.abs(y - 48.5) < 1)
            | (np.abs(y - 111.5) < 1)
        )
        assert on_edge.all()


def test_only_the_segments_where_the_colours_are_off_are_flagged() -> None:
    image, regen = scene(seed=1), regen_rect()
    after, _ = composite(image, offset_patch(image, (0, 35, 35), left_only=True), regen, 8, False)
    check = check_seam(image, after, regen, 8)
    assert check.has_seam
    for line in check.polylines():
        assert line[:, 0].mean() < 80  # the left part only
    right = [i for i, s in enumerate(check.geometry.segments) if s[:, 0].min() > 90]
    assert right and not check.flagged[right].any()


def test_repair_measure_sees_the_step_go_back_down() -> None:
    image, regen = scene(seed=2), regen_rect()
    after, _ = composite(image, offset_patch(image, (-30, -30, -30)), regen, 8, match_colors=False)
    check = check_seam(image, after, regen, 8)
    assert check.has_seam
    assert check.remeasure(after) == pytest.approx(check.step("after"))
    assert check.remeasure(image) < check.step("after") - SEAM_THRESHOLD


def test_an_outpaint_is_judged_against_the_surroundings() -> None:
    """Nothing was inside before: the baseline is how much the surroundings change outside."""
    image = scene(seed=3)
    before = image.copy()
    before[:, 96:, 3] = 0  # the right part was empty
    regen = np.zeros(image.shape[:2], np.uint8)
    regen[:, 96:] = 255
    smooth, _ = composite(before, image[..., :3].copy(), regen, 8, match_colors=False)
    check = check_seam(before, smooth, regen, 8)
    assert not np.isnan(check.before).all() and not check.has_seam
    off, _ = composite(before, offset_patch(image, (40, 40, 0)), regen, 8, match_colors=False)
    assert check_seam(before, off, regen, 8).has_seam


def test_empty_surroundings_are_not_measured() -> None:
    empty = np.zeros((64, 64, 4), np.uint8)
    regen = np.zeros((64, 64), np.uint8)
    regen[16:48, 16:48] = 255
    after, _ = composite(empty, np.full((64, 64, 3), 200, np.uint8), regen, 8)
    check = check_seam(empty, after, regen, 8)
    assert np.isnan(check.after).all() and not check.has_seam


def test_geometry_rings_lie_where_they_should() -> None:
    g = seam_geometry(regen_rect(), gap=8)
    assert g.inner[48:52, 70].all() and not g.inner[53, 70] and not g.inner[47, 70]
    assert g.outer[36:40, 70].all() and not g.outer[41, 70] and not g.outer[35, 70]
    assert (g.nearest[g.inner | g.outer] >= 0).all()


def test_check_candidate_composites_like_accept_and_places_the_window() -> None:
    doc = Document()
    image = scene(128, 128, seed=4)
    doc.paste(0, 0, image)
    frame = doc.add_frame(x=32, y=32, w=64, h=64, prompt="x")
    doc.fill_mask(48, 48, 32, 32)
    request = plan_frame(doc, frame, context_padding=16, seed=1).request(frame, color_match=False)
    cx, cy = request.origin
    crop = image[cy : cy + request.height, cx : cx + request.width]
    good = check_candidate(doc, request, crop[..., :3].copy())
    assert not good.has_seam
    bad = check_candidate(doc, request, offset_patch(crop, (35, 35, 35)))
    assert bad.has_seam
    wx, wy, ww, wh = bad.window
    assert wx < cx and wy < cy and ww > request.width
    for line in bad.polylines():  # canvas coordinates, on the mask's edge
        assert (line >= 47).all() and (line <= 81).all()


def test_a_txt2img_frame_is_checked_at_its_edge() -> None:
    doc = Document()
    doc.paste(0, 0, scene(128, 128, seed=5))
    request = GenerationRequest(mode=Mode.IMG2IMG, width=64, height=64, origin=(32, 32), color_match=False)
    check = check_candidate(doc, request, np.full((64, 64, 3), 250, np.uint8))
    assert check.has_seam and check.geometry.gap == 0


def test_plan_frame_with_a_band_inpaints_the_band_inside_the_frame() -> None:
    doc = Document()
    doc.paste(0, 0, scene(128, 128))
    frame = doc.add_frame(x=32, y=32, w=64, h=64, prompt="x")
    band = np.zeros((40, 40), np.uint8)
    band[:, :] = 255
    plan = plan_frame(doc, frame, context_padding=16, seed=3, mask=((80, 80), band))
    assert plan.mode is Mode.INPAINT and plan.regen is not None
    cx, cy = plan.crop[:2]
    marked = np.argwhere(plan.regen > 0)
    # Clipped to the frame (80..96), not the band's full reach (80..120).
    assert marked.min(0).tolist() == [80 - cy, 80 - cx] and marked.max(0).tolist() == [95 - cy, 95 - cx]
    assert not doc.mask.read(0, 0, 128, 128).any()  # the brushed mask is not touched
    with pytest.raises(ValueError, match="nothing inside the frame"):
        plan_frame(doc, frame, mask=((200, 200), band))

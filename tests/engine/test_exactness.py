"""The whole path, frame plan -> real engine -> composite at accept, keeps every pixel outside the
feathered mask bit for bit; infill fills only what is empty."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, run

from canvas_app.core.composite import accept_candidate, feather_alpha
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import plan_frame
from canvas_app.engine.api import Finished, Mode
from canvas_app.engine.infill import METHODS, infill


def rgba(image: np.ndarray) -> np.ndarray:
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


@pytest.mark.parametrize("model_name", ["sd4", "inpaint4"])
def test_repeated_inpaints_leave_unmasked_pixels_unchanged(engine, model_name: str, request) -> None:
    """20 inpaints in a row, through plan, engine and accept: nothing outside the feather moves."""
    model = request.getfixturevalue(model_name)
    doc = Document()
    doc.paste(0, 0, rgba(photo(96, 96, seed=3)))
    original = doc.image.read(-8, -8, 112, 112)
    frame = doc.add_frame(x=16, y=16, w=64, h=64, prompt="a dog", steps=2, model=model)
    doc.fill_mask(36, 32, 16, 16)
    outside = None
    for i in range(20):
        plan = plan_frame(doc, frame, context_padding=8, seed=i, feather=4)
        req = plan.request(frame)
        finished = run(engine, req)[-1]
        assert isinstance(finished, Finished), finished
        assert finished.candidates[0].shape == (req.height, req.width, 3)  # the decoded crop only
        accept_candidate(doc, frame.id, frame.rect, req, finished.candidates[0], finished.seeds[0])
        if outside is None:
            alpha = np.zeros((112, 112), np.uint8)
            alpha[16:96, 16:96] = feather_alpha(req.mask, req.feather)
            outside = alpha == 0
        assert np.array_equal(doc.image.read(-8, -8, 112, 112)[outside], original[outside])
    assert not np.array_equal(doc.image.read(36, 32, 16, 16), original[40:56, 44:60])


@pytest.mark.parametrize("corner", [(0, 0), (32, 32)])
def test_frame_flush_with_the_photo_border_changes_only_the_feathered_mask(
    engine, inpaint4: str, corner
) -> None:
    """Defect 3: the context padding over empty canvas was regenerated and feathered into the frame,
    changing photo pixels far from any mask. Here the frame is flush with the photo's corner (its
    padding hangs over empty canvas) and the mask touches the frame's edge."""
    doc = Document()
    doc.paste(0, 0, rgba(photo(96, 96, seed=5)))
    fx, fy = corner
    frame = doc.add_frame(x=fx, y=fy, w=64, h=64, prompt="a tree", steps=2, model=inpaint4)
    doc.fill_mask(fx + 24, fy, 16, 12)  # touches the frame's top edge
    plan = plan_frame(doc, frame, context_padding=16, seed=1)
    assert plan.mode is Mode.INPAINT
    req = plan.request(frame)
    cx, cy = req.origin
    before = doc.image.read(cx, cy, req.width, req.height)
    finished = run(engine, req)[-1]
    assert isinstance(finished, Finished), finished
    accept_candidate(doc, frame.id, frame.rect, req, finished.candidates[0], finished.seeds[0])
    after = doc.image.read(cx, cy, req.width, req.height)
    outside = feather_alpha(req.mask, req.feather) == 0
    assert int((after[outside] != before[outside]).any(axis=1).sum()) == 0
    assert (after != before).any()


@pytest.mark.parametrize("method", METHODS)
def test_infill_fills_empty_pixels_only(method: str) -> None:
    image = photo(96, 64)
    empty = np.zeros((64, 96), bool)
    empty[:, 60:] = True
    filled = infill(np.where(empty[..., None], 0, image).astype(np.uint8), empty, method)
    assert np.array_equal(filled[~empty], image[~empty])
    # Filled from the surroundings, not left black.
    assert filled[empty].mean() > 40


def test_infill_large_hole_is_fast_enough() -> None:
    import time

    image = photo(1024, 512)
    empty = np.zeros((512, 1024), bool)
    empty[:, 400:] = True
    start = time.perf_counter()
    out = infill(image, empty, "telea")
    assert time.perf_counter() - start < 5.0
    assert np.array_equal(out[~empty], image[~empty])

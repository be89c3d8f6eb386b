"""Paste-back keeps unmasked pixels bit for bit; infill fills only what is empty."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, run
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_app.engine.api import Finished, GenerationRequest, Mode
from canvas_app.engine.infill import METHODS, infill
from canvas_app.engine.pasteback import color_match, feather_alpha, paste_back


@given(
    feather=st.integers(0, 12),
    box=st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 24), st.integers(1, 24)),
    seed=st.integers(0, 1000),
)
@settings(max_examples=60, deadline=None)
def test_zero_alpha_pixels_are_bit_exact(feather: int, box: tuple[int, int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    generated = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    x, y, w, h = box
    mask[y : y + h, x : x + w] = 255
    out = paste_back(original, generated, mask, feather, match_colors=True)
    alpha = feather_alpha(mask, feather)
    assert np.array_equal(out[alpha == 0], original[alpha == 0])
    inside = mask == 255
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
    shifted = np.clip(original.astype(int) + 30, 0, 255).astype(np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    alpha = feather_alpha(mask, 8)
    matched = color_match(shifted, original, alpha, np.ones((64, 64), bool))
    band = (alpha > 0) & (alpha < 255)
    before = np.abs(shifted[band].astype(int) - original[band]).mean()
    after = np.abs(matched[band].astype(int) - original[band]).mean()
    assert after < before / 3


def test_repeated_inpaints_leave_unmasked_pixels_unchanged(engine, sd4: str) -> None:
    image = photo(64, 64, seed=3)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:36, 24:40] = 255
    request = GenerationRequest(
        prompt="a dog", mode=Mode.INPAINT, width=64, height=64, steps=2, model=sd4, mask=mask, feather=4
    )
    outside = feather_alpha(mask, 4) == 0
    current = image
    for i in range(20):
        finished = run(engine, request.with_changes(init_image=current, seed=i))[-1]
        assert isinstance(finished, Finished)
        current = finished.candidates[0]
        assert np.array_equal(current[outside], image[outside])
    assert not np.array_equal(current[mask == 255], image[mask == 255])


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

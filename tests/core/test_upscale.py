"""Upscale requests (core): Lanczos pixels, img2img in tiles at low strength, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from canvas_app.core.frames import PromptFrame
from canvas_app.core.limits import MAX_FRAME_SIDE
from canvas_app.core.request import Mode
from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH, lanczos, upscale_request


def _image(w: int = 64, h: int = 48, alpha: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return np.dstack([rgb, np.full((h, w), 255, np.uint8)]) if alpha else rgb


def test_request_is_tiled_img2img_of_the_lanczos_pixels_with_the_frame_settings() -> None:
    frame = PromptFrame(prompt="a lake", steps=12, model="m", strength=0.9, large_frame="two-pass")
    image = _image()
    request = upscale_request(image, 2, frame, seed=5)
    assert request.mode is Mode.IMG2IMG and (request.width, request.height) == (128, 96)
    assert request.large_frame == "tiled"  # composing again would throw the picture away
    assert request.strength == DEFAULT_UPSCALE_STRENGTH and request.batch == 1
    assert (request.prompt, request.steps, request.model, request.seed) == ("a lake", 12, "m", 5)
    assert request.init_image is not None and np.array_equal(request.init_image, lanczos(image, 2))
    # Lanczos keeps the picture: averaging each 2x2 block gives back about the original.
    back = request.init_image.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(back - image).mean() < 20


def test_rgba_keeps_its_transparency_without_dark_fringes() -> None:
    image = _image(alpha=True)
    image[:, 32:, 3] = 0
    image[:, 32:, :3] = 0  # black under the transparent half
    big = lanczos(image, 4)
    assert big.shape == (192, 256, 4)
    assert (big[:, :110, 3] == 255).all() and (big[:, 146:, 3] == 0).all()  # Lanczos rings a little
    edge = big[:, 120:126]
    assert edge[..., :3].mean() > 60  # premultiplied: the black does not bleed into the edge


@pytest.mark.parametrize(
    ("scale", "image", "words"),
    [
        (3, _image(), "one of 2, 4"),
        (4, _image(MAX_FRAME_SIDE // 4 + 8, 8), "more than"),
        (2, np.zeros((64, 64, 4), np.uint8), "nothing to upscale"),
    ],
)
def test_refusals_say_why(scale: int, image: np.ndarray, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        upscale_request(image, scale)

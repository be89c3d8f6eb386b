"""Generation from the built-in model in resources/models (skipped when it is not installed)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, run

from canvas_app.core.composite import composite
from canvas_app.engine.api import Finished, GenerationRequest, Mode, Progress
from canvas_app.engine.models import builtin_model_dir

pytestmark = pytest.mark.skipif(
    not (builtin_model_dir() / "model_index.json").is_file(), reason="the built-in model is not installed"
)


def test_builtin_txt2img_reads_its_geometry_from_the_configs(engine) -> None:
    model = engine.load("builtin")
    assert model.native_size == model.unet.config.sample_size * model.vae_factor
    size = model.native_size
    events = run(
        engine,
        GenerationRequest(prompt="a red house under a blue sky", width=size, height=size, steps=8, seed=4),
    )
    finished = events[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    image = finished.candidates[0]
    assert image.shape == (size, size, 3)
    assert image.std() > 5, "a real picture, not a flat colour"
    previews = [e.preview for e in events if isinstance(e, Progress) and e.preview is not None]
    assert previews and previews[-1].shape == (size // model.vae_factor, size // model.vae_factor, 3)


def test_builtin_inpaint_keeps_unmasked_pixels(engine) -> None:
    size = engine.load("builtin").native_size
    image = photo(size, size, seed=1)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : size // 2, size // 4 : size // 2] = 255
    request = GenerationRequest(
        prompt="a tree",
        mode=Mode.INPAINT,
        width=size,
        height=size,
        steps=6,
        init_image=image,
        mask=mask,
        feather=4,
        strength=1.0,
    )
    finished = run(engine, request)[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    current = np.dstack([image, np.full((size, size), 255, np.uint8)])
    out, alpha = composite(current, finished.candidates[0], mask, request.feather)
    assert np.array_equal(out[alpha == 0], current[alpha == 0]) and (alpha[size - 8 :, :] == 0).all()
    assert not np.array_equal(out[mask == 255], current[mask == 255])

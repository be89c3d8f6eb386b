"""The built-in model that ships in resources/models loads offline and follows its prompts."""

import json
from pathlib import Path

import numpy as np
import pytest

from tools.builtin_model.scenes import vocabulary

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
pytestmark = pytest.mark.skipif(not (MODELS / "builtin").is_dir(), reason="built-in model not installed")


@pytest.fixture(scope="module")
def pipe():
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    from canvas_app.engine.builtin_weights import from_pretrained

    pipe = from_pretrained(StableDiffusionPipeline, MODELS / "builtin")
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe, prompt: str, seed: int = 0) -> np.ndarray:
    import torch

    out = pipe(
        prompt,
        height=128,
        width=128,
        num_inference_steps=12,
        guidance_scale=7.5,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )
    return out.images[0]


@pytest.mark.parametrize("name", ["builtin", "builtin-inpaint"])
def test_folders_are_fp16_safetensors_with_a_card(name):
    folder = MODELS / name
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.ckpt"))
    assert "license: apache-2.0" in (folder / "README.md").read_text()
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["steps_offset"] == 1
    assert len(json.loads((folder / "latent_rgb.json").read_text())["factors"]) == 4


def test_model_reports_its_own_factor_and_native_size(pipe):
    assert pipe.vae_scale_factor == 4
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == 128
    for word in vocabulary():
        assert len(pipe.tokenizer.tokenize(word)) == 1, word


def test_same_seed_same_pixels_and_prompts_steer_the_image(pipe):
    white = _generate(pipe, "a red circle in the center, white background")
    again = _generate(pipe, "a red circle in the center, white background")
    black = _generate(pipe, "a red circle in the center, black background")
    assert np.array_equal(white, again)
    assert white.std() > 0.02
    # The background fills most of the frame: its brightness follows the prompt.
    assert white.mean() > black.mean() + 0.1

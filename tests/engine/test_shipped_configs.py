"""The configs shipped for single-file SD 1.x / 2.x / SDXL checkpoints describe the real
architectures (parameter counts of the published models), and the shipped CLIP vocabulary gives
CLIP's token ids."""

from __future__ import annotations

import json

import pytest
import torch

from canvas_app.engine.clip_vocab import clip_tokenizer
from canvas_app.engine.single_file import CONFIGS_DIR, _pads_with_bang

# Published parameter counts.
UNET = {
    "v1": 859_520_964,
    "inpainting": 859_535_364,  # v1 + 5 input channels x 320 x 3 x 3
    "v2": 865_910_724,
    "inpainting_v2": 865_925_124,
    "xl_base": 2_567_463_684,
    "xl_inpaint": 2_567_478_084,  # xl_base + 5 input channels x 320 x 3 x 3
}
TEXT = {"v1": 123_060_480, "v2": 340_387_840, "xl_base": 123_060_480}
TEXT_2 = {"xl_base": 694_659_840}
VAE = 83_653_863


def _count(cls, config_dir) -> int:
    config = json.loads((config_dir / "config.json").read_text())
    with torch.device("meta"):
        if hasattr(cls, "from_config"):
            model = cls.from_config(config)
        else:
            model = cls(cls.config_class(**config))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(UNET))
def test_shipped_unet_and_vae_configs_match_the_published_models(name: str) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    folder = CONFIGS_DIR / name
    assert _count(UNet2DConditionModel, folder / "unet") == UNET[name]
    assert _count(AutoencoderKL, folder / "vae") == VAE


@pytest.mark.parametrize("name", sorted(TEXT))
def test_shipped_text_encoder_configs_match_the_published_models(name: str) -> None:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS_DIR / name
    assert _count(CLIPTextModel, folder / "text_encoder") == TEXT[name]
    if name in TEXT_2:
        assert _count(CLIPTextModelWithProjection, folder / "text_encoder_2") == TEXT_2[name]
    assert _pads_with_bang(folder, "tokenizer") == (name == "v2")
    assert _pads_with_bang(folder, "tokenizer_2") == (name == "xl_base")


def test_shipped_vocabulary_gives_clip_token_ids() -> None:
    tokenizer = clip_tokenizer()
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == 49408
    assert clip_tokenizer(pad_token="!").pad_token_id == 0

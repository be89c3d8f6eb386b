"""The heavy models bench/cpu_speed.py measures: SD 1.5- and SDXL-shaped diffusers folders built
from the shipped configs with random weights (fp16 on disk), once, and reused."""

from __future__ import annotations

from pathlib import Path

from bench.cpu_speed_util import CONFIGS


def build_sd15(folder: Path) -> Path:
    """An SD 1.5-shaped diffusers folder (shipped v1 configs, random weights, fp16 on disk like most
    distributions), built once and reused."""
    if (folder / "model_index.json").is_file():
        return folder
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from canvas_app.engine.clip_vocab import clip_tokenizer

    torch.manual_seed(0)
    v1 = CONFIGS / "v1"
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(v1 / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(v1 / "vae"))
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(v1 / "text_encoder"))
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(v1 / "scheduler"))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(dtype=torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_sdxl(folder: Path) -> Path:
    """An SDXL-shaped diffusers folder (shipped xl_base configs, random weights, fp16 on disk: 6.9 GB),
    built once and reused. The weights are created in fp16 directly, so building needs ~7 GB, not 14."""
    if (folder / "model_index.json").is_file():
        return folder
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from canvas_app.engine.clip_vocab import clip_tokenizer

    torch.manual_seed(0)
    xl = CONFIGS / "xl_base"
    kept = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(xl / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(xl / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(xl / "text_encoder"))
        text_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(xl / "text_encoder_2"))
    finally:
        torch.set_default_dtype(kept)
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(xl / "scheduler"))
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text,
        text_encoder_2=text_2,
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(pad_token="!"),
        unet=unet,
        scheduler=scheduler,
    )
    pipe.to(dtype=torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder

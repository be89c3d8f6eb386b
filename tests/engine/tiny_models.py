"""Tiny random Stable Diffusion pipelines built in code and saved as diffusers folders.

Nothing is fetched: the tokenizer is the local word-level CLIP tokenizer of the built-in model, the
weights are random with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

WORDS = ["a", "cat", "dog", "red", "blue", "sky", "tree", "house", "photo", "of", "the", "painting"]


def build_tokenizer(out_dir: Path):
    """A CLIPTokenizer that needs no download: the built-in word-level tokenizer over WORDS."""
    from tools.builtin_model.tokenizer import build_word_tokenizer

    return build_word_tokenizer(WORDS, out_dir)


def build_pipeline(
    out_dir: Path, vae_factor: int = 8, unet_channels: int = 4, seed: int = 0, zero_snr: bool = False
) -> Path:
    """Save a tiny StableDiffusion(Inpaint)Pipeline with a VAE of the given downsampling factor and
    a UNet with 4 (txt2img) or 9 (inpainting) input channels. Native size is 64 px. ``zero_snr``
    gives it the built-in model's schedule: zero terminal SNR with v-prediction."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    blocks = {2: (8, 16), 4: (8, 16, 16), 8: (8, 16, 16, 16)}[vae_factor]
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(blocks),
        up_block_types=("UpDecoderBlock2D",) * len(blocks),
        block_out_channels=blocks,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    unet = UNet2DConditionModel(
        sample_size=64 // vae_factor,
        in_channels=unet_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    tokenizer = build_tokenizer(out_dir.parent / f"{out_dir.name}-tokenizer-src")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=max(len(tokenizer), 64),
            max_position_embeddings=77,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        rescale_betas_zero_snr=zero_snr,
        prediction_type="v_prediction" if zero_snr else "epsilon",
    )
    cls = StableDiffusionInpaintPipeline if unet_channels == 9 else StableDiffusionPipeline
    pipe = cls(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def build_builtin_models(models: Path, shared: bool = False) -> Path:
    """Tiny ``builtin`` and ``builtin-inpaint`` folders like the built-in model's: factor-4 VAEs, the
    zero-SNR schedule, int8 UNets; ``shared`` drops the inpainting folder's VAE, text encoder and
    tokenizer, which the shipped one takes from the base."""
    import shutil

    from canvas_app.engine.models import SHARED_COMPONENTS
    from tools.builtin_model.shipped_weights import convert

    build_pipeline(models / "builtin", vae_factor=4, zero_snr=True)
    build_pipeline(models / "builtin-inpaint", vae_factor=4, unet_channels=9, zero_snr=True)
    convert(models)
    for name in SHARED_COMPONENTS if shared else ():
        shutil.rmtree(models / "builtin-inpaint" / name)
    return models


def build_sdxl_pipeline(out_dir: Path, seed: int = 0) -> Path:
    """Save a tiny StableDiffusionXLPipeline: two text encoders (the second with a projection, for
    the pooled embedding), a UNet with SDXL's text-time micro-conditioning, VAE factor 4, native
    64 px."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    tokenizer = build_tokenizer(out_dir.parent / f"{out_dir.name}-tokenizer-src")

    def text_config(hidden: int) -> CLIPTextConfig:
        return CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=hidden,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=max(len(tokenizer), 64),
            max_position_embeddings=77,
            projection_dim=hidden,
        )

    text_encoder = CLIPTextModel(text_config(32))
    text_encoder_2 = CLIPTextModelWithProjection(text_config(32))
    time_dim = 8
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=64,  # both encoders' hidden states side by side
        attention_head_dim=4,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + 32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir

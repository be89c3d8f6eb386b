"""The built-in model's components: stock diffusers/transformers classes at a CPU-friendly size.

The VAE downsamples by 4 (three blocks), not Stable Diffusion's 8: on two CPU cores it trains to a
good reconstruction many times faster, and the engine reads the factor from the config anyway.
"""

from __future__ import annotations

NATIVE_SIZE = 128
VAE_FACTOR = 4
LATENT_SIZE = NATIVE_SIZE // VAE_FACTOR
TEXT_MAX_LENGTH = 32
TEXT_WIDTH = 128


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=NATIVE_SIZE,
        # No attention in the mid block: its cost grows with the square of the image area, and the
        # engine decodes large canvases.
        mid_block_add_attention=False,
    )


def make_unet(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(48, 96, 160),
        layers_per_block=1,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def make_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=TEXT_WIDTH * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=TEXT_MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=TEXT_WIDTH,
    )
    return CLIPTextModel(config)


def make_scheduler(zero_terminal_snr: bool = True):
    """Stable Diffusion's noise schedule; the shipped model uses it rescaled to zero terminal SNR.

    With SD's plain schedule the noisiest training latent still holds 7% of the image's amplitude,
    and on a 32x32 latent that leaks layout and colours, which the model can then read from the noise
    instead of the prompt. At zero terminal SNR the last step is pure noise, which only v-prediction
    can learn from (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed").
    Measured here: kind and colour adherence rose from 65-74% to 87-96%; position words still do
    nothing (see the model card).
    ``zero_terminal_snr=False`` is the epsilon-prediction schedule of the early training steps.
    """
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
        rescale_betas_zero_snr=zero_terminal_snr,
        prediction_type="v_prediction" if zero_terminal_snr else "epsilon",
    )

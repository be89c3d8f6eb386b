"""What the UNet stages optimise, independent of data and checkpoints: the prediction target, the
loss weights, the learning-rate schedule, and the one-off redraw of the position words."""

from __future__ import annotations

import math


def loss_weights(scheduler, timesteps, gamma: float = 5.0):
    """Min-SNR-style weights: each step's loss counts as an x0 error weighted min(SNR, gamma).

    For v-prediction the x0 weight is min(SNR + 1, gamma) rather than min(SNR, gamma): the latter is
    zero at the pure-noise step, the very step that must learn the layout from the prompt.
    """
    alphas = scheduler.alphas_cumprod[timesteps]
    snr = alphas / (1 - alphas).clamp(min=1e-8)
    if scheduler.config.prediction_type == "v_prediction":
        return (gamma / (snr + 1)).clamp(max=1.0)
    return snr.clamp(max=gamma) / snr


def denoiser_target(scheduler, latents, noise, timesteps):
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    return noise


def weighted_losses(unet, scheduler, latents, hidden, gen, conditioning=None, timesteps=None):
    """Per-item weighted denoising losses of ``unet`` on clean scaled ``latents``: noise (then, unless
    given, timesteps) drawn from ``gen``; ``conditioning`` (the inpainting channels) joins the input."""
    import torch

    noise = torch.randn(latents.shape, generator=gen)
    if timesteps is None:
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(noise),), generator=gen)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    model_in = noisy if conditioning is None else torch.cat([noisy, conditioning], dim=1)
    pred = unet(model_in, timesteps, hidden).sample
    target = denoiser_target(scheduler, latents, noise, timesteps)
    return (pred.float() - target).pow(2).mean(dim=(1, 2, 3)) * loss_weights(scheduler, timesteps)


POSITION_WORDS = ("left", "center", "right")


def redraw_position_words(text_encoder, tokenizer, seed: int, norm: float = 0.5) -> None:
    """Give "left", "center" and "right" fresh, mutually orthogonal token embeddings.

    Measured on the 9,050-step model: the encoder mapped "a red circle on the left, ..." and
    "... on the right, ..." to sequences 1.9% apart (colour words: 53%). Fresh orthogonal rows
    (norm 0.5, about that of the trained colour words) put them 19% apart and leave the colour and
    setting words' embeddings as they were (red/blue 53% -> 50%). The encoder has kept them apart
    since, but the UNet still does not act on them (see the model card); the redraw stays in the
    recipe because the shipped weights went through it.
    """
    import torch

    weight = text_encoder.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(seed)
    directions, _ = torch.linalg.qr(torch.randn(weight.shape[1], len(POSITION_WORDS), generator=gen))
    with torch.no_grad():
        for k, word in enumerate(POSITION_WORDS):
            weight[tokenizer.convert_tokens_to_ids(word + "</w>")] = directions[:, k] * norm


def lr_at(step: int, steps: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

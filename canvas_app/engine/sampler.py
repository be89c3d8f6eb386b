"""The denoising loop, run by us over the diffusers components so that every step of every tile can
report a preview and be cancelled.

One step: for each tile, the UNet predicts noise for that window (classifier-free guidance batched
as [negative, positive]); the predictions are blended across tiles; one scheduler step moves the
whole latent. Inpainting uses the 9-channel UNet's mask inputs when the model has them, else blends
the known region back in from the noised original latents after every step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from canvas_app.engine.conditioning import Conditioning
from canvas_app.engine.devices import latent_dtype
from canvas_app.engine.tiling import Tile, TileBlender


class RunCancelled(Exception):
    def __init__(self, step: int) -> None:
        super().__init__(f"cancelled at step {step}")
        self.step = step


@dataclass
class SampleJob:
    model: Any  # LoadedModel
    cond: Conditioning
    scheduler: Any  # a fresh instance for this run
    timesteps: Any
    guidance: float
    seed: int
    latent_w: int
    latent_h: int
    tiles: list[Tile]
    ramp: int
    init_latents: Any | None = None  # scaled VAE latents of the init image
    from_noise: bool = True  # start from pure noise (txt2img, or strength 1)
    mask: Any | None = None  # (1, 1, h, w), 1 = regenerate
    masked_image_latents: Any | None = None  # 9-channel UNets only
    regions: Any | None = None  # engine.regions.RegionPrompts: several prompts blended per step


# (step 1-based within this run, tile index, function returning the x0 latent of that tile)
StepHook = Callable[[int, int, Callable[[], Any]], None]


def prepare_timesteps(scheduler: Any, steps: int, strength: float, device: Any) -> tuple[Any, bool]:
    """Timesteps to run for ``steps`` and img2img ``strength`` (1.0 = all), and whether the run
    starts from pure noise."""
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    if strength >= 1.0:
        return timesteps, True
    order = getattr(scheduler, "order", 1)
    keep = min(max(int(round(steps * strength)), 1), steps)
    start = (steps - keep) * order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return timesteps[start:], False


def unet_call_args(model: Any, cond: Conditioning, unet_in: Any, t: Any, tile: Tile) -> tuple[tuple, dict]:
    """The arguments of one UNet call on ``tile`` (one place for the loop and the compile ahead)."""
    unet = model.unet
    factor = model.vae_factor
    added = cond.added_kwargs(model, tile.h * factor, tile.w * factor)
    kwargs = {
        "encoder_hidden_states": cond.embeds.to(unet.dtype),
        "added_cond_kwargs": added,
        "return_dict": False,
    }
    return (unet_in.to(unet.dtype), t), kwargs


def first_call_args(model: Any, cond: Conditioning, tile: Tile, t: Any) -> tuple[tuple, dict]:
    """The arguments of a run's UNet calls on ``tile`` at timestep ``t``, with zeros for the latents:
    a call with them compiles what the run's steps will call (all tiles of a run have one size)."""
    import torch

    unet = model.unet
    batch = 2 if cond.guided else 1
    # in_channels counts the mask and masked-image channels of a 9-channel inpainting UNet.
    unet_in = torch.zeros(batch, unet.config.in_channels, tile.h, tile.w, device=unet.device)
    return unet_call_args(model, cond, unet_in, t, tile)


def _alpha_bar(scheduler: Any, t: Any) -> float:
    table = scheduler.alphas_cumprod.float().cpu().numpy()
    return float(np.interp(float(t), np.arange(len(table)), table))


def denoise(job: SampleJob, hook: StepHook, cancelled: Callable[[], bool]) -> Any:
    """Run the loop and return the final latents (1, C, h, w)."""
    import torch

    model, scheduler = job.model, job.scheduler
    unet = model.unet
    # The compiled UNet (engine/compiling.py) when the setting is on; regional prompts call the UNet
    # with other batch sizes (engine/regions.py) and stay eager.
    compiled = model.extras.get("compiled_unet")
    call = unet if compiled is None else compiled
    device, dtype = unet.device, latent_dtype(unet.dtype)
    shape = (1, model.latent_channels, job.latent_h, job.latent_w)
    generator = torch.Generator("cpu").manual_seed(job.seed)
    # Noise is drawn on the CPU so a seed gives the same start on every device.
    noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)

    # 1. Starting latents
    if job.from_noise or job.init_latents is None:
        latents = noise * scheduler.init_noise_sigma
    else:
        latents = scheduler.add_noise(job.init_latents, noise, job.timesteps[:1])
    mask = job.mask
    blend_known = mask is not None and job.masked_image_latents is None and job.init_latents is not None
    prediction = scheduler.config.get("prediction_type", "epsilon")
    cond = job.cond
    blender = TileBlender(job.tiles, job.latent_w, job.latent_h, job.ramp, latents)
    total = len(job.timesteps)
    # Ancestral/SDE samplers draw fresh noise each step: seeded too, for reproducible results.
    takes_generator = "generator" in inspect.signature(scheduler.step).parameters
    step_kwargs = {"generator": generator} if takes_generator else {}

    # 2. Denoising loop
    for i, t in enumerate(job.timesteps):
        blender.reset()
        abar = _alpha_bar(scheduler, t)
        for index, tile in enumerate(job.tiles):
            if cancelled():
                raise RunCancelled(i)
            window = (
                slice(None),
                slice(None),
                slice(tile.y, tile.y + tile.h),
                slice(tile.x, tile.x + tile.w),
            )
            x = latents[window]
            if job.regions is not None:
                # Several prompts in one UNet batch, blended by their weights (engine/regions.py).
                x_in = scheduler.scale_model_input(x, t)
                extra = None
                if job.masked_image_latents is not None and mask is not None:
                    extra = torch.cat([mask[window], job.masked_image_latents[window]], dim=1)
                out = job.regions.predict(model, x_in, extra, t, window, job.guidance)
            else:
                x_in = torch.cat([x, x]) if cond.guided else x
                x_in = scheduler.scale_model_input(x_in, t)
                unet_in = x_in
                if job.masked_image_latents is not None and mask is not None:
                    extra = torch.cat([mask[window], job.masked_image_latents[window]], dim=1)
                    if cond.guided:
                        extra = torch.cat([extra, extra])
                    unet_in = torch.cat([x_in, extra], dim=1)
                args, kwargs = unet_call_args(model, cond, unet_in, t, tile)
                out = call(*args, **kwargs)[0].to(dtype)
                if cond.guided:
                    uncond, text = out.chunk(2)
                    out = uncond + job.guidance * (text - uncond)
            blender.add(index, out)
            scaled = x_in[-1:]
            pred = out

            def x0(scaled: Any = scaled, pred: Any = pred, abar: float = abar) -> Any:
                a, s = abar**0.5, (1.0 - abar) ** 0.5
                if prediction == "v_prediction":
                    return a * scaled - s * pred
                if prediction == "sample":
                    return pred
                return (scaled - s * pred) / a

            hook(i + 1, index, x0)
        noise_pred = blender.result()
        latents = scheduler.step(noise_pred, t, latents, return_dict=False, **step_kwargs)[0]
        if blend_known and mask is not None:
            if i < total - 1:
                known = scheduler.add_noise(job.init_latents, noise, job.timesteps[i + 1 : i + 2])
            else:
                known = job.init_latents
            latents = (1.0 - mask) * known + mask * latents
    return latents

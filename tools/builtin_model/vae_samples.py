"""What a new VAE changes on the UNet side: the same latents decoded by the shipped and the new VAE.

With a decoder-only fine-tune the encoder is untouched, so the UNet produces exactly the same latents
from the same prompt and seed (and img2img starts from the same latents); only the decoding differs.
This draws txt2img samples and an img2img of a held-out photo through both, and measures how far the
two decodings of each generated latent are apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from canvas_app.core.colour import mean_delta_e, psnr
from tools.builtin_model.vae_measure import to_uint8

PROMPTS = (
    "a red house on the left, a green tree on the right, blue sky, hills",
    "two yellow circles in the center, purple background",
    "a white moon on the right, black sky, hills, water",
    "a blue square on the left, orange background",
    "a yellow sun in the center, orange sky, hills",
    "three pink trees, gray sky, hills",
)


def decode_both(model_dir: Path, vaes: list, prompts=PROMPTS, seed: int = 1000, steps: int = 20):
    """txt2img latents from the built-in pipeline (Euler a, guidance 7.5), each decoded by each VAE."""
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    from canvas_app.engine.builtin_weights import from_pretrained

    pipe = from_pretrained(StableDiffusionPipeline, model_dir)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    scale = pipe.vae.config.scaling_factor
    decoded: list[list[np.ndarray]] = [[] for _ in vaes]
    with torch.inference_mode():
        for i, prompt in enumerate(prompts):
            gen = torch.Generator().manual_seed(seed + i)
            lat = pipe(
                prompt, height=128, width=128, num_inference_steps=steps, generator=gen, output_type="latent"
            ).images
            for out, vae in zip(decoded, vaes):
                out.append(to_uint8(vae.decode(lat / scale).sample)[0])
    return pipe, [np.stack(d) for d in decoded]


def img2img_both(
    pipe, vaes: list, photo: np.ndarray, prompt: str, strength: float, steps: int = 20, seed: int = 7
) -> list:
    """img2img of a photo at low strength (what an artist does first), once per VAE."""
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline
    from PIL import Image

    out = []
    for vae in vaes:
        i2i = StableDiffusionImg2ImgPipeline(**{**pipe.components, "vae": vae})
        i2i.set_progress_bar_config(disable=True)
        with torch.inference_mode():
            res = i2i(
                prompt,
                image=Image.fromarray(photo),
                strength=strength,
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(seed),
                output_type="np",
            ).images[0]
        out.append((res * 255).round().astype(np.uint8))
    return out


def sample_report(
    model_dir: Path, vaes: list, labels: list[str], photo: np.ndarray, path: Path, steps: int = 20
) -> dict:
    """Writes the picture (rows: one per VAE; columns: the prompts, then the photo and its img2img)
    and returns the distance between the shipped decoding and each other decoding."""
    from PIL import Image

    pipe, decoded = decode_both(model_dir, vaes, steps=steps)
    # Strength 0.3 needs at least 4 steps to run one.
    i2i = img2img_both(pipe, vaes, photo, "", strength=0.3, steps=max(steps, 4))
    cell = 192
    rows = []
    for dec, photo_out in zip(decoded, i2i):
        tiles = [*dec, photo, photo_out]
        rows.append(
            np.concatenate([np.asarray(Image.fromarray(t).resize((cell, cell))) for t in tiles], axis=1)
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows)).save(path)
    report = {}
    for label, dec, photo_out in zip(labels[1:], decoded[1:], i2i[1:]):
        report[label] = {
            "samples_psnr_db_vs_shipped": float(np.mean([psnr(a, b) for a, b in zip(dec, decoded[0])])),
            "samples_delta_e00_vs_shipped": float(
                np.mean([mean_delta_e(a, b) for a, b in zip(dec, decoded[0])])
            ),
            "img2img_photo_psnr_db": psnr(photo_out, photo),
            "img2img_photo_delta_e00": mean_delta_e(photo_out, photo),
        }
    report[labels[0]] = {
        "img2img_photo_psnr_db": psnr(i2i[0], photo),
        "img2img_photo_delta_e00": mean_delta_e(i2i[0], photo),
    }
    return report

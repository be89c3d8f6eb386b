"""Write the trained built-in model as diffusers pipeline folders (safetensors in the shipped dtype,
``shipped_weights``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from canvas_app.engine.models import SHARED_COMPONENTS
from tools.builtin_model import architecture as arch
from tools.builtin_model.shipped_weights import save_shipped

PREVIEW_MAP_FILE = "latent_rgb.json"  # read by canvas_app.engine.previews


def fit_preview_map(vae, pixels: np.ndarray, scaling_factor: float) -> dict:
    """Least-squares linear map from scaled latents (4 channels) to RGB in [-1, 1] at latent resolution.

    The engine uses it to show a cheap preview of every denoising step without running the decoder.
    """
    import torch

    f = arch.VAE_FACTOR
    with torch.inference_mode():
        x = torch.from_numpy(np.array(pixels)).permute(0, 3, 1, 2).float() / 127.5 - 1
        z = vae.encode(x).latent_dist.mean * scaling_factor
        rgb = torch.nn.functional.avg_pool2d(x, f)
    lat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).numpy()
    target = rgb.permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    design = np.concatenate([lat, np.ones((len(lat), 1), np.float32)], axis=1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = float(np.sqrt(((design @ solution - target) ** 2).mean()))
    return {
        "latent_space": "scaled",
        "rgb_range": [-1, 1],
        "factors": solution[:-1].round(6).tolist(),
        "bias": solution[-1].round(6).tolist(),
        "rms_error": round(residual, 4),
    }


def scene_preview_map(vae, pixels: np.ndarray, scaling_factor: float) -> dict:
    """The preview map fitted on the last 64 scenes (never trained on), 128 px from their middle."""
    return fit_preview_map(vae, np.asarray(pixels[-64:])[:, :, 64:192], scaling_factor)


def _pipeline(kind: str, vae, text_encoder, tokenizer, unet):
    from diffusers import (
        EulerAncestralDiscreteScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
    )

    scheduler = EulerAncestralDiscreteScheduler.from_config(arch.make_scheduler().config)
    cls = StableDiffusionInpaintPipeline if kind == "inpaint" else StableDiffusionPipeline
    return cls(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def export_models(work, out_dir: Path) -> list[Path]:
    """Export ``builtin`` (and ``builtin-inpaint`` once trained) from the checkpoints in ``work``."""
    from tools.builtin_model.crops import load_data
    from tools.builtin_model.train import load_tokenizer, load_vae
    from tools.builtin_model.workdir import load_checkpoint

    scale = work.info("latents")["scaling_factor"]
    vae = load_vae(work)
    vae.register_to_config(scaling_factor=scale)
    tokenizer = load_tokenizer(work)
    pixels, _ = load_data(work)
    preview_map = scene_preview_map(vae, pixels, scale)
    cards = {
        "base": Path(__file__).with_name("MODEL_CARD.md"),
        "inpaint": Path(__file__).with_name("INPAINT_CARD.md"),
    }
    # One text encoder for both pipelines: the base's (the inpainting stage does not train it).
    text_encoder = arch.make_text_encoder(tokenizer)
    text_encoder.load_state_dict(load_checkpoint(work.root / "unet.pt")["text_encoder"])
    written = []
    for kind, name, channels in (("base", "unet", 4), ("inpaint", "inpaint", 9)):
        if not work.done(name):
            continue
        ckpt = load_checkpoint(work.root / f"{name}.pt")
        unet = arch.make_unet(channels)
        unet.load_state_dict(ckpt["unet"])
        card = cards[kind]
        pipe = _pipeline(kind, vae, text_encoder, tokenizer, unet)
        target = out_dir / ("builtin" if kind == "base" else "builtin-inpaint")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save_shipped(pipe, tmp)  # leaves the shared VAE and text encoder in fp32 for the next one
        if kind == "inpaint":  # it uses the base's VAE, text encoder and tokenizer: no second copy
            for component in SHARED_COMPONENTS:
                shutil.rmtree(tmp / component)
        (tmp / PREVIEW_MAP_FILE).write_text(json.dumps(preview_map, indent=1))
        if card.exists():
            shutil.copy(card, tmp / "README.md")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        written.append(target)
    return written

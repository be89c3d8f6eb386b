"""Upscale x2 / x4: a pixel upscale (Lanczos) refined by the model at low strength.

The refinement is an ordinary img2img request over the upscaled pixels, run one pass in blended
tiles (``large_frame="tiled"``: composing again would throw the picture away), so the model only
adds detail and the memory stays near one tile's (the engine's UNet and VAE both work in tiles).
GUI and CLI build the request here; its result is staged and accepted like any candidate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from canvas_app.core.frame_plan import empty_pixels
from canvas_app.core.limits import MAX_FRAME_SIDE
from canvas_app.core.request import GenerationRequest, Mode, frame_settings

SCALES = (2, 4)
# Low: add detail, keep the picture. Measured (bench/upscale.py strength, docs/benchmarks.md): on the
# built-in model 0.2 adds as much fine detail as 0.3 and changes the picture less (an upscaled house
# is smeared less); from 0.4 the tiles start redrawing (bands, a second house at 0.5).
DEFAULT_UPSCALE_STRENGTH = 0.2


def check_scale(scale: int, width: int, height: int) -> None:
    """Raise ValueError when ``scale`` is not offered or the result would be too large."""
    if scale not in SCALES:
        raise ValueError(f"the scale must be one of {', '.join(map(str, SCALES))}, not {scale}")
    if max(width, height) * scale > MAX_FRAME_SIDE:
        raise ValueError(
            f"{width}x{height} upscaled x{scale} is {width * scale}x{height * scale}, "
            f"more than the {MAX_FRAME_SIDE} px a side allows"
        )


def lanczos(image: np.ndarray, scale: int) -> np.ndarray:
    """RGB or RGBA uint8, ``scale`` times larger (RGBA premultiplied, so empty pixels do not bleed)."""
    h, w = image.shape[:2]
    size = (w * scale, h * scale)
    if image.shape[2] == 4:
        img = Image.fromarray(np.ascontiguousarray(image), "RGBA").convert("RGBa")
        return np.asarray(img.resize(size, Image.Resampling.LANCZOS).convert("RGBA")).copy()
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.LANCZOS)
    ).copy()


def upscale_request(
    image: np.ndarray, scale: int, settings: Any = None, **overrides: Any
) -> GenerationRequest:
    """The img2img request that refines ``image`` upscaled ``scale`` times. ``settings``: a prompt
    frame whose prompt, model, steps, ... to use; ``overrides`` win (strength defaults to
    DEFAULT_UPSCALE_STRENGTH, not the frame's). Raises ValueError for an empty image or a bad scale."""
    h, w = image.shape[:2]
    check_scale(scale, w, h)
    if empty_pixels(image).all():
        raise ValueError("there is nothing to upscale: the area is empty")
    if (w * scale) % 8 or (h * scale) % 8:
        raise ValueError(f"{w}x{h} upscaled x{scale} is not a multiple of 8")
    kwargs: dict[str, Any] = {}
    if settings is not None:
        # Strength, batch and the large-frame way are the upscale's own.
        kwargs = frame_settings(
            settings, ("prompt", "negative_prompt", "steps", "guidance", "scheduler", "model")
        )
    kwargs.setdefault("strength", DEFAULT_UPSCALE_STRENGTH)
    kwargs.update(overrides)
    kwargs.update(large_frame="tiled", batch=kwargs.get("batch", 1))
    big = lanczos(image, scale)
    return GenerationRequest(mode=Mode.IMG2IMG, width=w * scale, height=h * scale, init_image=big, **kwargs)

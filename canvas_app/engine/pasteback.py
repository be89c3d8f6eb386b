"""Composite a generated crop over the original through a feathered mask.

The feathered alpha is quantised to 0..255 and the blend is done in integers, so wherever the alpha
is 0 the original pixels come back bit for bit, however often a region is inpainted again. An
optional colour match shifts the generated pixels so their mean colour agrees with the original's
along the seam.
"""

from __future__ import annotations

import cv2
import numpy as np


def feather_alpha(mask: np.ndarray, radius: int) -> np.ndarray:
    """HxW uint8 alpha: 255 where ``mask`` is set, fading to 0 over about ``radius`` pixels outside
    it (the mask's own soft values are kept inside)."""
    soft = mask.astype(np.float32) / 255.0
    if radius > 0:
        blurred = cv2.GaussianBlur(soft, (0, 0), sigmaX=radius / 2.0, borderType=cv2.BORDER_REPLICATE)
        # Stretch so the mask's edge stays fully generated and the fade lies outside it.
        soft = np.maximum(soft, np.clip(blurred * 2.0, 0.0, 1.0))
    return np.clip(np.rint(soft * 255.0), 0, 255).astype(np.uint8)


def color_match(
    generated: np.ndarray, original: np.ndarray, alpha: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Shift ``generated`` (HxWx3 uint8) so that on the seam band (0 < alpha < 255, where the original
    is valid) its mean colour equals the original's."""
    band = (alpha > 0) & (alpha < 255) & valid
    if band.sum() < 16:
        return generated
    delta = original[band][:, :3].astype(np.float32).mean(0) - generated[band][:, :3].astype(np.float32).mean(
        0
    )
    shifted = generated.astype(np.float32)
    shifted[..., :3] += delta
    return np.clip(np.rint(shifted), 0, 255).astype(np.uint8)


def paste_back(
    original: np.ndarray,
    generated: np.ndarray,
    mask: np.ndarray,
    feather: int,
    match_colors: bool = True,
    empty: np.ndarray | None = None,
) -> np.ndarray:
    """original: HxWx3/4 uint8; generated: HxWx3 uint8; mask: HxW uint8 (255 = regenerate);
    empty: HxW bool of pixels that had no content (always fully replaced). Returns original's shape."""
    alpha = feather_alpha(mask, feather)
    if empty is not None:
        alpha[empty] = 255
    valid = np.ones(mask.shape, bool) if empty is None else ~empty
    if match_colors:
        generated = color_match(generated, original, alpha, valid)
    channels = original.shape[2]
    new = generated
    if channels == 4:
        new = np.concatenate([generated, np.full(mask.shape + (1,), 255, np.uint8)], axis=2)
    a = alpha.astype(np.uint32)[..., None]
    blended = (new.astype(np.uint32) * a + original.astype(np.uint32) * (255 - a) + 127) // 255
    out = blended.astype(np.uint8)
    untouched = alpha == 0
    out[untouched] = original[untouched]
    return out

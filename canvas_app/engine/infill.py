"""Fill empty pixels before they are encoded, so outpainting starts from plausible colours instead of
black: OpenCV Telea or Navier-Stokes inpainting, or edge extension (each empty pixel takes the colour
of the nearest known pixel) with blurred noise on top.
"""

from __future__ import annotations

import cv2
import numpy as np

from canvas_app.engine.errors import InputError

METHODS = ("telea", "ns", "edge")
# cv2.inpaint cost grows with the hole's area; large holes are filled at reduced size (the fill is
# blurry anyway and the diffusion model repaints it).
_MAX_SIDE = 256


def infill(rgb: np.ndarray, empty: np.ndarray, method: str = "telea", seed: int = 0) -> np.ndarray:
    """rgb: HxWx3 uint8; empty: HxW bool (True = no pixel). Returns HxWx3 uint8 with the empty pixels
    filled and the others unchanged."""
    if method not in METHODS:
        raise InputError(f"unknown infill method {method!r}; choose one of: {', '.join(METHODS)}")
    empty = empty.astype(bool)
    if not empty.any():
        return rgb.copy()
    if empty.all():
        return _noise_fill(rgb.shape[:2], np.full(3, 127, np.float32), seed)
    if method == "edge":
        filled = _edge_extend(rgb, empty, seed)
    else:
        filled = _opencv(rgb, empty, cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS)
    out = rgb.copy()
    out[empty] = filled[empty]
    return out


def _opencv(rgb: np.ndarray, empty: np.ndarray, flag: int) -> np.ndarray:
    h, w = empty.shape
    scale = min(1.0, _MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        small_empty = cv2.resize(empty.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        # Keep known pixels next to the hole known after shrinking, so colours do not bleed in.
        small_empty = cv2.erode(small_empty, np.ones((2, 2), np.uint8)) if small_empty.all() else small_empty
        filled = cv2.inpaint(small, small_empty * 255, 3, flag)
        return cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.inpaint(rgb, empty.astype(np.uint8) * 255, 3, flag)


def _edge_extend(rgb: np.ndarray, empty: np.ndarray, seed: int) -> np.ndarray:
    # Labels of the nearest known pixel for every pixel (distance transform over the hole).
    _, labels = cv2.distanceTransformWithLabels(
        empty.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    known = ~empty
    ys, xs = np.nonzero(known)
    lookup = np.zeros((labels.max() + 1, 3), dtype=np.float32)
    lookup[labels[known]] = rgb[ys, xs]
    extended = lookup[labels]
    extended = cv2.GaussianBlur(extended, (0, 0), 4.0)
    noise = _noise_fill(empty.shape, np.zeros(3, np.float32), seed).astype(np.float32) - 127.0
    return np.clip(extended + 0.25 * noise, 0, 255).astype(np.uint8)


def _noise_fill(shape: tuple[int, ...], mean: np.ndarray, seed: int) -> np.ndarray:
    """Low-frequency colour noise around ``mean`` (or mid-grey noise when mean is 0)."""
    rng = np.random.default_rng(seed)
    h, w = shape[0], shape[1]
    small = rng.normal(0.0, 40.0, size=(max(1, h // 8), max(1, w // 8), 3)).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    base = mean if mean.any() else np.full(3, 127.0, np.float32)
    return np.clip(field + base, 0, 255).astype(np.uint8)

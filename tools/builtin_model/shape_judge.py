"""A judge that needs no training, for the inpainting cases of ``evaluate.eval_inpaint`` (one shape
on a plain background, masked; the prompt asks for another kind and colour): inside the mask, the
largest blob that differs from the background; its kind from how much of its bounding box it fills
(square about 1, circle pi / 4, triangle 1 / 2), its colour the renderer's colour nearest to its
median. On the cases' own renders it is right every time (tests/builtin_model/test_shape_judge.py),
where the attribute classifier is right 86% (kind) and 95% (colour) on renders; and it costs no fit.
"""

from __future__ import annotations

import cv2
import numpy as np

from tools.builtin_model.scenes import COLORS

NAMES = list(COLORS)
PALETTE = np.array([COLORS[n] for n in NAMES], np.float32)
# RGB distance from the background above which a pixel belongs to the object; the closest pair of
# shape and background colours the cases use (yellow on orange) is 77 apart.
THRESHOLD = 60.0
MIN_AREA = 30  # px: smaller blobs are grain or a sliver, not a drawn object
SQUARE_FILL, CIRCLE_FILL = 0.88, 0.64  # between 1 and pi / 4, and between pi / 4 and 1 / 2
NOTHING = {"kind": "none", "color": "none"}


def judge(image: np.ndarray, mask: np.ndarray) -> dict[str, str]:
    """Kind and colour of what ``image`` (H x W x 3 uint8) shows inside ``mask`` (H x W, > 0 inside)."""
    img = image.astype(np.float32)
    outside = mask == 0
    background = np.median(img[outside], axis=0) if outside.any() else img[0, 0]
    differs = np.linalg.norm(img - background, axis=-1) > THRESHOLD
    blobs = (differs & (mask > 0)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    if count < 2:
        return dict(NOTHING)
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = int(stats[i, cv2.CC_STAT_AREA])
    if area < MIN_AREA:
        return dict(NOTHING)
    fill = area / float(stats[i, cv2.CC_STAT_WIDTH] * stats[i, cv2.CC_STAT_HEIGHT])
    kind = "square" if fill >= SQUARE_FILL else "circle" if fill >= CIRCLE_FILL else "triangle"
    blob = (labels == i).astype(np.uint8)
    inner = cv2.erode(blob, np.ones((3, 3), np.uint8))  # the edge pixels blend with the background
    pixels = img[inner > 0] if inner.sum() >= 10 else img[blob > 0]
    colour = NAMES[int(np.argmin(np.linalg.norm(PALETTE - np.median(pixels, axis=0), axis=1)))]
    return {"kind": kind, "color": colour}

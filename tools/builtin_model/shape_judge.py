"""A judge that needs no training, for the inpainting cases of ``evaluate.eval_inpaint`` (one shape
on a plain background, masked; the prompt asks for another kind and colour): inside the mask, the
largest blob that differs from the background; a triangle when its convex hull simplifies to three
corners, else a square or a circle by how much of its bounding box it fills (1 or pi / 4); its colour
the renderer's colour nearest to its median. On the cases' own renders it is right every time (tests/builtin_model/test_shape_judge.py),
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
# Between a square's 1 and a circle's pi / 4 (generated circles fill up to 0.84, squares 0.89 and more).
SQUARE_FILL = 0.87
CORNER_TOLERANCE = 0.06  # of the hull's perimeter: corners rounded by blur still count as corners
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
    blob = (labels == i).astype(np.uint8)
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    corners = len(cv2.approxPolyDP(hull, CORNER_TOLERANCE * cv2.arcLength(hull, True), True))
    kind = "triangle" if corners == 3 else "square" if fill >= SQUARE_FILL else "circle"
    inner = cv2.erode(blob, np.ones((3, 3), np.uint8))  # the edge pixels blend with the background
    pixels = img[inner > 0] if inner.sum() >= 10 else img[blob > 0]
    colour = NAMES[int(np.argmin(np.linalg.norm(PALETTE - np.median(pixels, axis=0), axis=1)))]
    return {"kind": kind, "color": colour}

"""The seam check: is the colour step across a composited boundary clearly above the original's?

After a result is composited, the boundary of the regenerated area is split into segments of about
:data:`SEGMENT_PX` pixels. For each segment the mean colour of the :data:`RING`-px ring just inside
the boundary is compared with the mean colour of the ring just outside the feather (CIEDE2000), in
the result and in the image before. A segment is a **seam** where the result's step exceeds the
before's by more than :data:`SEAM_THRESHOLD`, a margin chosen by measurement on photographs
(bench/seams.py, docs/benchmarks.md). Where the area inside was empty before (outpaint) there is no
"before" across the boundary; the baseline is then the step between the outside ring and one as far
again beyond it, in the image before: how much the surroundings change over the same distance.

The repair re-inpaints a thin band along the flagged segments (:meth:`SeamCheck.band`) through the
ordinary frame plan, at low strength (:data:`REPAIR_STRENGTH`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from canvas_app.core.colour import ciede2000, srgb_to_lab
from canvas_app.core.composite import composite, regen_mask
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import empty_pixels
from canvas_app.core.raster import Rect
from canvas_app.core.request import GenerationRequest, Mode

RING = 4  # px: the width of the rings compared across the boundary
SEGMENT_PX = 16  # px of boundary per segment: short enough to point at a seam, long enough to average
MIN_RING_PX = 12  # a segment whose rings have fewer pixels with content is not measured
# ΔE00 by which a segment's step must exceed the original's to count as a seam. Chosen on photographs
# (bench/seams.py, docs/benchmarks.md): every result flagged at 5 showed a seam a person sees; at 8
# visible ones were missed; at 3 no further case was flagged.
SEAM_THRESHOLD = 5.0
# Strength of the repair pass over the band: redraws the band's colours, keeps its structure.
REPAIR_STRENGTH = 0.5  # docs/benchmarks.md: 0.3 left half the step, 0.75 removed no more of it


@dataclass(frozen=True, eq=False)
class SeamGeometry:
    """The boundary of a regenerated area split into segments, and the rings measured per segment,
    over one window. Label images hold a segment index per pixel, -1 outside the ring."""

    segments: tuple[np.ndarray, ...]  # per segment: (N, 2) int (x, y) boundary pixels, in order
    nearest: np.ndarray  # HxW int32: the segment of the nearest boundary pixel
    inner: np.ndarray  # HxW bool: within RING px inside the boundary
    outer: np.ndarray  # HxW bool: the RING px just outside the gap (the feather)
    far: np.ndarray  # HxW bool: the RING px as far again beyond ``outer`` (the outpaint baseline)
    inside_distance: np.ndarray  # HxW float32: distance to the outside, 0 outside
    outside_distance: np.ndarray  # HxW float32: distance to the inside, 0 inside
    gap: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.nearest.shape  # type: ignore[return-value]


def seam_geometry(regen: np.ndarray, gap: int, segment_px: int = SEGMENT_PX) -> SeamGeometry:
    """The segments and rings of the boundary of ``regen`` (HxW, >= 128 = regenerated). ``gap``:
    px between the boundary and the outside ring (the composite's feather: it blends the pixels in
    between, so the step lies across them)."""
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    area = (np.asarray(regen) >= 128).astype(np.uint8)
    contours, _ = cv2.findContours(area, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    segments: list[np.ndarray] = []
    for contour in contours:
        points = contour.reshape(-1, 2)
        n = max(1, round(len(points) / segment_px))
        segments += [p for p in np.array_split(points, n) if len(p)]
    h, w = area.shape
    nearest = np.full((h, w), -1, np.int32)
    if segments:
        # Each pixel takes the segment of its nearest boundary pixel (labels of the zero pixels).
        seeds = np.ones((h, w), np.uint8)
        for points in segments:
            seeds[points[:, 1], points[:, 0]] = 0
        _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        of_label = np.full(int(labels.max()) + 1, -1, np.int32)
        for index, points in enumerate(segments):
            of_label[labels[points[:, 1], points[:, 0]]] = index
        nearest = of_label[labels]
    inside = cv2.distanceTransform(area, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - area, cv2.DIST_L2, 5)
    out = area == 0
    return SeamGeometry(
        segments=tuple(segments),
        nearest=nearest,
        inner=(area > 0) & (inside <= RING),
        outer=out & (outside > gap) & (outside <= gap + RING),
        far=out & (outside > 2 * gap + RING) & (outside <= 2 * (gap + RING)),
        inside_distance=inside,
        outside_distance=outside,
        gap=gap,
    )


def _ring_means(geometry: SeamGeometry, image: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: the mean Lab colour of ``image`` over ``ring`` and the pixel count."""
    n = len(geometry.segments)
    ring = ring & (geometry.nearest >= 0)
    labels = geometry.nearest[ring]
    lab = srgb_to_lab(image[ring][:, :3])  # only the ring's pixels: a large frame stays cheap
    count = np.bincount(labels, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(labels, lab[:, c], minlength=n) for c in range(3)], -1)
    return sums.reshape(n, 3) / np.maximum(count, 1)[:, None], count


def ring_steps(
    geometry: SeamGeometry, image: np.ndarray, first: str = "inner", second: str = "outer"
) -> np.ndarray:
    """Per segment: CIEDE2000 between the mean colours of two rings of ``image`` (HxWx3/4 uint8 over
    the geometry's window); NaN where a ring has fewer than MIN_RING_PX pixels with content."""
    if image.shape[:2] != geometry.shape:
        raise ValueError(f"image {image.shape[:2]} does not match the geometry's {geometry.shape}")
    valid = ~empty_pixels(image)
    a, na = _ring_means(geometry, image, getattr(geometry, first) & valid)
    b, nb = _ring_means(geometry, image, getattr(geometry, second) & valid)
    steps = ciede2000(a, b) if len(a) else np.zeros(0)
    return np.where((na >= MIN_RING_PX) & (nb >= MIN_RING_PX), steps, np.nan)


@dataclass(frozen=True, eq=False)
class SeamCheck:
    """The seam check of one result over a window of the canvas at ``origin``: per segment, the step
    in the result (``after``), the original's (``before``) and the verdict; NaN where a ring has
    too little content to measure (such a segment is never flagged)."""

    origin: tuple[int, int]
    geometry: SeamGeometry
    before: np.ndarray
    after: np.ndarray
    flagged: np.ndarray  # bool per segment
    threshold: float

    @property
    def has_seam(self) -> bool:
        return bool(self.flagged.any())

    @property
    def window(self) -> Rect:
        h, w = self.geometry.shape
        return (self.origin[0], self.origin[1], w, h)

    def step(self, which: str = "after") -> float:
        """Mean step over the flagged segments (all measured ones when none is flagged)."""
        values = getattr(self, which)
        chosen = values[self.flagged] if self.has_seam else values
        chosen = chosen[~np.isnan(chosen)]
        return float(chosen.mean()) if len(chosen) else float("nan")

    def remeasure(self, image: np.ndarray) -> float:
        """The mean step over the flagged segments (all when none is) of another image of the same
        window, e.g. after a repair."""
        steps = ring_steps(self.geometry, image)
        chosen = steps[self.flagged] if self.has_seam else steps
        chosen = chosen[~np.isnan(chosen)]
        return float(chosen.mean()) if len(chosen) else float("nan")

    def polylines(self) -> list[np.ndarray]:
        """The flagged segments as (N, 2) float canvas coordinates (pixel centres), for drawing."""
        shift = np.array(self.origin, np.float64) + 0.5
        return [self.geometry.segments[i] + shift for i in np.flatnonzero(self.flagged)]

    def band(self, every_segment: bool = False) -> np.ndarray:
        """HxW uint8 over the window: the band to re-inpaint along the flagged segments (or along the
        whole boundary): 2 rings deep inside, the gap and the outer ring outside (255 = regenerate)."""
        g = self.geometry
        chosen = np.ones_like(self.flagged) if every_segment else self.flagged
        near = chosen[np.maximum(g.nearest, 0)] & (g.nearest >= 0)
        reach = (g.inside_distance <= 2 * RING) & (g.outside_distance <= g.gap + RING)
        return (near & reach).astype(np.uint8) * 255


def check_seam(
    before: np.ndarray,
    after: np.ndarray,
    regen: np.ndarray,
    gap: int,
    origin: tuple[int, int] = (0, 0),
    threshold: float = SEAM_THRESHOLD,
) -> SeamCheck:
    """The seam check of ``after`` (the result composited, HxWx3/4 uint8) against ``before`` (the
    same window before), for the regenerated area ``regen`` (HxW uint8) composited with a feather
    of ``gap`` px."""
    if before.shape[:2] != after.shape[:2] or regen.shape != before.shape[:2]:
        raise ValueError(f"before {before.shape[:2]}, after {after.shape[:2]}, regen {regen.shape}")
    geometry = seam_geometry(regen, gap)
    steps_after = ring_steps(geometry, after)
    across = ring_steps(geometry, before)
    # Where the inside was empty before (outpaint): how much the surroundings change over the
    # same distance, outside ring against the one beyond it.
    beyond = ring_steps(geometry, before, "outer", "far")
    baseline = np.where(np.isnan(across), beyond, across)
    # Unknown on either side (empty canvas, the image's edge): not a seam anyone can point at.
    with np.errstate(invalid="ignore"):
        flagged = (steps_after - baseline) > threshold
    flagged &= ~np.isnan(steps_after) & ~np.isnan(baseline)
    return SeamCheck(origin, geometry, baseline, steps_after, flagged, threshold)


def seam_gap(request: GenerationRequest) -> int:
    """Pixels the composite blends outside the regenerated area: the feather for inpaint and
    outpaint; none for txt2img/img2img, whose result fills the crop up to its edge."""
    return request.feather if request.mode in (Mode.INPAINT, Mode.OUTPAINT) else 0


def check_candidate(
    doc: Document, request: GenerationRequest, image: np.ndarray, threshold: float = SEAM_THRESHOLD
) -> SeamCheck:
    """The seam check of accepting ``image`` (the request's decoded crop) over the document as it is
    now: the same composite as :func:`canvas_app.core.composite.accept_candidate`, over the crop plus
    a margin that holds the outside rings."""
    gap = seam_gap(request)
    margin = 2 * (gap + RING) + 1
    cx, cy = request.origin
    window = (cx - margin, cy - margin, request.width + 2 * margin, request.height + 2 * margin)
    before = doc.image.read(*window)
    crop = (slice(margin, margin + request.height), slice(margin, margin + request.width))
    regen = np.zeros(before.shape[:2], np.uint8)
    regen[crop] = regen_mask(request)
    after = before.copy()
    after[crop], _ = composite(
        before[crop], np.asarray(image), regen_mask(request), request.feather, request.color_match
    )
    return check_seam(before, after, regen, gap, (window[0], window[1]), threshold)

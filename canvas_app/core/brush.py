"""Round brush stamping into a TiledRaster (RGBA image) or a MaskRaster.

A stroke is a series of dabs placed every ``spacing * size`` pixels along the pointer path, so fast
pointer moves leave no gaps. Opacity is a ceiling per stroke, as in Krita or Photoshop: each pixel
keeps the highest dab coverage it has seen in this stroke and the result is recomputed from the
pixels as they were before the stroke, so overlapping dabs do not build up past ``opacity``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from canvas_app.core.raster import Rect, TiledRaster, TileKey, tile_range, union


@dataclass(frozen=True)
class BrushSettings:
    """``size``: diameter in pixels; ``hardness``: 0 (soft) .. 1 (hard edge, 1 px antialiased);
    ``opacity``: 0..1 per stroke; ``erase``: remove instead of paint; ``color``: RGB for images
    (masks ignore it); ``spacing``: distance between dabs as a fraction of the size."""

    size: float = 32.0
    hardness: float = 0.8
    opacity: float = 1.0
    erase: bool = False
    color: tuple[int, int, int] = (0, 0, 0)
    spacing: float = 0.1

    def __post_init__(self) -> None:
        if not self.size > 0:
            raise ValueError(f"brush size must be > 0, got {self.size}")
        if not 0.0 <= self.hardness <= 1.0:
            raise ValueError(f"hardness must be within 0..1, got {self.hardness}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be within 0..1, got {self.opacity}")
        if not self.spacing > 0:
            raise ValueError(f"spacing must be > 0, got {self.spacing}")
        if len(self.color) != 3 or not all(0 <= int(c) <= 255 for c in self.color):
            raise ValueError(f"color must be three values within 0..255, got {self.color}")


# Dab centres are placed on a 1/4 px grid so that the coverage of a dab can be cached per
# sub-pixel phase: a stroke then reuses at most 16 coverage arrays instead of computing each dab.
SUBPIXEL = 4


def dab_coverage(settings: BrushSettings, cx: float, cy: float) -> tuple[Rect, np.ndarray]:
    """The coverage (0..1 float32, read-only) of one dab centred at (cx, cy) and the rectangle
    it covers."""
    qx, qy = round(cx * SUBPIXEL), round(cy * SUBPIXEL)
    ix, iy = qx // SUBPIXEL, qy // SUBPIXEL
    (ox, oy, w, h), cov = _phase_coverage(settings.size, settings.hardness, qx % SUBPIXEL, qy % SUBPIXEL)
    return (ix + ox, iy + oy, w, h), cov


@lru_cache(maxsize=128)
def _phase_coverage(size: float, hardness: float, px: int, py: int) -> tuple[Rect, np.ndarray]:
    cx, cy = px / SUBPIXEL, py / SUBPIXEL
    r = size / 2.0
    x0, y0 = math.floor(cx - r - 1), math.floor(cy - r - 1)
    x1, y1 = math.ceil(cx + r + 1), math.ceil(cy + r + 1)
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - np.float32(cx)
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5 - np.float32(cy)
    d = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    # The soft edge spans the outer (1 - hardness) of the radius, at least one pixel for antialiasing.
    feather = max(r * (1.0 - hardness), 1.0)
    t = np.clip((r - d) / np.float32(feather), 0.0, 1.0)
    cov = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    cov.flags.writeable = False
    return (x0, y0, x1 - x0, y1 - y0), cov


class Stroke:
    """One brush stroke into ``target``; call ``move_to`` for every pointer position.

    ``before`` holds the touched tiles as they were before the stroke (for undo); ``dirty`` is the
    union of the rectangles changed so far.
    """

    def __init__(self, target: TiledRaster, settings: BrushSettings) -> None:
        if target.dtype != np.uint8 or target.channels not in (1, 4):
            raise ValueError("brush strokes need an RGBA uint8 raster or a MaskRaster")
        self.target = target
        self.settings = settings
        self.before: dict[TileKey, np.ndarray | None] = {}
        self.dirty: Rect | None = None
        self.dabs = 0
        self._before = TiledRaster(target.channels, target.dtype)
        self._coverage = TiledRaster(1, np.float32)
        self._last: tuple[float, float] | None = None
        self._to_next = 0.0

    @property
    def step(self) -> float:
        return max(self.settings.size * self.settings.spacing, 0.5)

    def move_to(self, x: float, y: float) -> Rect | None:
        """Continue the stroke to (x, y) placing interpolated dabs; returns the rectangle changed."""
        if self._last is None:
            self._last = (x, y)
            self._to_next = self.step
            return self.dab(x, y)
        lx, ly = self._last
        dist = math.hypot(x - lx, y - ly)
        changed: Rect | None = None
        travelled = self._to_next
        while travelled <= dist:
            f = travelled / dist
            changed = union(changed, self.dab(lx + (x - lx) * f, ly + (y - ly) * f))
            travelled += self.step
        self._to_next = travelled - dist
        self._last = (x, y)
        return changed

    def dab(self, cx: float, cy: float) -> Rect:
        """Stamp one dab centred at (cx, cy)."""
        rect, cov = dab_coverage(self.settings, cx, cy)
        x, y, w, h = rect
        for key in tile_range(x, y, w, h):
            if key not in self.before:
                tile = self.target.snapshot([key])[key]
                self.before[key] = tile
                if tile is not None:
                    self._before.adopt_tile(key, tile)
        total = np.maximum(self._coverage.read(x, y, w, h), cov)
        self._coverage.write(x, y, total)
        old = self._before.read(x, y, w, h)
        self.target.write(x, y, self._apply(old, total * np.float32(self.settings.opacity)))
        self.dabs += 1
        self.dirty = union(self.dirty, rect)
        return rect

    def _apply(self, old: np.ndarray, a: np.ndarray) -> np.ndarray:
        s = self.settings
        if old.ndim == 2:
            base = old.astype(np.float32)
            out = base * (1.0 - a) if s.erase else base + (255.0 - base) * a
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        result = old.astype(np.float32)
        da = result[..., 3] / 255.0
        if s.erase:
            result[..., 3] = da * (1.0 - a) * 255.0
        else:
            out_a = a + da * (1.0 - a)
            safe = np.where(out_a > 0, out_a, 1.0)[..., None]
            color = np.asarray(s.color, np.float32)
            result[..., :3] = (color * a[..., None] + result[..., :3] * (da * (1.0 - a))[..., None]) / safe
            result[..., 3] = out_a * 255.0
        return np.clip(np.rint(result), 0, 255).astype(np.uint8)

    def after(self) -> dict[TileKey, np.ndarray | None]:
        """References to the touched tiles as they are now."""
        return self.target.snapshot(list(self.before))


def paint_stroke(
    target: TiledRaster, points: Iterable[tuple[float, float]], settings: BrushSettings
) -> Rect | None:
    """Paint a whole stroke through ``points``; returns the dirty rectangle (None for no points)."""
    stroke = Stroke(target, settings)
    for px, py in points:
        stroke.move_to(px, py)
    return stroke.dirty

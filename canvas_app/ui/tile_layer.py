"""A graphics item that draws a sparse tiled raster: only painted, visible tiles are drawn.

Zoomed out, tiles are drawn from a pyramid: a level-k pixmap covers ``tile_size * 2**k`` canvas
pixels at ``tile_size`` pixels, composed from the four level-(k-1) pixmaps below it at half size
(Qt's SIMD smooth scaling, premultiplied). So a view at 5% draws a few dozen pixmaps instead of a
thousand, and no pixmap is drawn at less than half its resolution.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

# (tx, ty) -> HxWx4 uint8 straight-alpha RGBA tile, or None when the tile is empty.
TileFetcher = Callable[[int, int], "np.ndarray | None"]

MAX_LEVEL = 7  # 1/128: one pixmap covers 32768 canvas pixels
CACHE_LIMIT = 1500  # pixmaps kept (about 390 MB at 256 px worst case; evicted least recently used)


class TileLayerItem(QGraphicsItem):
    """Mirrors one tiled raster. Call :meth:`set_keys` / :meth:`invalidate` when the raster changes.

    ``fetch(tx, ty)`` returns the tile's RGBA pixels; it is called lazily from ``paint``.
    """

    def __init__(self, fetch: TileFetcher, tile_size: int, keys: Iterable[tuple[int, int]] = ()) -> None:
        super().__init__()
        self._fetch = fetch
        self.tile_size = tile_size
        self._keys: set[tuple[int, int]] = set(keys)
        self._level_keys: dict[int, set[tuple[int, int]]] = {}
        self._cache: OrderedDict[tuple[int, int, int], QPixmap] = OrderedDict()
        # Pixmaps scaled to their size on screen at the current zoom (zoomed out only).
        self._screen_cache: dict[tuple[int, int, int, int, int], QPixmap] = {}
        self._screen_scale: tuple[float, float] = (0.0, 0.0)
        self._bounds = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.tiles_drawn = 0  # last paint, for benchmarks and tests
        self._update_bounds()

    # -- mirroring -------------------------------------------------------------------------------
    def set_keys(self, keys: Iterable[tuple[int, int]]) -> None:
        new = set(keys)
        if new != self._keys:
            self._keys = new
            self._level_keys.clear()
            self._update_bounds()

    def invalidate(self, rect: tuple[int, int, int, int] | None = None) -> None:
        """Drop cached pixmaps covering ``rect`` (x, y, w, h in canvas pixels); None: everything."""
        if rect is None:
            self._cache.clear()
            self._screen_cache.clear()
            self.update()
            return
        x, y, w, h = rect
        if w <= 0 or h <= 0:
            return
        # Visit only the pyramid tiles that cover the rectangle, level by level.
        stale: set[tuple[int, int, int]] = set()
        for level in range(MAX_LEVEL + 1):
            span = self.tile_size << level
            for j in range(y // span, (y + h - 1) // span + 1):
                for i in range(x // span, (x + w - 1) // span + 1):
                    self._cache.pop((level, i, j), None)
                    stale.add((level, i, j))
        if stale:
            self._screen_cache = {k: v for k, v in self._screen_cache.items() if k[:3] not in stale}
        self.update(QRectF(x, y, w, h))

    def clear_cache(self) -> None:
        self._cache.clear()
        self._screen_cache.clear()

    # -- QGraphicsItem ---------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._keys:
            self.tiles_drawn = 0
            return
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        level = 0 if lod >= 1.0 else min(MAX_LEVEL, int(math.floor(math.log2(1.0 / lod))))
        exposed = option.exposedRect  # type: ignore[attr-defined]
        span = self.tile_size << level
        x0 = math.floor(exposed.left() / span)
        y0 = math.floor(exposed.top() / span)
        x1 = math.floor(exposed.right() / span)
        y1 = math.floor(exposed.bottom() / span)
        keys = self._keys_at(level)
        # Iterate whichever is smaller: the visible grid or the painted tiles.
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= len(keys):
            visible = [(i, j) for j in range(y0, y1 + 1) for i in range(x0, x1 + 1) if (i, j) in keys]
        else:
            visible = [(i, j) for (i, j) in keys if x0 <= i <= x1 and y0 <= j <= y1]
        if lod < 1.0 and painter.worldTransform().isScaling() and not painter.worldTransform().isRotating():
            self.tiles_drawn = self._paint_scaled_down(painter, level, span, visible)
            return
        drawn = 0
        for i, j in visible:
            pixmap = self._pixmap(level, i, j)
            if pixmap is not None:
                painter.drawPixmap(QRectF(i * span, j * span, span, span), pixmap, QRectF(pixmap.rect()))
                drawn += 1
        self.tiles_drawn = drawn

    def _paint_scaled_down(
        self, painter: QPainter, level: int, span: int, visible: list[tuple[int, int]]
    ) -> int:
        """Zoomed out: draw pixmaps pre-scaled to their exact size on screen, as plain blits.

        Smooth transformed drawing costs several ms per tile in the raster engine; scaling once
        per zoom level and blitting at whole device pixels is a copy. Edges are rounded from the
        tile grid so neighbours meet without gaps.
        """
        transform = painter.worldTransform()
        scale_key = (round(transform.m11(), 6), round(transform.m22(), 6))
        if scale_key != self._screen_scale:
            self._screen_scale = scale_key
            self._screen_cache.clear()
        painter.save()
        painter.resetTransform()
        drawn = 0
        for i, j in visible:
            top_left = transform.map(QPointF(i * span, j * span))
            bottom_right = transform.map(QPointF((i + 1) * span, (j + 1) * span))
            x0, y0 = round(top_left.x()), round(top_left.y())
            w, h = round(bottom_right.x()) - x0, round(bottom_right.y()) - y0
            if w <= 0 or h <= 0:
                continue
            key = (level, i, j, w, h)
            scaled = self._screen_cache.get(key)
            if scaled is None:
                pixmap = self._pixmap(level, i, j)
                if pixmap is None:
                    continue
                scaled = pixmap.scaled(
                    w, h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
                self._screen_cache[key] = scaled
            painter.drawPixmap(x0, y0, scaled)
            drawn += 1
        painter.restore()
        return drawn

    # -- internals -------------------------------------------------------------------------------
    def _update_bounds(self) -> None:
        self.prepareGeometryChange()
        if not self._keys:
            self._bounds = QRectF()
            return
        xs = [k[0] for k in self._keys]
        ys = [k[1] for k in self._keys]
        t = self.tile_size
        self._bounds = QRectF(
            min(xs) * t, min(ys) * t, (max(xs) - min(xs) + 1) * t, (max(ys) - min(ys) + 1) * t
        )

    def _level_rect(self, level: int, i: int, j: int) -> QRectF:
        span = self.tile_size << level
        return QRectF(i * span, j * span, span, span)

    def _keys_at(self, level: int) -> set[tuple[int, int]]:
        if level == 0:
            return self._keys
        keys = self._level_keys.get(level)
        if keys is None:
            keys = {(i >> level, j >> level) for (i, j) in self._keys}
            self._level_keys[level] = keys
        return keys

    def _pixmap(self, level: int, i: int, j: int) -> QPixmap | None:
        key = (level, i, j)
        pixmap = self._cache.get(key)
        if pixmap is not None:
            self._cache.move_to_end(key)
            return pixmap
        pixmap = self._tile_pixmap(i, j) if level == 0 else self._level_pixmap(level, i, j)
        if pixmap is None:
            return None
        self._cache[key] = pixmap
        while len(self._cache) > CACHE_LIMIT:
            self._cache.popitem(last=False)
        return pixmap

    def _tile_pixmap(self, i: int, j: int) -> QPixmap | None:
        tile = self._fetch(i, j)
        if tile is None:
            return None
        data = np.ascontiguousarray(tile)
        h, w = data.shape[:2]
        image = QImage(data.data, w, h, data.strides[0], QImage.Format.Format_RGBA8888)
        # Opaque tiles become RGB32, which the raster engine draws as a plain copy (no blending);
        # others go to premultiplied ARGB32, Qt's fastest blending format. Both conversions copy.
        opaque = bool(data[..., 3].min() == 255)
        fmt = QImage.Format.Format_RGB32 if opaque else QImage.Format.Format_ARGB32_Premultiplied
        return QPixmap.fromImage(image.convertToFormat(fmt))

    def _level_pixmap(self, level: int, i: int, j: int) -> QPixmap | None:
        """Compose the four children of the level below at half size (a 2x2 box filter)."""
        t = self.tile_size
        half = t // 2
        below = self._keys_at(level - 1)
        children = [(di, dj) for dj in (0, 1) for di in (0, 1) if (2 * i + di, 2 * j + dj) in below]
        if not children:
            return None
        image = QImage(t, t, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(0)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for di, dj in children:
            child = self._pixmap(level - 1, 2 * i + di, 2 * j + dj)
            if child is not None:
                painter.drawPixmap(QRectF(di * half, dj * half, half, half), child, QRectF(child.rect()))
        painter.end()
        return QPixmap.fromImage(image)

"""The graphics scene that mirrors a Document: image tiles, mask overlay, frames, brush outline."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem, QGraphicsScene

from canvas_app.core.document import Document
from canvas_app.core.raster import TILE_SIZE, Rect
from canvas_app.ui.frame_item import FrameItem
from canvas_app.ui.tile_layer import TileLayerItem

MASK_TINT = (255, 64, 96)


def mask_tile_rgba(mask_tile: np.ndarray, opacity: float = 0.55) -> np.ndarray:
    """A mask tile (0..255) as a tinted RGBA overlay."""
    out = np.empty(mask_tile.shape + (4,), np.uint8)
    out[..., 0], out[..., 1], out[..., 2] = MASK_TINT
    out[..., 3] = (mask_tile.astype(np.uint16) * int(opacity * 256) >> 8).astype(np.uint8)
    out[out[..., 3] == 0] = 0
    return out


class _Relay(QObject):
    frame_added = Signal(str)
    frame_removed = Signal(str)
    frame_changed = Signal(str)


class CanvasScene(QGraphicsScene):
    """Mirrors ``document``; call :meth:`set_document` to switch documents (new/open)."""

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.relay = _Relay()
        self.doc: Document | None = None
        self.frame_items: dict[str, FrameItem] = {}
        self.image_item = TileLayerItem(self._image_tile, TILE_SIZE)
        self.image_item.setZValue(0)
        self.addItem(self.image_item)
        self.mask_item = TileLayerItem(self._mask_tile, TILE_SIZE)
        self.mask_item.setZValue(5)
        self.addItem(self.mask_item)
        self.outline = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 255, 255, 220), 1)
        pen.setCosmetic(True)
        self.outline.setPen(pen)
        self.outline.setZValue(100)
        self.outline.setVisible(False)
        self.outline.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.addItem(self.outline)
        self.rubber_band = QGraphicsRectItem()
        band_pen = QPen(QColor(80, 160, 255), 1, Qt.PenStyle.DashLine)
        band_pen.setCosmetic(True)
        self.rubber_band.setPen(band_pen)
        self.rubber_band.setZValue(90)
        self.rubber_band.setVisible(False)
        self.addItem(self.rubber_band)
        self.set_document(document)

    # -- document binding ------------------------------------------------------------------------
    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            ev = self.doc.events
            ev.pixels_changed.disconnect(self._on_pixels)
            ev.mask_changed.disconnect(self._on_mask)
            ev.frames_changed.disconnect(self._on_frames)
        for item in self.frame_items.values():
            self.removeItem(item)
        self.frame_items.clear()
        self.doc = doc
        doc.events.pixels_changed.connect(self._on_pixels)
        doc.events.mask_changed.connect(self._on_mask)
        doc.events.frames_changed.connect(self._on_frames)
        self.image_item.set_keys(doc.image.tile_keys())
        self.image_item.invalidate(None)
        self.mask_item.set_keys(doc.mask.tile_keys())
        self.mask_item.invalidate(None)
        for frame_id in doc.frames:
            self._on_frames(frame_id)

    def _image_tile(self, tx: int, ty: int) -> np.ndarray | None:
        assert self.doc is not None
        return self.doc.image.get_tile(tx, ty)

    def _mask_tile(self, tx: int, ty: int) -> np.ndarray | None:
        assert self.doc is not None
        tile = self.doc.mask.get_tile(tx, ty)
        return None if tile is None else mask_tile_rgba(tile)

    def _on_pixels(self, rect: Rect) -> None:
        assert self.doc is not None
        self.image_item.set_keys(self.doc.image.tile_keys())
        self.image_item.invalidate(rect)

    def _on_mask(self, rect: Rect) -> None:
        assert self.doc is not None
        self.mask_item.set_keys(self.doc.mask.tile_keys())
        self.mask_item.invalidate(rect)

    def _on_frames(self, frame_id: str) -> None:
        assert self.doc is not None
        frame = self.doc.frames.get(frame_id)
        item = self.frame_items.get(frame_id)
        if frame is None:
            if item is not None:
                self.removeItem(item)
                del self.frame_items[frame_id]
                self.relay.frame_removed.emit(frame_id)
            return
        if item is None:
            item = FrameItem(frame)
            self.frame_items[frame_id] = item
            self.addItem(item)
            self.relay.frame_added.emit(frame_id)
        else:
            item.set_frame(frame)
            self.relay.frame_changed.emit(frame_id)

    # -- display helpers -------------------------------------------------------------------------
    @property
    def mask_visible(self) -> bool:
        return self.mask_item.isVisible()

    def set_mask_visible(self, visible: bool) -> None:
        self.mask_item.setVisible(visible)

    def show_outline(self, x: float, y: float, size: float) -> None:
        r = size / 2
        self.outline.setRect(QRectF(x - r, y - r, size, size))
        self.outline.setVisible(True)

    def hide_outline(self) -> None:
        self.outline.setVisible(False)

    def content_rect(self) -> QRectF:
        """Bounds of painted pixels and frames (for fit-to-content)."""
        rect = QRectF()
        assert self.doc is not None
        bounds = self.doc.image.tile_bounds()
        if bounds is not None:
            rect = QRectF(*bounds)
        for f in self.doc.frames.values():
            rect = rect.united(QRectF(f.x, f.y, f.w, f.h))
        return rect

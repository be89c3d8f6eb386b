"""Images coming in: dropped files and pasted images float over the canvas, movable, until they
are committed (Enter) or cancelled (Esc). An image's generation settings (read and checked by
``core.image_metadata``) can be restored into a frame over it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem

from canvas_app.core.frames import PromptFrame, snap
from canvas_app.core.image_io import ImageReadError, read_image
from canvas_app.core.image_metadata import RestoredSettings, match_model, model_label
from canvas_app.ui.canvas_view import PointerEvent, ToolDrag
from canvas_app.ui.qimage import array_to_qimage
from canvas_app.ui.tools import Tool
from canvas_app.ui.workspace import Workspace

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_IMPORT_PIXELS = 16384 * 16384


class ImportError_(ValueError):
    """An image file cannot be read; the message is for a person."""


def load_image_file(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """Read an image as straight RGBA uint8 (upright, 8-bit) plus its text metadata."""
    try:
        return read_image(path, "RGBA", MAX_IMPORT_PIXELS)
    except ImageReadError as exc:
        raise ImportError_(str(exc)) from None


def restore_frame(
    settings: RestoredSettings,
    image_pos: tuple[int, int],
    image_size: tuple[int, int],
    models: Iterable[tuple[str, str]],
    fallback_model: str,
) -> tuple[PromptFrame, list[str]]:
    """The frame a dropped image's settings describe, over the image at ``image_pos``, and notices
    for the user. ``models``: the picker's (label, model) pairs; the image's model is used when it
    names one of them, else ``fallback_model``."""
    notices = list(settings.notices)
    values: dict[str, Any] = dict(settings.values)
    values["model"] = fallback_model
    if settings.model:
        found = match_model(settings.model, models)
        if found is not None:
            values["model"] = found
        else:
            notices.append(
                f"the image was made with the model {model_label(settings.model)[:200]!r}, which is not in "
                "the model list (add it with + next to Model); the frame uses "
                f"{model_label(fallback_model)!r}"
            )
    x, y = image_pos
    if settings.size is not None:
        (ox, oy), (w, h) = settings.origin, settings.size
        rect = (snap(x + ox), snap(y + oy), w, h)
    else:
        rect = frame_rect_for_image(x, y, *image_size)
    frame = PromptFrame(*rect, prompt=settings.prompt, negative_prompt=settings.negative_prompt, **values)
    return frame, notices


class FloatingImage(QGraphicsPixmapItem):
    """An image not yet in the document. ``pixels`` is RGBA; the item's position is its top-left."""

    def __init__(self, pixels: np.ndarray, metadata: dict[str, str] | None = None) -> None:
        super().__init__(QPixmap.fromImage(array_to_qimage(pixels)))
        self.pixels = pixels
        self.metadata = metadata or {}
        self.setZValue(50)
        self.setOpacity(0.85)
        self.border = QGraphicsRectItem(self.boundingRect(), self)
        pen = QPen(QColor(255, 200, 60), 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.border.setPen(pen)

    def contains_point(self, x: float, y: float) -> bool:
        p = self.pos()
        h, w = self.pixels.shape[:2]
        return p.x() <= x < p.x() + w and p.y() <= y < p.y() + h


class PlaceTool(Tool):
    """Active while an image floats: drag moves it; Enter commits, Esc cancels (see the window)."""

    name, label = "place", "Place image"

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws)
        self.floating: FloatingImage | None = None
        self.previous_tool = "frame"

    def begin(
        self, pixels: np.ndarray, center: QPointF, metadata: dict[str, str] | None = None
    ) -> FloatingImage:
        """Float ``pixels`` centred on ``center`` (canvas px), replacing any image still floating."""
        if self.floating is not None:
            self.commit()
        item = FloatingImage(pixels, metadata)
        h, w = pixels.shape[:2]
        item.setPos(round(center.x() - w / 2), round(center.y() - h / 2))
        self.ws.scene.addItem(item)
        self.floating = item
        if self.ws.tool_name != self.name:
            self.previous_tool = self.ws.tool_name or "frame"
            self.ws.set_tool(self.name)
        return item

    def press(self, event: PointerEvent) -> ToolDrag | None:
        if self.floating is None:
            return None
        return self._move(event)

    def _move(self, start: PointerEvent) -> ToolDrag:
        assert self.floating is not None
        origin = self.floating.pos()
        while True:
            ev = yield
            self.floating.setPos(round(origin.x() + ev.x - start.x), round(origin.y() + ev.y - start.y))

    def commit(self) -> tuple[int, int] | None:
        """Write the floating image into the document (one undo step); returns where it went."""
        item, self.floating = self.floating, None
        if item is None:
            return None
        x, y = int(item.pos().x()), int(item.pos().y())
        self.ws.scene.removeItem(item)
        self.ws.doc.paste(x, y, item.pixels, blend="over", label="Place image")
        self._restore_tool()
        return (x, y)

    def cancel(self) -> None:
        item, self.floating = self.floating, None
        if item is not None:
            self.ws.scene.removeItem(item)
        self._restore_tool()

    def _restore_tool(self) -> None:
        if self.ws.tool_name == self.name:
            self.ws.set_tool(self.previous_tool if self.previous_tool in self.ws.tools else "frame")

    def deactivate(self) -> None:
        super().deactivate()
        if self.floating is not None:  # switching tools commits, as in Krita
            item, self.floating = self.floating, None
            self.ws.scene.removeItem(item)
            x, y = int(item.pos().x()), int(item.pos().y())
            self.ws.doc.paste(x, y, item.pixels, blend="over", label="Place image")

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.SizeAllCursor)


def frame_rect_for_image(x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
    """A frame covering a placed image, on the 8 px grid."""
    x0, y0 = snap(x), snap(y)
    return x0, y0, max(8, snap(x + w) - x0), max(8, snap(y + h) - y0)

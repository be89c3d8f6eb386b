"""A prompt frame on the canvas: outline, resize handles, prompt badge, live previews, staged result.

The item mirrors a :class:`PromptFrame`; it owns only display state (previews, progress, the staged
candidate), never document state.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from canvas_app.core.frames import PromptFrame
from canvas_app.core.regions import Region
from canvas_app.ui.qimage import array_to_qimage

ACCENT = QColor(80, 160, 255)
IDLE = QColor(230, 230, 230)
# Region outlines and overlays, one colour each in the frame's order (hiding one recolours none).
REGION_COLORS = [QColor(255, 170, 60), QColor(120, 230, 120), QColor(240, 110, 200), QColor(90, 220, 230)]
HANDLE_PX = 8  # on screen
# How strongly a region shows over the picture: a painted mask at full strength, a plain box (the
# dotted outline says most of it) much fainter, so the picture under it stays readable.
REGION_MASK_OPACITY = 0.45
REGION_BOX_OPACITY = 0.12


def region_color(index: int) -> QColor:
    return REGION_COLORS[index % len(REGION_COLORS)]


# Mask values below this count as unpainted for outlines and for grabbing a region with the mouse
# (the soft rim of a dab is too faint to aim at).
PAINTED = 32


@lru_cache(maxsize=64)
def _decoded_mask(mask_png: str) -> np.ndarray | None:
    try:
        mask = Region(mask_png=mask_png).mask()
    except ValueError:
        return None  # a damaged mask shows as its box; the request says what is wrong
    if mask is not None:
        mask.flags.writeable = False
    return mask


def region_mask(region: Region) -> np.ndarray | None:
    """A region's painted mask (read-only, decoded once per mask), or None for a plain box."""
    return _decoded_mask(region.mask_png) if region.mask_png else None


def painted_rect(region: Region, mask: np.ndarray | None = None) -> QRectF | None:
    """Frame-relative rectangle around what is painted in a region (its box for a plain box);
    None when nothing is."""
    mask = region_mask(region) if mask is None else mask
    if mask is None:
        return QRectF(*region.rect)
    rows = np.flatnonzero(mask.max(axis=1) >= PAINTED)
    cols = np.flatnonzero(mask.max(axis=0) >= PAINTED)
    if not rows.size:
        return None
    sx, sy = region.w / mask.shape[1], region.h / mask.shape[0]
    return QRectF(
        region.x + cols[0] * sx,
        region.y + rows[0] * sy,
        (cols[-1] + 1 - cols[0]) * sx,
        (rows[-1] + 1 - rows[0]) * sy,
    )


def region_covers(region: Region, rx: float, ry: float) -> bool:
    """Whether frame-relative point (rx, ry) is in a region: in its box, and on its paint if painted."""
    if not (region.x <= rx < region.x + region.w and region.y <= ry < region.y + region.h):
        return False
    mask = region_mask(region)
    if mask is None:
        return True
    mh, mw = mask.shape
    row = min(int((ry - region.y) * mh / region.h), mh - 1)
    col = min(int((rx - region.x) * mw / region.w), mw - 1)
    return bool(mask[row, col] >= PAINTED)


def region_overlay(mask: np.ndarray, color: QColor, opacity: float = REGION_MASK_OPACITY) -> QImage:
    """A painted region mask (HxW uint8) as a translucent overlay image in the region's colour."""
    rgba = np.empty(mask.shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = color.red(), color.green(), color.blue()
    rgba[..., 3] = (mask.astype(np.uint16) * int(opacity * 256) >> 8).astype(np.uint8)
    return array_to_qimage(rgba)


class FrameBadge(QGraphicsItem):
    """The prompt, mode and progress above the frame, at a constant size on screen."""

    WIDTH = 260

    def __init__(self, parent: FrameItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._font = QFont()
        self._font.setPointSizeF(9)
        self._metrics = QFontMetrics(self._font)
        self.title = ""
        self.status = ""
        self.fraction: float | None = None

    def boundingRect(self) -> QRectF:
        return QRectF(0, -44, self.WIDTH, 44)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        frame_item = self.parentItem()
        selected = isinstance(frame_item, FrameItem) and frame_item.selected
        lines = [self.title or "(no prompt)"]
        if self.status:
            lines.append(self.status)
        h = 4 + 16 * len(lines) + (6 if self.fraction is not None else 0)
        box = QRectF(0, -h - 2, self.WIDTH, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 24, 200))
        painter.drawRoundedRect(box, 3, 3)
        painter.setFont(self._font)
        painter.setPen(ACCENT if selected else IDLE)
        y = box.top() + 14
        for line in lines:
            painter.drawText(
                QPointF(5, y), self._metrics.elidedText(line, Qt.TextElideMode.ElideRight, self.WIDTH - 10)
            )
            y += 16
        if self.fraction is not None:
            bar = QRectF(5, box.bottom() - 7, self.WIDTH - 10, 4)
            painter.setBrush(QColor(255, 255, 255, 50))
            painter.drawRect(bar)
            painter.setBrush(ACCENT)
            painter.drawRect(
                QRectF(bar.left(), bar.top(), bar.width() * max(0.0, min(1.0, self.fraction)), 4)
            )


class FrameItem(QGraphicsItem):
    """Draws one frame. Position is the frame's (x, y) in canvas pixels; the item is the frame's size."""

    def __init__(self, frame: PromptFrame) -> None:
        super().__init__()
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # tools do the hit testing
        self.frame = frame
        self.selected = False
        self.mode_label = ""
        self._previews: dict[int, tuple[QRectF, QImage]] = {}
        self._staged: QImage | None = None
        self._staged_rect = QRectF()
        self.selected_region = ""  # id of the region the tools act on
        # A region being painted: drawn from this mask instead of its stored one (or added, while new).
        self._live_region: tuple[Region, QImage, QRectF | None] | None = None
        self._overlays: dict[str, tuple[str, int, QImage]] = {}  # id -> (mask_png, colour index, image)
        self.badge = FrameBadge(self)
        self.set_frame(frame)

    # -- mirroring -------------------------------------------------------------------------------
    def set_frame(self, frame: PromptFrame) -> None:
        if (frame.w, frame.h) != (self.frame.w, self.frame.h):
            self.prepareGeometryChange()
        self.frame = frame
        ids = {r.id for r in frame.regions}
        self._overlays = {k: v for k, v in self._overlays.items() if k in ids}
        self.setPos(frame.x, frame.y)
        self._refresh_title()
        self.update()

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self.setZValue(11 if selected else 10)
        self.update()
        self.badge.update()

    def set_selected_region(self, region_id: str) -> None:
        if region_id != self.selected_region:
            self.selected_region = region_id
            self.update()

    def set_live_region(self, region: Region | None, mask: np.ndarray | None = None) -> None:
        """Show ``region`` painted with ``mask`` while a stroke is in progress (None: stop)."""
        if region is None or mask is None:
            self._live_region = None
        else:
            index = next(
                (i for i, r in enumerate(self.frame.regions) if r.id == region.id), len(self.frame.regions)
            )
            overlay = region_overlay(mask, region_color(index))
            self._live_region = (region, overlay, painted_rect(region, mask))
        self.update()

    def set_mode_label(self, label: str) -> None:
        self.mode_label = label
        self._refresh_title()

    def set_status(self, status: str, fraction: float | None = None) -> None:
        self.badge.status = status
        self.badge.fraction = fraction
        self.badge.update()

    def _refresh_title(self) -> None:
        prefix = f"[{self.mode_label}] " if self.mode_label else ""
        self.badge.title = prefix + (self.frame.prompt.strip().replace("\n", " ") or "(no prompt)")
        self.badge.update()

    # -- previews and staging (canvas rectangles) ------------------------------------------------
    def set_preview(self, tile: int, canvas_rect: QRectF, image: QImage) -> None:
        """Show ``image`` stretched over ``canvas_rect`` (a tile of the running generation)."""
        self._previews[tile] = (canvas_rect.translated(-self.pos()), image)
        self.update()

    def clear_previews(self) -> None:
        if self._previews:
            self._previews.clear()
            self.update()

    def has_previews(self) -> bool:
        return bool(self._previews)

    def set_staged(self, image: QImage | None, canvas_rect: QRectF | None = None) -> None:
        self._staged = image
        self._staged_rect = (
            canvas_rect or QRectF(self.frame.x, self.frame.y, self.frame.w, self.frame.h)
        ).translated(-self.pos())
        self.update()

    @property
    def staged(self) -> QImage | None:
        return self._staged

    # -- QGraphicsItem ---------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        pad = 2.0
        return QRectF(-pad, -pad, self.frame.w + 2 * pad, self.frame.h + 2 * pad)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        inner = QRectF(0, 0, self.frame.w, self.frame.h)
        painter.save()
        painter.setClipRect(inner)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        if self._staged is not None:
            painter.drawImage(self._staged_rect, self._staged)
        else:
            for rect, image in self._previews.values():
                painter.drawImage(rect, image)
        painter.restore()
        pen = QPen(ACCENT if self.selected else IDLE, 2 if self.selected else 1)
        pen.setCosmetic(True)
        if not self.selected:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(inner)
        self._paint_regions(painter)
        if self.selected:
            self._paint_handles(painter, inner)

    def _paint_regions(self, painter: QPainter) -> None:
        """Each visible region: a painted mask as a translucent overlay in its colour, outlined around
        its paint; a plain box faintly filled and outlined. Dotted, solid for the selected one, with
        the start of its prompt on a dark label."""
        inner = QRectF(0, 0, self.frame.w, self.frame.h)
        live = self._live_region
        regions = list(self.frame.regions)
        if live is not None and all(r.id != live[0].id for r in regions):
            regions.append(live[0])  # a region being painted into existence
        painter.save()
        painter.setClipRect(inner)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for i, region in enumerate(regions):
            if not region.visible:
                continue
            color = region_color(i)
            box = QRectF(*region.rect)
            overlay: QImage | None
            if live is not None and live[0].id == region.id:
                overlay, outline = live[1], live[2]
            else:
                overlay, outline = self._overlay(region, i), painted_rect(region)
            if overlay is not None:
                painter.drawImage(box, overlay)
            else:
                fill = QColor(color)
                fill.setAlphaF(REGION_BOX_OPACITY)
                painter.fillRect(box, fill)
            if outline is None:
                continue  # a mask with nothing painted (yet)
            selected = region.id == self.selected_region
            pen = QPen(
                color, 2 if selected else 1, Qt.PenStyle.SolidLine if selected else Qt.PenStyle.DotLine
            )
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(outline)
            # A painted region's label sits above its paint (where there is room) to leave the paint seen.
            above = overlay is not None
            self._paint_label(painter, outline, region.prompt[:40] or "(no prompt)", color, above)
        painter.restore()

    @staticmethod
    def _paint_label(painter: QPainter, rect: QRectF, text: str, color: QColor, above: bool) -> None:
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 8, metrics.height() + 2
        top = rect.top() - h - 1 if above and rect.top() - h - 1 >= 0 else rect.top() + 2
        label = QRectF(rect.left() + 2, top, w, h)
        painter.fillRect(label, QColor(20, 20, 24, 170))  # readable over any picture
        painter.setPen(color)
        painter.drawText(label, Qt.AlignmentFlag.AlignCenter, text)

    def _overlay(self, region: Region, index: int) -> QImage | None:
        """The overlay image of a painted region, built once per mask and colour."""
        mask = region_mask(region)
        if mask is None:
            return None
        cached = self._overlays.get(region.id)
        if cached is not None and cached[0] == region.mask_png and cached[1] == index:
            return cached[2]
        image = region_overlay(mask, region_color(index))
        self._overlays[region.id] = (region.mask_png, index, image)
        return image

    def _paint_handles(self, painter: QPainter, inner: QRectF) -> None:
        scale = painter.worldTransform().m11() or 1.0
        s = HANDLE_PX / scale
        painter.setBrush(QBrush(ACCENT))
        painter.setPen(Qt.PenStyle.NoPen)
        for p in (inner.topLeft(), inner.topRight(), inner.bottomLeft(), inner.bottomRight()):
            painter.drawRect(QRectF(p.x() - s / 2, p.y() - s / 2, s, s))

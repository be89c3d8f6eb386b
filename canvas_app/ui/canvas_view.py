"""The infinite canvas view: pan, zoom around the cursor, checkerboard, pixel grid, tool dispatch.

The view owns no document state; it turns Qt input into :class:`PointerEvent` objects and feeds the
active tool's generator (press -> moves -> release).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QNativeGestureEvent,
    QPainter,
    QPen,
    QPixmap,
    QTabletEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QWidget

MIN_ZOOM = 0.01
MAX_ZOOM = 32.0
GRID_MIN_ZOOM = 8.0  # pixel grid from 800%
SCENE_EXTENT = 1.0e7


@dataclass(frozen=True)
class PointerEvent:
    """A pointer sample in canvas coordinates, independent of Qt so that tools test without a view."""

    x: float
    y: float
    pressure: float = 1.0
    button: str = "left"  # left | right
    shift: bool = False
    ctrl: bool = False
    alt: bool = False


ToolDrag = Generator[None, PointerEvent, None]


def checker_pixmap(cell: int = 8) -> QPixmap:
    pixmap = QPixmap(cell * 2, cell * 2)
    pixmap.fill(QColor(70, 70, 70))
    p = QPainter(pixmap)
    p.fillRect(0, 0, cell, cell, QColor(90, 90, 90))
    p.fillRect(cell, cell, cell, cell, QColor(90, 90, 90))
    p.end()
    return pixmap


class CanvasView(QGraphicsView):
    """Graphics view over an effectively infinite scene.

    The active tool is any object with ``press(event) -> ToolDrag | None``, ``hover(event)`` and
    ``cursor()``; see :mod:`canvas_app.ui.tools`.
    """

    zoom_changed = Signal(float)
    cursor_moved = Signal(float, float)
    files_dropped = Signal(list, float, float)  # local paths, canvas x, y
    image_dropped = Signal(QImage, float, float)

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        scene.setSceneRect(-SCENE_EXTENT, -SCENE_EXTENT, 2 * SCENE_EXTENT, 2 * SCENE_EXTENT)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents, True)
        self._checker = QBrush(checker_pixmap())
        self._background: QPixmap | None = None  # the checkerboard at viewport size
        self.show_grid = True
        self.tool = None  # set by the window
        self._drag: ToolDrag | None = None
        self._pan_from: QPointF | None = None
        self._space_down = False
        self._tablet_pressure: float | None = None
        self.centerOn(0, 0)

    # -- zoom ------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` (1.0 = 100%) keeping the canvas point under ``anchor`` (view px) fixed."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        if anchor is None:
            anchor = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
        before = self._map(anchor)
        self.resetTransform()
        self.scale(zoom, zoom)
        self._scroll_by_scene(before - self._map(anchor))
        self.zoom_changed.emit(self.zoom)
        self.viewport().update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom * factor, anchor)

    def zoom_step(self, steps: int, anchor: QPointF | None = None) -> None:
        """Zoom in (positive) or out by preset steps of 2^(1/4) per step, snapping near 100%."""
        target = self.zoom * (2 ** (steps / 4))
        if abs(math.log2(target)) < 0.05:
            target = 1.0
        self.set_zoom(target, anchor)

    def fit_rect(self, rect: QRectF, margin: float = 0.05) -> None:
        if rect.isEmpty():
            self.set_zoom(1.0)
            self.center_on(QPointF(0, 0))
            return
        vw, vh = self.viewport().width(), self.viewport().height()
        zoom = min(vw / rect.width(), vh / rect.height()) * (1 - 2 * margin)
        self.set_zoom(zoom)
        self.center_on(rect.center())

    def center_on(self, point: QPointF) -> None:
        vp = self.viewport()
        current = self._map(QPointF(vp.width() / 2, vp.height() / 2))
        self._scroll_by_scene(point - current)

    def center_on_point(self, x: float, y: float) -> None:
        self.center_on(QPointF(x, y))

    def visible_scene_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def _scroll_offset(self) -> QPointF:
        return QPointF(self.horizontalScrollBar().value(), self.verticalScrollBar().value())

    def _scroll_by_scene(self, delta: QPointF) -> None:
        z = self.zoom
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(delta.x() * z))
        v.setValue(v.value() + round(delta.y() * z))

    def pan_by_view(self, dx: float, dy: float) -> None:
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - round(dx))
        v.setValue(v.value() - round(dy))

    # -- painting --------------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        # The checkerboard stays the same size on screen at every zoom, as in Krita. A texture-brush
        # fill costs ~10 ms at 1080p; blitting a cached opaque pixmap is a copy.
        size = self.viewport().size()
        if self._background is None or self._background.size() != size:
            self._background = QPixmap(size)
            p = QPainter(self._background)
            p.fillRect(self._background.rect(), self._checker)
            p.end()
        painter.save()
        painter.resetTransform()
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawPixmap(0, 0, self._background)
        painter.restore()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        z = self.zoom
        if not self.show_grid or z < GRID_MIN_ZOOM:
            return
        painter.save()
        pen = QPen(QColor(0, 0, 0, 60))
        pen.setCosmetic(True)
        painter.setPen(pen)
        left, top = math.floor(rect.left()), math.floor(rect.top())
        right, bottom = math.ceil(rect.right()), math.ceil(rect.bottom())
        for x in range(left, right + 1):
            painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        for y in range(top, bottom + 1):
            painter.drawLine(QPointF(left, y), QPointF(right, y))
        painter.restore()

    # -- input -----------------------------------------------------------------------------------
    def _pointer(self, pos: QPointF, mods: Qt.KeyboardModifier, button: str = "left") -> PointerEvent:
        scene = self._map(pos)
        pressure = 1.0 if self._tablet_pressure is None else self._tablet_pressure
        return PointerEvent(
            scene.x(),
            scene.y(),
            pressure,
            button,
            bool(mods & Qt.KeyboardModifier.ShiftModifier),
            bool(mods & Qt.KeyboardModifier.ControlModifier),
            bool(mods & Qt.KeyboardModifier.AltModifier),
        )

    def _map(self, pos: QPointF) -> QPointF:
        """View -> canvas with sub-pixel precision (mapToScene rounds to whole view pixels)."""
        return self.transform().inverted()[0].map(pos + self._scroll_offset())

    def wheelEvent(self, event: QWheelEvent) -> None:
        pixel = event.pixelDelta()
        angle = event.angleDelta()
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier or (pixel.isNull() and not mods):
            # Mouse wheel (or Ctrl + trackpad): zoom around the cursor.
            steps = angle.y() / 120.0 if angle.y() else pixel.y() / 60.0
            if steps:
                self.set_zoom(self.zoom * (2 ** (steps / 4)), event.position())
        elif pixel.isNull():
            # Shift + wheel scrolls sideways; Alt + wheel scrolls vertically.
            dx = angle.y() if mods & Qt.KeyboardModifier.ShiftModifier else angle.x()
            dy = angle.y() if not mods & Qt.KeyboardModifier.ShiftModifier else 0
            self.pan_by_view(dx / 2, dy / 2)
        else:
            self.pan_by_view(pixel.x(), pixel.y())  # trackpad two-finger scroll pans
        event.accept()

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.NativeGesture:
            gesture: QNativeGestureEvent = event  # type: ignore[assignment]
            if gesture.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
                self.set_zoom(self.zoom * (1.0 + gesture.value()), gesture.position())
                return True
        return super().viewportEvent(event)

    def tabletEvent(self, event: QTabletEvent) -> None:
        # Remember the pressure; Qt then synthesises the mouse events we handle below.
        self._tablet_pressure = None if event.type() == QEvent.Type.TabletRelease else float(event.pressure())
        event.ignore()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) and self.tool is not None:
            which = "left" if button == Qt.MouseButton.LeftButton else "right"
            drag = self.tool.press(self._pointer(event.position(), event.modifiers(), which))
            if drag is not None:
                self._drag = drag
                next(drag, None)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan_by_view(delta.x(), delta.y())
            event.accept()
            return
        pointer = self._pointer(event.position(), event.modifiers())
        self.cursor_moved.emit(pointer.x, pointer.y)
        if self.tool is not None:
            self.tool.hover(pointer)
        if self._drag is not None:
            try:
                self._drag.send(pointer)
            except StopIteration:
                self._drag = None
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self._restore_cursor()
            event.accept()
            return
        if self._drag is not None:
            drag, self._drag = self._drag, None
            drag.close()  # GeneratorExit lets the tool finish (commit the stroke) in a finally block
            event.accept()
            return
        super().mouseReleaseEvent(event)

    # -- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        pos = self._map(event.position())
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.files_dropped.emit(paths, pos.x(), pos.y())
        elif mime.hasImage():
            self.image_dropped.emit(QImage(mime.imageData()), pos.x(), pos.y())
        else:
            event.ignore()
            return
        event.acceptProposedAction()

    @property
    def dragging(self) -> bool:
        """True while a tool drag (a brush stroke, a frame move) is in progress."""
        return self._drag is not None

    def cancel_drag(self) -> None:
        if self._drag is not None:
            drag, self._drag = self._drag, None
            drag.close()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self._restore_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        if self.tool is not None:
            self.tool.leave()
        super().leaveEvent(event)

    def _restore_cursor(self) -> None:
        if self.tool is not None:
            self.viewport().setCursor(self.tool.cursor())
        else:
            self.viewport().unsetCursor()

"""Canvas tools. Each is a small class whose ``press`` returns a generator: it runs until its first
``yield`` on press, receives every move through ``send`` and finishes in ``finally`` on release
(``close``). Tools see :class:`PointerEvent` objects in canvas pixels, so tests drive them without
a window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QCursor

from canvas_app.core.brush import BrushSettings
from canvas_app.core.document import StrokeSession
from canvas_app.core.frames import PromptFrame, snap
from canvas_app.ui.canvas_view import PointerEvent, ToolDrag
from canvas_app.ui.workspace import Workspace

HANDLE_TOLERANCE_PX = 7
MIN_FRAME = 8


def frame_at(frames: Iterable[PromptFrame], x: float, y: float) -> PromptFrame | None:
    """The topmost (last drawn) of ``frames`` under canvas point (x, y)."""
    for frame in reversed(list(frames)):
        if frame.x <= x < frame.x + frame.w and frame.y <= y < frame.y + frame.h:
            return frame
    return None


def edges_at(rect: tuple[float, float, float, float], x: float, y: float, tol: float) -> str:
    """Which edges of ``rect`` (x, y, w, h) are within ``tol`` of (x, y): e.g. "l", "tr", "" for none."""
    x0, y0, x1, y1 = rect[0], rect[1], rect[0] + rect[2], rect[1] + rect[3]
    if not (x0 - tol <= x <= x1 + tol and y0 - tol <= y <= y1 + tol):
        return ""
    edges = ""
    if abs(y - y0) <= tol:
        edges += "t"
    elif abs(y - y1) <= tol:
        edges += "b"
    if abs(x - x0) <= tol:
        edges += "l"
    elif abs(x - x1) <= tol:
        edges += "r"
    return edges


def dragged_edges(
    rect: tuple[float, float, float, float],
    edges: str,
    dx: float,
    dy: float,
    minimum: float,
    place: Callable[[float], float] = lambda v: v,
) -> tuple[float, float, float, float]:
    """The corners (x0, y0, x1, y1) of ``rect`` (x, y, w, h) after a drag by (dx, dy) of its
    ``edges`` (as ``edges_at`` names them): each moved edge put where ``place`` says (snapped, for
    a region) and kept ``minimum`` from the opposite one. Frames and regions resize by it."""
    x0, y0, x1, y1 = rect[0], rect[1], rect[0] + rect[2], rect[1] + rect[3]
    if "l" in edges:
        x0 = min(place(x0 + dx), x1 - minimum)
    if "r" in edges:
        x1 = max(place(x1 + dx), x0 + minimum)
    if "t" in edges:
        y0 = min(place(y0 + dy), y1 - minimum)
    if "b" in edges:
        y1 = max(place(y1 + dy), y0 + minimum)
    return x0, y0, x1, y1


EDGE_CURSORS = {
    "l": Qt.CursorShape.SizeHorCursor,
    "r": Qt.CursorShape.SizeHorCursor,
    "t": Qt.CursorShape.SizeVerCursor,
    "b": Qt.CursorShape.SizeVerCursor,
    "tl": Qt.CursorShape.SizeFDiagCursor,
    "br": Qt.CursorShape.SizeFDiagCursor,
    "tr": Qt.CursorShape.SizeBDiagCursor,
    "bl": Qt.CursorShape.SizeBDiagCursor,
}


class Tool:
    name = ""
    label = ""
    shortcut = ""
    family = ""  # brush family for brush tools

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def press(self, event: PointerEvent) -> ToolDrag | None:
        return None

    def hover(self, event: PointerEvent) -> None:
        pass

    def leave(self) -> None:
        pass

    def activate(self) -> None:
        pass

    def deactivate(self) -> None:
        self.ws.scene.hide_outline()

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.ArrowCursor)


class HandTool(Tool):
    name, label, shortcut = "hand", "Hand (pan)", "H"

    def press(self, event: PointerEvent) -> ToolDrag:
        return self._drag(event)

    def _drag(self, start: PointerEvent) -> ToolDrag:
        view = self.ws.view
        view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        try:
            while True:
                ev = yield
                # Keep the canvas point that was grabbed under the pointer.
                z = view.zoom
                view.pan_by_view((ev.x - start.x) * z, (ev.y - start.y) * z)
        finally:
            view.viewport().setCursor(self.cursor())

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.OpenHandCursor)


class BrushTool(Tool):
    """Paints into the image or the mask with the workspace's brush settings for ``family``.
    ``erase`` removes paint (or mask); the right button inverts it for mask tools."""

    layer = "image"
    erase = False

    def press(self, event: PointerEvent) -> ToolDrag | None:
        if event.ctrl and self.layer == "image" and not self.erase:
            PickerTool(self.ws).pick(event)  # Ctrl+click picks a colour, as in Krita
            return None
        return self._stroke(event)

    def settings_for(self, event: PointerEvent) -> BrushSettings:
        erase = self.erase != (event.button == "right" and self.layer == "mask")
        return replace(self.ws.brush(self.family), erase=erase)

    def _stroke(self, first: PointerEvent) -> ToolDrag:
        if self.layer == "mask":
            self.ws.scene.set_mask_visible(True)
        settings = self.settings_for(first)
        session = self.ws.doc.begin_stroke(settings, self.layer)  # type: ignore[arg-type]
        try:
            self._dab(session, settings, first)
            while True:
                ev = yield
                self._dab(session, settings, ev)
                self.hover(ev)
        finally:
            session.end()

    @staticmethod
    def _dab(session: StrokeSession, settings: BrushSettings, ev: PointerEvent) -> None:
        if ev.pressure < 1.0:
            # Tablet pressure scales the dab size; the stroke object reads its settings per dab.
            stroke = getattr(session, "_stroke", None)
            if stroke is not None:
                stroke.settings = replace(settings, size=max(1.0, settings.size * max(ev.pressure, 0.05)))
        session.move_to(ev.x, ev.y)

    def hover(self, event: PointerEvent) -> None:
        self.ws.scene.show_outline(event.x, event.y, self.ws.brushes[self.family].size)

    def leave(self) -> None:
        self.ws.scene.hide_outline()

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.CrossCursor)


class MaskBrushTool(BrushTool):
    name, label, shortcut, family, layer = "mask", "Mask brush", "M", "mask", "mask"


class MaskEraserTool(BrushTool):
    name, label, shortcut, family, layer, erase = (
        "mask_eraser",
        "Mask eraser",
        "Shift+M",
        "mask",
        "mask",
        True,
    )


class PaintBrushTool(BrushTool):
    name, label, shortcut, family = "brush", "Paint brush", "B", "paint"


class EraserTool(BrushTool):
    name, label, shortcut, family, erase = "eraser", "Eraser", "E", "eraser", True


class PickerTool(Tool):
    name, label, shortcut = "picker", "Colour picker", "I"

    def press(self, event: PointerEvent) -> ToolDrag:
        self.pick(event)
        return self._drag()

    def _drag(self) -> ToolDrag:
        while True:
            ev = yield
            self.pick(ev)

    def pick(self, event: PointerEvent) -> None:
        px = self.ws.doc.image.read(int(event.x // 1), int(event.y // 1), 1, 1)[0, 0]
        if px[3] > 0:
            self.ws.set_color((int(px[0]), int(px[1]), int(px[2])))

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.CrossCursor)


class FrameTool(Tool):
    """Draw a new frame on empty canvas, click to select, drag inside to move, drag an edge or
    corner of the selected frame to resize. Shift keeps a drawn frame square."""

    name, label, shortcut = "frame", "Frame", "F"

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws)
        # The settings a drawn frame starts with (the window hands in the side panel's draft).
        self.new_frame_settings: Callable[[], dict[str, object]] = dict

    # -- hit testing -----------------------------------------------------------------------------
    def frame_at(self, x: float, y: float) -> PromptFrame | None:
        return frame_at(self.ws.doc.frames.values(), x, y)

    def handle_at(self, x: float, y: float) -> str:
        """Which edges of the selected frame are under (x, y): e.g. "l", "tr", "" for none."""
        frame = self.ws.doc.frames.get(self.ws.selected_frame_id)
        if frame is None:
            return ""
        return edges_at(frame.rect, x, y, HANDLE_TOLERANCE_PX / max(self.ws.view.zoom, 1e-6))

    # -- interaction -----------------------------------------------------------------------------
    def press(self, event: PointerEvent) -> ToolDrag | None:
        edges = self.handle_at(event.x, event.y)
        if edges:
            return self._resize(self.ws.doc.frame(self.ws.selected_frame_id), edges, event)
        hit = self.frame_at(event.x, event.y)
        if hit is not None:
            self.ws.select_frame(hit.id)
            return self._move(hit, event)
        return self._draw(event)

    def _move(self, frame: PromptFrame, start: PointerEvent) -> ToolDrag:
        item = self.ws.scene.frame_items[frame.id]
        moved = frame
        try:
            while True:
                ev = yield
                moved = frame.moved_to(frame.x + ev.x - start.x, frame.y + ev.y - start.y)
                item.set_frame(moved)
        finally:
            if (moved.x, moved.y) != (frame.x, frame.y) and frame.id in self.ws.doc.frames:
                self.ws.doc.move_frame(frame.id, moved.x, moved.y)
            elif frame.id in self.ws.doc.frames:
                item.set_frame(self.ws.doc.frame(frame.id))

    def _resize(self, frame: PromptFrame, edges: str, start: PointerEvent) -> ToolDrag:
        item = self.ws.scene.frame_items[frame.id]
        result = frame
        try:
            while True:
                ev = yield
                x0, y0, x1, y1 = dragged_edges(frame.rect, edges, ev.x - start.x, ev.y - start.y, MIN_FRAME)
                x0, y0, x1, y1 = snap(x0), snap(y0), snap(x1), snap(y1)
                result = frame.resized(x0, y0, max(x1 - x0, MIN_FRAME), max(y1 - y0, MIN_FRAME))
                item.set_frame(result)
        finally:
            if result.rect != frame.rect and frame.id in self.ws.doc.frames:
                self.ws.doc.resize_frame(frame.id, result.x, result.y, result.w, result.h)
            elif frame.id in self.ws.doc.frames:
                item.set_frame(self.ws.doc.frame(frame.id))

    def _draw(self, start: PointerEvent) -> ToolDrag:
        band = self.ws.scene.rubber_band
        rect: tuple[float, float, float, float] | None = None
        try:
            while True:
                ev = yield
                w, h = ev.x - start.x, ev.y - start.y
                if ev.shift:
                    side = max(abs(w), abs(h))
                    w, h = side if w >= 0 else -side, side if h >= 0 else -side
                x, y = min(start.x, start.x + w), min(start.y, start.y + h)
                rect = (x, y, abs(w), abs(h))
                band.setRect(QRectF(*rect))
                band.setVisible(True)
        finally:
            band.setVisible(False)
            if rect is not None and rect[2] >= MIN_FRAME and rect[3] >= MIN_FRAME:
                # Snap the corners (not the size) so the frame ends where the pointer did.
                x0, y0 = snap(rect[0]), snap(rect[1])
                x1, y1 = snap(rect[0] + rect[2]), snap(rect[1] + rect[3])
                defaults = self.new_frame_settings()
                frame = self.ws.doc.add_frame(
                    PromptFrame(x=x0, y=y0, w=max(x1 - x0, MIN_FRAME), h=max(y1 - y0, MIN_FRAME), **defaults)  # type: ignore[arg-type]
                )
                self.ws.select_frame(frame.id)
            elif rect is None:
                self.ws.select_frame("")

    def hover(self, event: PointerEvent) -> None:
        shape = EDGE_CURSORS.get(self.handle_at(event.x, event.y))
        if shape is None:
            shape = (
                Qt.CursorShape.SizeAllCursor
                if self.frame_at(event.x, event.y)
                else Qt.CursorShape.CrossCursor
            )
        self.ws.view.viewport().setCursor(shape)

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.CrossCursor)


TOOL_CLASSES: tuple[type[Tool], ...] = (
    HandTool,
    FrameTool,
    MaskBrushTool,
    MaskEraserTool,
    PaintBrushTool,
    EraserTool,
    PickerTool,
)


def install_tools(ws: Workspace) -> dict[str, Tool]:
    """Create one of each tool for ``ws`` and make the frame tool active."""
    # Imported here: the region tools build on the classes above (a top-level import would be circular).
    from canvas_app.ui.region_tool import REGION_TOOL_CLASSES

    after_frame = TOOL_CLASSES.index(FrameTool) + 1
    classes = (*TOOL_CLASSES[:after_frame], *REGION_TOOL_CLASSES, *TOOL_CLASSES[after_frame:])
    ws.tools = {cls.name: cls(ws) for cls in classes}
    ws.set_tool("frame")
    return ws.tools

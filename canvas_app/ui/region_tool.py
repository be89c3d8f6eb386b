"""Regions drawn and painted on the canvas, inside a frame (as the regional prompts of Krita AI
Diffusion or InvokeAI).

- The Region tool (R): drag inside a frame to draw a new box region (snapped like frames); drag a
  region (a painted one by its paint) to move it, a box's edges or corners to resize it; a click on
  an empty part of the frame selects no region. A drawn region is selected in the frame panel with its prompt field focused.
- The Region brush (Shift+R): paints the selected region's mask with the mask brush's settings (the
  right button erases); with no region selected, a stroke paints a new region over the whole frame.

Each drag or stroke is one undo step of the document (``Document.add_region`` / ``update_region``).
A painted mask lives in the region at its stored size (at most ``limits.MAX_REGION_MASK_SIDE`` a side,
stretched over the box): strokes are painted straight into that grid with :mod:`canvas_app.core.brush`,
so painting never resamples what is already there.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QAction, QCursor

from canvas_app.core import limits
from canvas_app.core.brush import Stroke
from canvas_app.core.frames import SNAP, PromptFrame, snap
from canvas_app.core.raster import TiledRaster
from canvas_app.core.regions import Region, encode_mask
from canvas_app.ui.canvas_view import PointerEvent, ToolDrag
from canvas_app.ui.frame_item import region_covers
from canvas_app.ui.tools import EDGE_CURSORS, HANDLE_TOLERANCE_PX, Tool, dragged_edges, edges_at, frame_at
from canvas_app.ui.workspace import Workspace

FULL = f"a frame holds at most {limits.MAX_REGIONS} regions"


def mask_grid(w: int, h: int) -> tuple[int, int]:
    """The (width, height) a new painted mask is stored at for a w x h box (as ``encode_mask`` keeps it)."""
    side = limits.MAX_REGION_MASK_SIDE
    if max(w, h) <= side:
        return w, h
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


class _RegionToolBase(Tool):
    """Frame and region lookup shared by the two region tools."""

    def target_frame(self, event: PointerEvent) -> PromptFrame | None:
        """The frame under the pointer, selected if it was not; None (and a notice) outside frames."""
        frame = frame_at(self.ws.doc.frames.values(), event.x, event.y)
        if frame is None:
            selected = self.ws.doc.frames.get(self.ws.selected_frame_id)
            tol = self.tolerance
            if selected is not None and edges_at(selected.rect, event.x, event.y, tol):
                return selected  # just outside the selected frame's edge: still its regions
            self.ws.message.emit("Regions live inside a frame: press inside one.")
            return None
        if frame.id != self.ws.selected_frame_id:
            self.ws.select_frame(frame.id)
        return frame

    @property
    def tolerance(self) -> float:
        return HANDLE_TOLERANCE_PX / max(self.ws.view.zoom, 1e-6)

    def show(self, frame: PromptFrame) -> None:
        """Mirror ``frame`` (with regions being dragged) on its item, without touching the document."""
        item = self.ws.scene.frame_items.get(frame.id)
        if item is not None:
            item.set_frame(frame)

    def restore(self, frame_id: str) -> None:
        if frame_id in self.ws.doc.frames:
            self.show(self.ws.doc.frame(frame_id))

    def cursor(self) -> QCursor:
        return QCursor(Qt.CursorShape.CrossCursor)


class RegionTool(_RegionToolBase):
    name, label, shortcut = "region", "Region", "R"

    # -- hit testing -----------------------------------------------------------------------------
    def region_at(self, frame: PromptFrame, x: float, y: float) -> Region | None:
        """The topmost visible region of ``frame`` under canvas point (x, y) (later regions win); a
        painted region only where it is painted, so boxes can still be drawn beside the paint."""
        for region in reversed(frame.regions):
            if region.visible and region_covers(region, x - frame.x, y - frame.y):
                return region
        return None

    def handle_at(self, x: float, y: float) -> tuple[PromptFrame | None, Region | None, str]:
        """The selected box region's edges under (x, y), with its frame: (frame, region, "tl") or ""
        edges. A painted region has no handles: stretching a painting is no way to reshape it."""
        frame = self.ws.doc.frames.get(self.ws.selected_frame_id)
        region = self.ws.selected_region
        if frame is None or region is None or not region.visible or region.mask_png:
            return None, None, ""
        rect = (frame.x + region.x, frame.y + region.y, region.w, region.h)
        return frame, region, edges_at(rect, x, y, self.tolerance)

    # -- interaction -----------------------------------------------------------------------------
    def press(self, event: PointerEvent) -> ToolDrag | None:
        frame, region, edges = self.handle_at(event.x, event.y)
        if frame is not None and region is not None and edges:
            return self._resize(frame, region, edges, event)
        frame = self.target_frame(event)
        if frame is None:
            return None
        hit = self.region_at(frame, event.x, event.y)
        if hit is not None:
            self.ws.select_region(hit.id)
            return self._move(frame, hit, event)
        return self._draw(frame, event)

    def _move(self, frame: PromptFrame, region: Region, start: PointerEvent) -> ToolDrag:
        moved = region
        try:
            while True:
                ev = yield
                x = snap(region.x + ev.x - start.x)
                y = snap(region.y + ev.y - start.y)
                # Keep the box over the frame where it fits: a box dragged wholly outside could not be
                # seen or grabbed again.
                x = min(max(x, min(0, frame.w - region.w)), max(0, frame.w - region.w))
                y = min(max(y, min(0, frame.h - region.h)), max(0, frame.h - region.h))
                moved = region.with_changes(x=x, y=y)
                self.show(_with_region(frame, moved))
        finally:
            self._commit(frame.id, region, moved, "Move region")

    def _resize(self, frame: PromptFrame, region: Region, edges: str, start: PointerEvent) -> ToolDrag:
        result = region
        try:
            while True:
                ev = yield
                x0, y0, x1, y1 = dragged_edges(region.rect, edges, ev.x - start.x, ev.y - start.y, SNAP, snap)
                result = region.with_changes(x=x0, y=y0, w=x1 - x0, h=y1 - y0)
                self.show(_with_region(frame, result))
        finally:
            self._commit(frame.id, region, result, "Resize region")

    def _commit(self, frame_id: str, old: Region, new: Region, label: str) -> None:
        frame = self.ws.doc.frames.get(frame_id)
        if frame is not None and new.rect != old.rect and any(r.id == old.id for r in frame.regions):
            self.ws.doc.update_region(frame_id, old.id, label, x=new.x, y=new.y, w=new.w, h=new.h)
        else:
            self.restore(frame_id)

    def _draw(self, frame: PromptFrame, start: PointerEvent) -> ToolDrag:
        band = self.ws.scene.rubber_band
        box: tuple[int, int, int, int] | None = None
        try:
            while True:
                ev = yield
                # The box stays inside the frame; its corners snap like a frame's.
                x0 = snap(min(max(min(start.x, ev.x), frame.x), frame.x + frame.w))
                y0 = snap(min(max(min(start.y, ev.y), frame.y), frame.y + frame.h))
                x1 = snap(min(max(max(start.x, ev.x), frame.x), frame.x + frame.w))
                y1 = snap(min(max(max(start.y, ev.y), frame.y), frame.y + frame.h))
                box = (x0, y0, x1 - x0, y1 - y0)
                band.setRect(QRectF(*box))
                band.setVisible(True)
        finally:
            band.setVisible(False)
            if box is None or box[2] < SNAP or box[3] < SNAP:
                self.ws.select_region("")  # a click on an empty part of the frame
            elif frame.id in self.ws.doc.frames:
                self._add(frame.id, Region(box[0] - frame.x, box[1] - frame.y, box[2], box[3]))

    def _add(self, frame_id: str, region: Region) -> None:
        if len(self.ws.doc.frame(frame_id).regions) >= limits.MAX_REGIONS:
            self.ws.message.emit(f"No region added: {FULL}.")
            return
        self.ws.doc.add_region(frame_id, region)
        self.ws.select_region(region.id, edit=True)

    def hover(self, event: PointerEvent) -> None:
        shape = EDGE_CURSORS.get(self.handle_at(event.x, event.y)[2])
        if shape is None:
            frame = frame_at(self.ws.doc.frames.values(), event.x, event.y)
            over_region = frame is not None and self.region_at(frame, event.x, event.y) is not None
            shape = Qt.CursorShape.SizeAllCursor if over_region else Qt.CursorShape.CrossCursor
        self.ws.view.viewport().setCursor(shape)


class RegionBrushTool(_RegionToolBase):
    """Paints the selected region's mask; the right button erases. Shares the mask brush's settings."""

    name, label, shortcut, family = "region_brush", "Region brush", "Shift+R", "mask"

    def press(self, event: PointerEvent) -> ToolDrag | None:
        frame = self.target_frame(event)
        if frame is None:
            return None
        region = self.ws.selected_region
        if region is not None and not region.visible:
            self.ws.message.emit("The selected region is hidden: show it to paint into it.")
            return None
        if region is None:
            if len(frame.regions) >= limits.MAX_REGIONS:
                self.ws.message.emit(f"No region painted: {FULL}.")
                return None
            region = Region(0, 0, frame.w, frame.h)  # a new region: painted anywhere in the frame
        return self._stroke(frame, region, event)

    def _stroke(self, frame: PromptFrame, region: Region, first: PointerEvent) -> ToolDrag:
        # A region deleted (or undone) during the stroke stays gone: only a new one is added at the end.
        new = all(r.id != region.id for r in frame.regions)
        # 1. The mask as stored (or empty, for a plain box or a new region): strokes paint its grid.
        stored = region.mask()
        if stored is None:
            mw, mh = mask_grid(region.w, region.h)
            stored = np.zeros((mh, mw), np.uint8)
        mh, mw = stored.shape
        sx, sy = mw / region.w, mh / region.h
        raster = TiledRaster(1, np.uint8)
        raster.write(0, 0, stored)
        brush = self.ws.brush(self.family)
        settings = replace(brush, size=max(1.0, brush.size * (sx + sy) / 2), erase=first.button == "right")
        stroke = Stroke(raster, settings)
        item = self.ws.scene.frame_items.get(frame.id)
        ox, oy = frame.x + region.x, frame.y + region.y

        def dab(ev: PointerEvent) -> None:
            if ev.pressure < 1.0:  # tablet pressure scales the dab, as with the other brushes
                stroke.settings = replace(settings, size=max(1.0, settings.size * max(ev.pressure, 0.05)))
            if stroke.move_to((ev.x - ox) * sx, (ev.y - oy) * sy) is not None and item is not None:
                item.set_live_region(region, raster.read(0, 0, mw, mh))

        # 2. Paint while the pointer moves; 3. one undo step on release.
        try:
            dab(first)
            while True:
                ev = yield
                dab(ev)
                self.hover(ev)
        finally:
            if item is not None:
                item.set_live_region(None)
            self._commit(frame.id, region, new, stored, raster.read(0, 0, mw, mh))

    def _commit(
        self, frame_id: str, region: Region, new: bool, before: np.ndarray, after: np.ndarray
    ) -> None:
        frame = self.ws.doc.frames.get(frame_id)
        if frame is None or np.array_equal(before, after):
            return
        exists = any(r.id == region.id for r in frame.regions)
        if exists and not new:
            self.ws.doc.update_region(frame_id, region.id, "Paint region", mask_png=encode_mask(after))
        elif new and not exists and after.any() and len(frame.regions) < limits.MAX_REGIONS:
            self.ws.doc.add_region(frame_id, region.with_changes(mask_png=encode_mask(after)))
            self.ws.select_region(region.id, edit=True)

    def hover(self, event: PointerEvent) -> None:
        self.ws.scene.show_outline(event.x, event.y, self.ws.brushes[self.family].size)

    def leave(self) -> None:
        self.ws.scene.hide_outline()


def _with_region(frame: PromptFrame, region: Region) -> PromptFrame:
    return frame.with_changes(regions=tuple(region if r.id == region.id else r for r in frame.regions))


REGION_TOOL_CLASSES: tuple[type[Tool], ...] = (RegionTool, RegionBrushTool)


def bind_region_actions(ws: Workspace, actions: dict[str, QAction]) -> None:
    """The region tools' actions are enabled while the document has a frame to hold regions; when
    the last frame goes, an active region tool hands over to the Frame tool."""
    names = [cls.name for cls in REGION_TOOL_CLASSES if cls.name in actions]

    def update(*_args: object) -> None:
        enabled = bool(ws.doc.frames)
        for name in names:
            actions[name].setEnabled(enabled)
        if not enabled and ws.tool_name in names:
            ws.set_tool("frame")

    ws.scene.relay.frame_added.connect(update)
    ws.scene.relay.frame_removed.connect(update)
    ws.document_replaced.connect(update)
    update()

"""The state shared by the canvas, the tools and the panels: document, selection, brushes, colour.

It is the one place the window swaps documents (new/open); everything else asks it for ``doc``.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from canvas_app.core.brush import BrushSettings
from canvas_app.core.document import Document
from canvas_app.core.frames import ViewState
from canvas_app.core.regions import Region
from canvas_app.ui import refcount_guard
from canvas_app.ui.canvas_view import CanvasView
from canvas_app.ui.scene import CanvasScene

MIN_BRUSH = 1.0
MAX_BRUSH = 2000.0


class Workspace(QObject):
    """Document + scene + view + tool settings. Brush settings are kept per brush family:
    ``mask`` (mask brush and mask eraser), ``paint`` and ``eraser``."""

    document_replaced = Signal()
    selection_changed = Signal(str)  # frame id or ""
    brush_changed = Signal(str)  # family
    color_changed = Signal(tuple)
    tool_changed = Signal(str)
    # The selected region of the selected frame ("" for none) and whether its prompt should take the
    # focus (a region just drawn on the canvas: the artist types its prompt at once).
    region_selected = Signal(str, bool)
    message = Signal(str)  # a short notice for the status bar (why a tool did nothing)

    def __init__(self, doc: Document | None = None) -> None:
        super().__init__()
        refcount_guard.install()  # every canvas paints a lot: see refcount_guard's docstring
        self.doc = doc or Document()
        self.scene = CanvasScene(self.doc)
        self.view = CanvasView(self.scene)
        self.selected_frame_id = ""
        self.selected_region_id = ""
        self.brushes: dict[str, BrushSettings] = {
            "mask": BrushSettings(size=48, hardness=0.7, opacity=1.0),
            "paint": BrushSettings(size=16, hardness=0.9, opacity=1.0),
            "eraser": BrushSettings(size=48, hardness=0.8, opacity=1.0),
        }
        self.color: tuple[int, int, int] = (20, 20, 20)
        self.tools: dict = {}
        self.tool_name = ""
        self.scene.relay.frame_removed.connect(self._on_frame_removed)
        # The document's view state follows the view at all times, so that what autosave and save
        # write (and recovery brings back) includes where the artist was looking.
        self._restoring_view = False
        self.view.zoom_changed.connect(self._store_view)
        self.view.horizontalScrollBar().valueChanged.connect(self._store_view)
        self.view.verticalScrollBar().valueChanged.connect(self._store_view)

    # -- document --------------------------------------------------------------------------------
    def set_document(self, doc: Document) -> None:
        """Show ``doc``: where its view state says (centre, zoom) with its active frame selected."""
        self.view.cancel_drag()
        self.select_frame("")
        state = ViewState(**doc.view.to_dict())
        self.doc = doc
        self.scene.set_document(doc)
        self._restoring_view = True
        try:
            self.view.set_zoom(state.zoom)
            self.view.center_on_point(state.center_x, state.center_y)
        finally:
            self._restoring_view = False
        self._store_view()
        self.document_replaced.emit()
        if state.active_frame and state.active_frame in doc.frames:
            self.select_frame(state.active_frame)

    def _store_view(self, *_args: object) -> None:
        if self._restoring_view:
            return
        c = self.view.visible_scene_rect().center()
        v = self.doc.view
        # Plain assignments: the view is no undoable edit and needs no event.
        v.center_x, v.center_y, v.zoom = c.x(), c.y(), self.view.zoom
        v.active_frame = self.selected_frame_id or None

    # -- selection -------------------------------------------------------------------------------
    def select_frame(self, frame_id: str) -> None:
        if frame_id == self.selected_frame_id:
            return
        old = self.scene.frame_items.get(self.selected_frame_id)
        if old is not None:
            old.set_selected(False)
            old.set_selected_region("")
        self.selected_frame_id = frame_id
        self.selected_region_id = ""
        self.doc.view.active_frame = frame_id or None
        new = self.scene.frame_items.get(frame_id)
        if new is not None:
            new.set_selected(True)
        self.selection_changed.emit(frame_id)

    @property
    def selected_region(self) -> Region | None:
        frame = self.doc.frames.get(self.selected_frame_id)
        if frame is None:
            return None
        return next((r for r in frame.regions if r.id == self.selected_region_id), None)

    def select_region(self, region_id: str, edit: bool = False) -> None:
        """Select a region of the selected frame ("" for none); ``edit``: its prompt takes the focus."""
        changed = region_id != self.selected_region_id
        self.selected_region_id = region_id
        item = self.scene.frame_items.get(self.selected_frame_id)
        if item is not None:
            item.set_selected_region(region_id)
        if changed or edit:
            self.region_selected.emit(region_id, edit)

    def _on_frame_removed(self, frame_id: str) -> None:
        if frame_id == self.selected_frame_id:
            self.selected_frame_id = ""
            self.selected_region_id = ""
            self.doc.view.active_frame = None
            self.selection_changed.emit("")

    # -- brushes ---------------------------------------------------------------------------------
    def brush(self, family: str) -> BrushSettings:
        settings = self.brushes[family]
        if family == "paint":
            settings = replace(settings, color=self.color)
        return settings

    def set_brush(self, family: str, **changes: object) -> None:
        current = self.brushes[family]
        if "size" in changes:
            changes["size"] = min(MAX_BRUSH, max(MIN_BRUSH, float(changes["size"])))  # type: ignore[arg-type]
        new = replace(current, **changes)  # type: ignore[arg-type]
        if new != current:
            self.brushes[family] = new
            self.brush_changed.emit(family)

    def scale_brush(self, factor: float) -> None:
        """``[`` / ``]``: resize the brush of the active tool."""
        tool = self.tools.get(self.tool_name)
        family = getattr(tool, "family", None)
        if family:
            self.set_brush(family, size=round(self.brushes[family].size * factor, 1))

    def set_color(self, color: tuple[int, int, int]) -> None:
        color = (int(color[0]), int(color[1]), int(color[2]))
        if color != self.color:
            self.color = color
            self.color_changed.emit(color)

    # -- tools -----------------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            raise KeyError(f"no tool named {name!r}")
        if name == self.tool_name:
            return
        self.view.cancel_drag()
        old = self.tools.get(self.tool_name)
        if old is not None:
            old.deactivate()
        self.tool_name = name
        tool = self.tools[name]
        self.view.tool = tool
        self.view.viewport().setCursor(tool.cursor())
        tool.activate()
        self.tool_changed.emit(name)

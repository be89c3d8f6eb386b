"""Tools driven with fake pointer events, and the canvas view's zoom and tile drawing."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF

from canvas_app.core.document import Document
from canvas_app.ui.canvas_view import MAX_ZOOM, MIN_ZOOM, PointerEvent
from canvas_app.ui.tools import install_tools
from canvas_app.ui.workspace import Workspace


@pytest.fixture
def ws(qtbot):
    w = Workspace(Document())
    install_tools(w)
    qtbot.addWidget(w.view)
    w.view.resize(800, 600)
    w.view.show()
    return w


def drag(ws, tool, points, button="left", **mods):
    gen = ws.tools[tool].press(PointerEvent(*points[0], button=button, **mods))
    if gen is None:
        return
    next(gen)
    for p in points[1:]:
        gen.send(PointerEvent(*p, button=button, **mods))
    gen.close()


def test_mask_stroke_is_one_undo_step_and_eraser_removes_it(ws):
    drag(ws, "mask", [(10, 10), (200, 10)])
    assert ws.doc.mask.read(100, 10, 1, 1)[0, 0] == 255
    assert ws.doc.history.undo_label == "Mask stroke"
    drag(ws, "mask_eraser", [(0, 10), (300, 10)])
    assert ws.doc.mask.read(100, 10, 1, 1)[0, 0] == 0
    ws.doc.undo()
    assert ws.doc.mask.read(100, 10, 1, 1)[0, 0] == 255
    # Right button with the mask brush erases too.
    drag(ws, "mask", [(0, 10), (300, 10)], button="right")
    assert ws.doc.mask.read(100, 10, 1, 1)[0, 0] == 0


def test_paint_brush_uses_colour_and_picker_reads_it(ws):
    ws.set_color((200, 10, 30))
    drag(ws, "brush", [(50, 50), (60, 50)])
    assert tuple(ws.doc.image.read(55, 50, 1, 1)[0, 0]) == (200, 10, 30, 255)
    ws.set_color((0, 0, 0))
    drag(ws, "picker", [(55, 50)])
    assert ws.color == (200, 10, 30)
    drag(ws, "eraser", [(40, 50), (70, 50)])
    assert ws.doc.image.read(55, 50, 1, 1)[0, 0, 3] == 0


def test_brush_size_keys_scale_active_brush(ws):
    ws.set_tool("mask")
    before = ws.brushes["mask"].size
    ws.scale_brush(1.25)
    assert ws.brushes["mask"].size == pytest.approx(before * 1.25, abs=0.1)
    ws.tools["mask"].hover(PointerEvent(5, 5))
    assert ws.scene.outline.isVisible()
    assert ws.scene.outline.rect().width() == pytest.approx(ws.brushes["mask"].size)


def test_frame_tool_draws_moves_and_resizes(ws):
    drag(ws, "frame", [(3, 5), (100, 80), (261, 250)])
    (frame,) = ws.doc.frames.values()
    assert frame.rect == (0, 8, 264, 240)  # corners snapped to 8
    assert ws.selected_frame_id == frame.id
    drag(ws, "frame", [(50, 50), (150, 90)])  # inside: move
    moved = ws.doc.frame(frame.id)
    assert (moved.x, moved.y) == (96, 48)
    drag(ws, "frame", [(moved.x + moved.w, 150), (moved.x + moved.w + 100, 150)])  # right edge
    resized = ws.doc.frame(frame.id)
    assert resized.x + resized.w == 464  # the edge follows the pointer (460), snapped
    assert (resized.x, resized.y, resized.h) == (moved.x, moved.y, moved.h)
    ws.doc.undo()
    assert ws.doc.frame(frame.id).rect == moved.rect
    assert ws.scene.frame_items[frame.id].pos() == QPointF(moved.x, moved.y)
    # A click on empty canvas deselects.
    drag(ws, "frame", [(-500, -500)])
    assert ws.selected_frame_id == ""


def test_zoom_limits_and_anchor(ws):
    view = ws.view
    anchor = QPointF(200, 150)
    before = view._map(anchor)
    view.set_zoom(4.0, anchor)
    after = view._map(anchor)
    assert abs(before.x() - after.x()) < 0.5 and abs(before.y() - after.y()) < 0.5
    view.set_zoom(1000)
    assert view.zoom == MAX_ZOOM
    view.set_zoom(0)
    assert view.zoom == MIN_ZOOM
    view.fit_rect(QRectF(0, 0, 4000, 1000))
    assert 0.1 < view.zoom < 0.25


def test_only_painted_visible_tiles_are_drawn(ws, qtbot):
    doc = ws.doc
    block = np.full((256, 256, 4), 255, np.uint8)
    for i in range(6):
        doc.paste(i * 256, 0, block)
    view = ws.view
    view.set_zoom(1.0)
    view.center_on(QPointF(128, 128))
    view.viewport().repaint()
    drawn_near = ws.scene.image_item.tiles_drawn
    assert 1 <= drawn_near <= 4  # a 800 px wide view sees at most 4 of the 6 tiles
    view.set_zoom(0.05)
    view.viewport().repaint()
    assert ws.scene.image_item.tiles_drawn == 1  # one pyramid tile covers them all
    image = view.grab().toImage()
    assert image.width() > 0


@pytest.mark.parametrize("zoom", [1.0, 0.25, 0.05])
def test_edits_replace_cached_pixmaps_at_every_zoom(ws, zoom):
    doc, view = ws.doc, ws.view
    doc.paste(0, 0, np.full((512, 512, 4), (255, 0, 0, 255), np.uint8))
    view.set_zoom(zoom)
    view.center_on(QPointF(256, 256))
    centre = view.mapFromScene(QPointF(256, 256))

    def colour():
        image = view.viewport().grab().toImage()
        c = image.pixelColor(centre)
        return (c.red(), c.green(), c.blue())

    assert colour() == (255, 0, 0)
    doc.paste(0, 0, np.full((512, 512, 4), (0, 0, 255, 255), np.uint8))
    assert colour() == (0, 0, 255)
    doc.undo()
    assert colour() == (255, 0, 0)

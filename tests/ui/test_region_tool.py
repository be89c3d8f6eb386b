"""Regions drawn and painted on the canvas as a person does: the Region tool's key and action, mouse
drags on the view's viewport, the frame panel, Undo/Redo through the window's actions, and what the
screen shows."""

from __future__ import annotations

import pytest
from helpers import make_window
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from canvas_app.ui.frame_item import REGION_COLORS

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    w.activateWindow()
    qtbot.waitActive(w)
    w.ws.view.center_on_point(128, 64)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def mouse_drag(qtbot, window, points, button=LEFT) -> None:
    """Press, move through and release at canvas points, as mouse events on the view's viewport."""
    view = window.ws.view
    vp = view.viewport()
    at = [view.mapFromScene(QPointF(*p)) for p in points]
    qtbot.mousePress(vp, button, pos=at[0])
    for p in at[1:]:
        qtbot.mouseMove(vp, pos=p)
    qtbot.mouseRelease(vp, button, pos=at[-1])


def key(qtbot, window, k, mods=Qt.KeyboardModifier.NoModifier) -> None:
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, k, mods)


def make_frame(qtbot, window) -> str:
    window.tool_actions["frame"].trigger()
    mouse_drag(qtbot, window, [(0, 0), (128, 64), (256, 128)])
    return window.ws.selected_frame_id


def regions(window):
    return window.ws.doc.frame(window.ws.selected_frame_id).regions


def screen_px(window, x: float, y: float) -> QColor:
    """The colour the view shows at canvas point (x, y)."""
    view = window.ws.view
    image = view.viewport().grab().toImage()
    p = view.mapFromScene(QPointF(x, y))
    return image.pixelColor(p.x(), p.y())


def tinted(c: QColor) -> bool:
    """The first region colour (orange) over the grey checkerboard: red well above blue."""
    return c.red() - c.blue() > 40


def test_region_tool_key_action_and_enabled_state(qtbot, window):
    action = window.tool_actions["region"]
    brush_action = window.tool_actions["region_brush"]
    assert action.shortcut().toString() == "R" and brush_action.shortcut().toString() == "Shift+R"
    # No frame: nothing to hold a region, so the tools are off and R does nothing.
    assert not action.isEnabled() and not brush_action.isEnabled()
    key(qtbot, window, Qt.Key.Key_R)
    assert window.ws.tool_name == "frame"

    make_frame(qtbot, window)
    assert action.isEnabled() and brush_action.isEnabled()
    key(qtbot, window, Qt.Key.Key_R)
    assert window.ws.tool_name == "region" and action.isChecked()
    key(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert window.ws.tool_name == "region_brush" and brush_action.isChecked()

    # Letters typed into a prompt field stay text (the region prompt: see the painting test).
    window.tool_actions["frame"].trigger()
    window.frame_panel.prompt.setFocus()
    qtbot.keyClicks(QApplication.focusWidget(), "rR")
    assert window.ws.tool_name == "frame" and window.frame_panel.prompt.toPlainText() == "rR"

    # The last frame deleted: the region tools turn off and hand over to the Frame tool.
    action.trigger()
    window.delete_frame()
    assert not action.isEnabled() and window.ws.tool_name == "frame"
    window.undo_action.trigger()
    assert action.isEnabled()


def test_draw_a_region_box_type_its_prompt_move_resize_undo(qtbot, window):
    make_frame(qtbot, window)
    window.tool_actions["region"].trigger()
    history = len(window.ws.doc.history)
    mouse_drag(qtbot, window, [(10, 20), (50, 60), (90, 101)])
    (region,) = regions(window)
    assert region.rect == (8, 16, 80, 88)  # corners snapped like a frame's, relative to the frame
    assert len(window.ws.doc.history) == history + 1 and window.undo_action.text() == "&Undo Add region"

    # Selected in the panel with its prompt focused: the artist types at once.
    panel = window.frame_panel.regions
    qtbot.waitUntil(lambda: panel.prompt.hasFocus())
    assert panel.current is not None and panel.current.id == region.id
    qtbot.keyClicks(QApplication.focusWidget(), "a red house")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    assert [r.prompt for r in regions(window)] == ["a red house"]

    # Drag the box to move it; drag its right edge to resize it. One undo step each.
    mouse_drag(qtbot, window, [(40, 60), (60, 60), (81, 63)])
    assert regions(window)[0].rect == (48, 16, 80, 88)
    assert window.undo_action.text() == "&Undo Move region"
    mouse_drag(qtbot, window, [(128, 60), (150, 60), (161, 60)])
    assert regions(window)[0].rect == (48, 16, 112, 88)
    assert window.undo_action.text() == "&Undo Resize region"
    qtbot.waitUntil(lambda: [s.value() for s in panel.box] == [48, 16, 112, 88])

    # A box dragged far right stays over the frame.
    mouse_drag(qtbot, window, [(100, 60), (400, 60)])
    assert regions(window)[0].rect == (144, 16, 112, 88)

    undo = window.undo_action
    for expected in ((48, 16, 112, 88), (48, 16, 80, 88), (8, 16, 80, 88)):
        undo.trigger()
        assert regions(window)[0].rect == expected
    undo.trigger()
    assert regions(window)[0].prompt == ""
    undo.trigger()
    assert regions(window) == ()
    qtbot.waitUntil(lambda: panel.list.count() == 0)
    window.redo_action.trigger()
    assert [r.rect for r in regions(window)] == [(8, 16, 80, 88)]

    # Outside every frame the tool does nothing but say why.
    mouse_drag(qtbot, window, [(300, 200), (380, 260)])
    assert len(regions(window)) == 1
    assert "inside a frame" in window.statusBar().currentMessage()


def test_paint_region_masks_show_them_and_undo(qtbot, window):
    make_frame(qtbot, window)
    window.ws.set_brush("mask", size=16, hardness=1.0)
    assert not tinted(screen_px(window, 190, 64))  # bare canvas

    # A box over the right half, then the Region brush paints its mask.
    window.tool_actions["region"].trigger()
    mouse_drag(qtbot, window, [(128, 0), (256, 128)])
    qtbot.keyClicks(QApplication.focusWidget(), "a yellow sun")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    key(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert window.ws.tool_name == "region_brush"
    mouse_drag(qtbot, window, [(150, 64), (200, 64), (230, 64)])
    (sun,) = regions(window)
    mask = sun.mask()
    assert mask is not None and mask.shape == (128, 128)  # stored 1:1 for a box this size
    assert mask[64, 190 - 128] == 255 and mask[110, 190 - 128] == 0
    assert window.undo_action.text() == "&Undo Paint region"

    # The screen shows the mask as a translucent overlay in the region's colour, not the rest.
    assert REGION_COLORS[0].red() - REGION_COLORS[0].blue() > 150
    qtbot.waitUntil(lambda: tinted(screen_px(window, 190, 64)))
    assert not tinted(screen_px(window, 190, 112)) and not tinted(screen_px(window, 60, 64))

    # While a stroke is under way the screen shows it already (and nothing is written yet).
    view = window.ws.view
    qtbot.mousePress(view.viewport(), LEFT, pos=view.mapFromScene(QPointF(150, 100)))
    qtbot.mouseMove(view.viewport(), pos=view.mapFromScene(QPointF(200, 100)))
    assert tinted(screen_px(window, 190, 100))
    assert regions(window)[0].mask()[100, 190 - 128] == 0
    qtbot.mouseRelease(view.viewport(), LEFT, pos=view.mapFromScene(QPointF(200, 100)))
    assert regions(window)[0].mask()[100, 190 - 128] == 255
    window.undo_action.trigger()

    # The right button erases, one step; undo brings the paint back.
    mouse_drag(qtbot, window, [(180, 64), (200, 64)], button=RIGHT)
    assert regions(window)[0].mask()[64, 190 - 128] == 0
    window.undo_action.trigger()
    assert regions(window)[0].mask()[64, 190 - 128] == 255
    window.undo_action.trigger()  # the whole first stroke: a plain box again
    assert regions(window)[0].mask_png == ""
    window.redo_action.trigger()
    assert regions(window)[0].mask()[64, 190 - 128] == 255

    # Hidden: not shown (and the brush will not paint into it).
    panel = window.frame_panel.regions
    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: not tinted(screen_px(window, 190, 64)))
    mouse_drag(qtbot, window, [(150, 30), (230, 30)])
    assert regions(window)[0].mask()[30, 150 - 128 + 20] == 0
    assert "hidden" in window.statusBar().currentMessage()
    panel.list.item(0).setCheckState(Qt.CheckState.Checked)

    # A click beside the regions selects none; the brush then paints a new region over the frame.
    window.tool_actions["region"].trigger()
    mouse_drag(qtbot, window, [(40, 40)])
    assert window.ws.selected_region_id == "" and panel.list.currentRow() == -1
    window.tool_actions["region_brush"].trigger()
    mouse_drag(qtbot, window, [(20, 100), (60, 100)])
    sun, grass = regions(window)
    assert grass.rect == (0, 0, 256, 128)
    painted = grass.mask()  # stored at most 128 px a side: half the frame's size
    assert painted.shape == (64, 128) and painted[50, 20] == 255 and painted[15, 20] == 0
    assert window.ws.selected_region_id == grass.id
    qtbot.waitUntil(lambda: panel.prompt.hasFocus())
    qtbot.keyClicks(QApplication.focusWidget(), "green grass")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    assert window.ws.tool_name == "region_brush"  # the "r"s typed picked no tool
    assert [r.prompt for r in regions(window)] == ["a yellow sun", "green grass"]
    # The new region covers the frame, but the Region tool grabs it only by its paint: a click on
    # the paint selects it, a drag beside the paint draws another box.
    window.tool_actions["region"].trigger()
    mouse_drag(qtbot, window, [(40, 40)])
    assert window.ws.selected_region_id == ""
    mouse_drag(qtbot, window, [(40, 100)])
    assert window.ws.selected_region_id == grass.id
    assert window.ws.tools["region"].handle_at(0, 0)[2] == ""  # no stretching a painting by its box
    mouse_drag(qtbot, window, [(64, 16), (112, 64)])
    assert [r.rect for r in regions(window)][2] == (64, 16, 48, 48)
    window.undo_action.trigger()
    # Its own colour, where it was painted.
    second = REGION_COLORS[1]
    qtbot.waitUntil(lambda: screen_px(window, 40, 100).green() > screen_px(window, 40, 30).green() + 20)
    assert second.green() > second.red()


def test_a_region_deleted_during_a_stroke_stays_deleted(qtbot, window):
    from canvas_app.ui.canvas_view import PointerEvent

    make_frame(qtbot, window)
    window.tool_actions["region"].trigger()
    mouse_drag(qtbot, window, [(0, 0), (128, 128)])
    (region,) = regions(window)
    window.tool_actions["region_brush"].trigger()
    stroke = window.ws.tools["region_brush"].press(PointerEvent(20, 20))
    next(stroke)
    stroke.send(PointerEvent(60, 60))
    window.ws.doc.remove_region(window.ws.selected_frame_id, region.id)
    stroke.close()
    assert regions(window) == ()

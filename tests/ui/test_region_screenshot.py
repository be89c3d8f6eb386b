"""A screenshot of the window with regions drawn and painted on the canvas by mouse, checked for the
overlays it must show. It stays in the test's temporary folder; ``CANVAS_APP_UPDATE_SCREENSHOT=1``
also writes docs/screenshots/regions.png (tests never write into the repository otherwise)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import make_window
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QApplication

from canvas_app.ui.frame_item import REGION_COLORS

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "regions.png"
UPDATE_SCREENSHOT_ENV = "CANVAS_APP_UPDATE_SCREENSHOT"


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    w.resize(1280, 800)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def landscape(w: int, h: int) -> np.ndarray:
    """Sky over rolling hills: something under the regions, as after a first generation."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * 0.62 + 18 * np.sin(x / w * 2 * np.pi * 1.3)
    sky = np.stack([120 + 60 * y / h, 170 + 50 * y / h, 235 + 0 * y], -1)
    hills = np.stack([60 + 0 * y, 140 - 40 * (y - horizon) / h, 60 + 0 * y], -1)
    rgb = np.where((y > horizon)[..., None], hills, sky)
    return np.dstack([np.clip(rgb, 0, 255), np.full((h, w), 255, np.float32)]).astype(np.uint8)


def drag(qtbot, window, points, steps: int = 1) -> None:
    view = window.ws.view
    vp = view.viewport()
    at = [view.mapFromScene(QPointF(*p)) for p in points]
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=at[0])
    for a, b in zip(at, at[1:], strict=False):
        for i in range(1, steps + 1):
            qtbot.mouseMove(vp, pos=a + (b - a) * (i / steps))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at[-1])


def type_prompt(qtbot, window, text: str) -> None:
    qtbot.waitUntil(lambda: window.frame_panel.regions.prompt.hasFocus())
    qtbot.keyClicks(QApplication.focusWidget(), text)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)


def test_regions_screenshot(qtbot, window, tmp_path):
    doc, view = window.ws.doc, window.ws.view
    doc.paste(0, 0, landscape(512, 384))
    view.fit_rect(QRectF(-40, -80, 592, 500), margin=0.0)
    window.tool_actions["frame"].trigger()
    drag(qtbot, window, [(0, 0), (256, 200), (512, 384)])
    window.frame_panel.prompt.setFocus()
    qtbot.keyClicks(QApplication.focusWidget(), "blue sky, green hills, watercolour")
    window.ws.view.setFocus()
    fid = window.ws.selected_frame_id
    qtbot.waitUntil(lambda: doc.frame(fid).prompt != "")  # the panel writes typed text on a short timer

    # A box drawn with the Region tool over the left third.
    qtbot.keyClick(view, Qt.Key.Key_R)
    drag(qtbot, window, [(16, 140), (100, 250), (168, 360)])
    type_prompt(qtbot, window, "a red house")
    # A click beside it (no region), then the Region brush paints a sun: a new masked region.
    view.setFocus()
    drag(qtbot, window, [(300, 300)])
    qtbot.keyClick(view, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    window.ws.set_brush("mask", size=44, hardness=0.8)
    spiral = [
        (390 + r * np.cos(a), 100 + r * np.sin(a))
        for r, a in zip(np.linspace(4, 38, 40), np.linspace(0, 5 * np.pi, 40), strict=True)
    ]
    drag(qtbot, window, spiral, steps=2)
    type_prompt(qtbot, window, "a yellow sun")
    house, sun = doc.frame(fid).regions
    assert house.mask_png == "" and sun.mask() is not None

    view.setFocus()
    qtbot.wait(50)
    shot = window.grab().toImage()

    # What it must show: the house box faintly in the first colour, the sun's mask in the second.
    def at(x, y):
        p = view.mapTo(window, view.mapFromScene(QPointF(x, y)))
        return shot.pixelColor(p.x(), p.y())

    bare, house_px, sun_px = at(250, 300), at(90, 300), at(390, 100)
    assert house_px.red() > bare.red() + 15  # orange over green hills
    first, second = REGION_COLORS[0], REGION_COLORS[1]
    assert first.red() > first.green() and second.green() > second.blue()
    assert sun_px.green() > at(470, 40).green() + 5  # green-tinted over the blue sky
    path = tmp_path / "regions.png"
    assert shot.save(str(path))
    if os.environ.get(UPDATE_SCREENSHOT_ENV) == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOT)

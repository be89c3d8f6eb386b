"""Drives the real app like an artist would, inside a real X server (run by test_app_e2e.py).

    python tests/e2e/drive_app.py MODEL SCREENSHOT PROJECT

Starts ``canvas_app.app.main``, then from a timer: picks the frame tool with its key, drags a frame
with mouse events on the canvas, types a prompt, presses Ctrl+Enter, waits for the result, accepts
it with Enter, stages a second (outpaint) frame, grabs the screen of the X server, saves the
project and quits. Prints "E2E_OK <json>" on success.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

MODEL, SHOT, PROJECT = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
FRAME = int(os.environ.get("E2E_FRAME", "128"))
STEPS = int(os.environ.get("E2E_STEPS", "6"))
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "1200"))
result: dict[str, object] = {}


def wait_until(app: QApplication, cond, timeout: float = TIMEOUT, what=lambda: "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for the app: {what()}")
        app.processEvents()
        time.sleep(0.01)


def mouse(widget, kind: QEvent.Type, pos: QPoint, buttons) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    ev = QMouseEvent(
        kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, ev)


def drag(widget, a: QPoint, b: QPoint) -> None:
    held = Qt.MouseButton.LeftButton
    mouse(widget, QEvent.Type.MouseButtonPress, a, held)
    for i in range(1, 11):
        p = a + (b - a) * (i / 10)
        mouse(widget, QEvent.Type.MouseMove, p, held)
    mouse(widget, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)


def generate_frame(app, window, x: int, y: int, prompt: str, batch: int = 1) -> str:
    """Draw a FRAME-sized frame with its top-left at (x, y), dragging from the bottom-right
    corner (so the press lands on empty canvas even when the frame overlaps another)."""
    view = window.ws.view
    QTest.keyClick(view, Qt.Key.Key_F)  # frame tool
    vp = view.viewport()
    before = set(window.ws.doc.frames)
    a = view.mapFromScene(QPointF(x + FRAME, y + FRAME))
    b = view.mapFromScene(QPointF(x, y))
    drag(vp, a, b)
    fid = window.ws.selected_frame_id
    assert fid and fid not in before, "drawing did not create a frame"
    panel = window.frame_panel
    panel.prompt.setFocus()
    QTest.keyClick(panel.prompt, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(panel.prompt, prompt)
    panel.steps.setValue(STEPS)
    panel.batch.setValue(batch)
    panel.seed_lock.setChecked(True)
    panel.seed.setValue(1234)
    panel.model.setCurrentIndex(max(0, panel.model.findData(MODEL)))
    panel._commit(model=MODEL)
    view.setFocus()
    t0 = time.perf_counter()
    QTest.keyClick(view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.gen.jobs, "Ctrl+Enter queued no generation"
    print(f"queued at {time.perf_counter() - t0:.1f}s", flush=True)

    def state() -> str:
        jobs = [(j.state.value, j.step, j.total, j.message) for j in window.gen.jobs.values()]
        return f"jobs {jobs}, engine {window.engine_label.text()!r}"

    wait_until(app, lambda: window.gen.active_jobs(fid) == [], what=state)
    print(f"finished at {time.perf_counter() - t0:.1f}s: {state()}", flush=True)
    staging = window.gen.staging.get(fid)
    if staging is None:
        failed = [j.message for j in window.gen.jobs.values() if j.message]
        raise RuntimeError(f"generation did not finish: {failed}")
    result.setdefault("seconds", []).append(round(time.perf_counter() - t0, 2))  # type: ignore[union-attr]
    return fid


def drive() -> None:
    app = QApplication.instance()
    try:
        from canvas_app.ui.main_window import MainWindow

        window = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
        window.resize(1440, 900)
        window.move(0, 0)
        wait_until(app, lambda: window.isVisible())
        # Xvfb runs no window manager: give the window the keyboard focus ourselves, or
        # window-wide shortcuts (Ctrl+Enter) have no active window to fire in.
        window.raise_()
        window.activateWindow()
        wait_until(app, window.isActiveWindow, timeout=20, what=lambda: "the window never became active")
        window.ws.view.set_zoom(float(os.environ.get("E2E_ZOOM", "3")))
        window.ws.view.center_on_point(FRAME * 0.75, FRAME * 0.7)
        first = generate_frame(
            app, window, 0, 0, "a red house on the left, a green tree on the right, blue sky, hills"
        )
        QTest.keyClick(window.ws.view, Qt.Key.Key_Return)  # accept
        assert window.ws.doc.patches, "accept wrote no patch"
        # Half over the accepted patch, half over empty canvas: an outpaint.
        second = generate_frame(app, window, FRAME // 2, FRAME // 4, "a green tree, hills, blue sky", batch=2)
        mode = window.gen.jobs[max(window.gen.jobs)].request.mode.value
        assert mode == "outpaint", mode
        result["second_mode"] = mode
        assert window.staging_bar.isVisible()
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        g = window.frameGeometry()
        shot = QGuiApplication.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height())
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        assert shot.save(str(SHOT)), "could not save the screenshot"
        window.io.dialogs.save_path = lambda *a: str(PROJECT)  # type: ignore[method-assign]
        assert window.io.save_as(), "save failed"
        result.update(frames=[first, second], platform=app.platformName(), patches=len(window.ws.doc.patches))
        window.close()
        print("E2E_OK " + json.dumps(result), flush=True)
    except Exception:
        traceback.print_exc()
        os._exit(3)


def main() -> int:
    _app = QApplication(sys.argv[:1])  # keep a reference: main() reuses this instance
    QTimer.singleShot(500, drive)
    from canvas_app.app import main as app_main

    return app_main(["--device", "cpu"])


if __name__ == "__main__":
    raise SystemExit(main())

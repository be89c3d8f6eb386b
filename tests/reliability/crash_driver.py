"""Runs the real app (``canvas_app.app.main``) for the crash tests in test_crash_recovery.py.

    python crash_driver.py paint             paint strokes with the mouse forever
    python crash_driver.py generate MODEL    paint, add a frame, generate a long run forever
    python crash_driver.py recover [MS]      start again, answer "yes" to recovery, report, quit
                                             (MS after start, default 200; 0: before the event
                                             loop runs, as on a slow start)

It prints one line per event, flushed, which the test reads:
    STROKE <n> <digest>      the document reached a new undoable state (a stroke ended, ...)
    AUTOSAVED <digest>       the recovery file now holds the document with this digest
    PAINTING                 a stroke is in progress (after at least two autosaves)
    GENERATING <step>        the engine reports progress on the frame
    ASKED <question>         the recovery question shown at start-up
    RECOVERED <digest> <modified> <title>
The caller kills the first two with SIGKILL; nothing here ever ends them cleanly.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).parent))
from digest import digest  # noqa: E402

from canvas_app.ui import document_io  # noqa: E402
from canvas_app.ui.settings import Settings  # noqa: E402

MODE = sys.argv[1]
state: dict = {"strokes": 0, "digests": {}, "saves": 0}


def say(*parts: object) -> None:
    print(*parts, flush=True)


def mouse(widget, kind: QEvent.Type, pos: QPoint, held: bool) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    buttons = Qt.MouseButton.LeftButton if held else Qt.MouseButton.NoButton
    ev = QMouseEvent(
        kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, ev)


def window():
    from canvas_app.ui.main_window import MainWindow

    return next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))


def autosaver(win):
    from canvas_app.ui.autosave import Autosaver

    return win.findChild(Autosaver)


class Painter:
    """Paints with real mouse events on the canvas: whole strokes, one move per timer tick."""

    def __init__(self, win, strokes_before_hold: int) -> None:
        self.win = win
        self.vp = win.ws.view.viewport()
        self.hold_after = strokes_before_hold
        self.stroke_step = 0
        win.ws.set_tool("brush")
        self.timer = QTimer(interval=15)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def point(self, n: int, i: int) -> QPoint:
        return QPoint(60 + 25 * (n % 12) + 3 * i, 60 + 30 * (n // 12) + (i % 7) * 4)

    def tick(self) -> None:
        n, i = state["strokes"], self.stroke_step
        if i == 0:
            mouse(self.vp, QEvent.Type.MouseButtonPress, self.point(n, 0), True)
        elif i < 12 or (n >= self.hold_after and state["saves"] >= 2):
            # From stroke ``hold_after`` on, once two autosaves are done, the stroke never ends.
            mouse(self.vp, QEvent.Type.MouseMove, self.point(n, i % 40), True)
            if i == 12:
                say("PAINTING")
        else:
            mouse(self.vp, QEvent.Type.MouseButtonRelease, self.point(n, i), False)
            state["strokes"] += 1
            self.stroke_step = 0
            return
        self.stroke_step += 1


def watch_autosaves(win) -> None:
    saver = autosaver(win)
    doc = win.ws.doc
    changes = {"n": 0}

    def changed() -> None:
        # Every undoable state the document passes through, with its digest.
        changes["n"] += 1
        state["digests"][doc.history.state] = d = digest(doc)
        say("STROKE", changes["n"], d)

    doc.events.history_changed.connect(changed)

    def saved(_path: str) -> None:
        state["saves"] += 1
        say("AUTOSAVED", state["digests"].get(saver._written_state, "?"))

    saver.saved.connect(saved)


def start_paint() -> None:
    win = window()
    watch_autosaves(win)
    state["painter"] = Painter(win, strokes_before_hold=3)


def start_generate(model: str) -> None:
    from canvas_app.core.frames import PromptFrame

    win = window()
    watch_autosaves(win)
    doc = win.ws.doc
    doc.stroke(win.ws.brush("paint"), [(10, 10), (200, 120)])
    frame = doc.add_frame(
        PromptFrame(x=0, y=0, w=64, h=64, prompt="a red house", steps=1000, model=model, seed=7)
    )
    win.ws.select_frame(frame.id)

    def progress(event) -> None:
        if state["saves"] >= 1:
            say("GENERATING", event.step)

    win.worker.progress.connect(progress)
    win.generate()


def start_recover() -> None:
    win = window()
    doc = win.ws.doc
    say("RECOVERED", digest(doc), doc.modified, win.windowTitle().replace(" ", "_"))
    win.close()  # answers "discard" below: a clean quit
    # The window may close before the event loop runs (slow start): quit from inside the loop.
    QTimer.singleShot(0, QApplication.quit)


def main() -> int:
    _app = QApplication(sys.argv[:1])  # before any timer: timers need the app's event loop
    settings = Settings()
    settings.set("autosave/interval_s", 0.3)
    settings.sync()
    if MODE == "recover":

        def ask_yes_no(_self, _title: str, text: str) -> bool:
            say("ASKED", text.replace("\n", " "))
            return True

        document_io.QtDialogs.ask_yes_no = ask_yes_no  # type: ignore[method-assign]
        # Offscreen nobody could answer, and the app would not ask: this script answers.
        from canvas_app import app as app_module

        app_module.can_ask_a_person = lambda: True  # type: ignore[attr-defined]
        document_io.QtDialogs.ask_save_changes = lambda _self, _name: "discard"  # type: ignore[method-assign]
        QTimer.singleShot(int(sys.argv[2]) if len(sys.argv) > 2 else 200, start_recover)
        argv = ["--no-engine-preload"]
    elif MODE == "paint":
        QTimer.singleShot(100, start_paint)
        argv = ["--no-engine-preload"]
    else:
        QTimer.singleShot(100, lambda: start_generate(sys.argv[2]))
        argv = ["--device", "cpu", "--no-engine-preload"]
    from canvas_app.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())

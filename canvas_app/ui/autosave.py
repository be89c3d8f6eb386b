"""Autosave and crash recovery for the window.

``Autosaver`` writes the open document to this session's recovery file (``core.recovery``) every
``autosave/interval_s`` seconds (setting, default 60) and shortly after each accepted patch. The
snapshot is taken on the GUI thread (cheap: tiles are shared copy-on-write); encoding and writing
happen on a Python worker thread, so the GUI never waits for the disk. A clean quit (the window's
accepted close) removes the recovery file, and no write in flight brings it back; after a crash,
``offer_recovery`` at the next start asks to bring it back, or keeps it for later when nobody can
answer (no screen, CI).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from canvas_app.core.document import Document, DocumentSnapshot
from canvas_app.core.project_file import ProjectError
from canvas_app.core.recovery import RecoveryStore
from canvas_app.ui.settings import Settings

INTERVAL_KEY = "autosave/interval_s"
DEFAULT_INTERVAL_S = 60.0
# After an accepted patch: wait this long so that a burst of accepts is written once.
AFTER_PATCH_MS = 500
# A clean quit waits this long at most for an autosave in flight (it is discarded either way).
STOP_WAIT_S = 2.0


class _Workspace(Protocol):
    doc: Document
    view: object
    document_replaced: object


class Autosaver(QObject):
    """See the module docstring. ``saved(path)`` and ``failed(message)`` arrive on the GUI thread."""

    saved = Signal(str)
    failed = Signal(str)
    _written = Signal(int, str)  # history state, error ("" when it worked); from the worker

    def __init__(
        self,
        ws: _Workspace,
        settings: Settings,
        store: RecoveryStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.ws = ws
        self.store = store or RecoveryStore()
        self.interval_s = max(0.0, settings.get(INTERVAL_KEY, DEFAULT_INTERVAL_S))
        self.writes = 0
        self._written_state: int | None = None  # history state now in the recovery file
        self._in_flight: threading.Thread | None = None
        self._again = False  # a save was asked for while one was being written
        self._deferred = False  # a save waits for the stroke in progress to end
        self._stopped = False
        self._bound: Document | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.autosave_now)
        self._soon = QTimer(self, singleShot=True, interval=AFTER_PATCH_MS)
        self._soon.timeout.connect(self.autosave_now)
        self._written.connect(self._on_written)
        ws.document_replaced.connect(self._bind)  # type: ignore[attr-defined]
        self._bind()

    def start(self) -> None:
        if self.interval_s > 0:
            self._timer.start(int(self.interval_s * 1000))

    def set_interval(self, seconds: float) -> None:
        """A new interval from Settings, in effect at once (0: off)."""
        self.interval_s = max(0.0, seconds)
        self._timer.stop()
        self.start()

    def _bind(self) -> None:
        if self._bound is not None:
            self._bound.events.patches_changed.disconnect(self._patch_accepted)
            self._bound.events.history_changed.disconnect(self._history_changed)
        self._bound = self.ws.doc
        self._bound.events.patches_changed.connect(self._patch_accepted)
        self._bound.events.history_changed.connect(self._history_changed)
        self._written_state = None
        self.autosave_now()  # a new or opened document: drop the old recovery file

    def _history_changed(self) -> None:
        if self._deferred:
            self.autosave_now()

    def _patch_accepted(self) -> None:
        if not self._stopped:
            self._soon.start()

    # -- saving ----------------------------------------------------------------------------------
    def autosave_now(self) -> bool:
        """Write the document if it changed since the last write; returns True when a write began.
        An unmodified document needs no recovery file: it is removed."""
        if self._stopped:
            return False
        if self._in_flight is not None:
            self._again = True
            return False
        doc = self.ws.doc
        if not doc.modified:
            if self._written_state is not None or self.store.exists():
                self.store.discard()
                self._written_state = None
            return False
        state = doc.history.state
        if state == self._written_state:
            return False
        if getattr(self.ws.view, "dragging", False):
            # Mid-stroke the pixels are no state the artist can undo to: save when it ends.
            self._deferred = True
            return False
        self._deferred = False
        snap = doc.snapshot()
        thread = threading.Thread(
            target=self._write, args=(snap, doc.path, state), name="canvas-autosave", daemon=True
        )
        self._in_flight = thread
        thread.start()
        return True

    def _write(self, snap: DocumentSnapshot, source: Path | None, state: int) -> None:
        """Runs on the autosave thread."""
        try:
            self.store.write(snap, source)
            error = ""
        except (OSError, ValueError) as exc:
            error = str(exc) or type(exc).__name__
        try:
            self._written.emit(state, error)
        except RuntimeError:
            pass  # the window (and this object) went while the write ran: nobody to tell

    def _on_written(self, state: int, error: str) -> None:
        thread, self._in_flight = self._in_flight, None
        if thread is not None:
            thread.join()
        if self._stopped:
            return  # the session ended cleanly; ``stop`` saw to the recovery file
        if error:
            self.failed.emit(f"Autosave failed: {error}")
        else:
            self.writes += 1
            self._written_state = state
            self.saved.emit(str(self.store.path))
        if self._again:
            self._again = False
            self.autosave_now()

    def wait(self, timeout_s: float = 30.0) -> None:
        """Block until the write in flight (if any) has ended and been reported (tests, quitting)."""
        thread = self._in_flight
        if thread is not None:
            thread.join(timeout_s)
        QCoreApplication.processEvents()

    def stop(self, discard: bool = True) -> None:
        """A clean end of the session: no more writes; the recovery file goes (unless ``discard``
        is False), and a write still in flight cannot bring it back (``RecoveryStore.close``).

        Waits at most ``STOP_WAIT_S`` for that write, so that it can tidy its temporary file; a
        write stuck on a slow disk does not hold the quit."""
        self._stopped = True
        self._timer.stop()
        self._soon.stop()
        if discard:
            self.store.close()
        thread = self._in_flight
        if thread is not None:
            thread.join(STOP_WAIT_S)


# -- start-up -------------------------------------------------------------------------------------
# Qt platforms that draw nowhere a person can see: a question there would wait forever.
NO_SCREEN_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl"})


def can_ask_a_person() -> bool:
    """Whether a question at start-up can be answered: not on a platform without a screen, nor on
    a CI machine (``CI`` set, as every CI service does), where nobody will ever click."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return QGuiApplication.platformName() not in NO_SCREEN_PLATFORMS


class _Dialogs(Protocol):
    def ask_yes_no(self, title: str, text: str) -> bool: ...


class _DocumentIO(Protocol):
    dialogs: _Dialogs
    error: object
    message: object
    path_changed: object


def offer_recovery(ws: _Workspace, io: _DocumentIO, store: RecoveryStore, can_ask: bool = True) -> bool:
    """Offer the newest recovery file a crashed session left; True when it was recovered.

    "No" removes it. A damaged one is reported and removed. Older ones wait for the next start.
    When nobody can answer (``can_ask`` False: no screen, CI) nothing is asked and nothing is
    lost: the file stays for the next start with a screen, and the start says so on stderr and
    in the status bar instead of waiting forever for an answer.
    """
    store.clean()
    orphans = store.orphans()
    if not orphans:
        return False
    info = orphans[0]
    if not can_ask:
        note = (
            f"Canvas did not close properly last time. Its autosaved copy ({info.describe()}) is "
            f"kept in {store.folder}; start Canvas with a screen to recover it."
        )
        print(f"canvas-app: {note}", file=sys.stderr, flush=True)
        io.message.emit(note)  # type: ignore[attr-defined]
        return False
    question = (
        f"Canvas did not close properly last time. Recover {info.describe()}?\n\n"
        "No discards the recovered copy."
    )
    if not io.dialogs.ask_yes_no("Recover unsaved work", question):
        store.remove(info)
        return False
    try:
        doc = store.load(info)
    except (ProjectError, OSError) as exc:
        io.error.emit(f"The recovery file could not be read: {exc}")  # type: ignore[attr-defined]
        store.remove(info)
        return False
    ws.set_document(doc)  # type: ignore[attr-defined]
    io.path_changed.emit()  # type: ignore[attr-defined]
    store.remove(info)  # from now on this session's own autosave holds it
    return True


def install_autosave(
    window: QObject, settings: Settings, store: RecoveryStore | None = None, can_ask: bool = True
) -> Autosaver:
    """Wire autosave and recovery into a ``MainWindow``: offer recovery (see ``offer_recovery``
    for ``can_ask``), start the timer, report failures in the window, and remove the recovery
    file on a clean quit."""
    ws, io = window.ws, window.io  # type: ignore[attr-defined]
    store = store or RecoveryStore()
    offer_recovery(ws, io, store, can_ask)
    saver = Autosaver(ws, settings, store, parent=window)
    saver.failed.connect(window.show_error)  # type: ignore[attr-defined]
    # The window's accepted close is the clean end, not the app's aboutToQuit: that one never
    # comes when the window closes before the event loop runs (a quick script, a slow start).
    window.closed.connect(saver.stop)  # type: ignore[attr-defined]
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(saver.stop)
    saver.start()  # binding the document already wrote a recovered one under this session
    return saver

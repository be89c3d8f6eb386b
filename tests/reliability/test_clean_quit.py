"""A clean quit leaves no recovery file, whatever the autosave thread is doing at that moment.

The autosave thread is held at a chosen point of its write (before it starts, or with the project
written and its sidecar not yet) and let go only after the clean close has removed the recovery
file: the worst order. Before the fix its write landed after the removal, and the next start
reported a crash that never happened.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import ScriptedDialogs, make_window
from PySide6.QtGui import QAction

from canvas_app.core import recovery
from canvas_app.core.document import DocumentSnapshot
from canvas_app.core.recovery import RecoveryStore
from canvas_app.ui.autosave import Autosaver, install_autosave

HOLD_S = 5.0  # how long a held write waits for the close before giving up (fails the test)


class HeldStore(RecoveryStore):
    """A store whose write waits, at ``where``, until this session's file has been discarded."""

    def __init__(self, folder: Path, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(folder)
        self.where = where
        self.entered = threading.Event()
        self.discarded = threading.Event()
        if where == "mid":
            real = recovery.save_snapshot

            def save_then_hold(snap: DocumentSnapshot, path: Path) -> None:
                real(snap, path)  # the project file is on disk, its sidecar not yet
                self._hold()

            monkeypatch.setattr(recovery, "save_snapshot", save_then_hold)

    def _hold(self) -> None:
        self.entered.set()
        self.discarded.wait(HOLD_S)

    def write(self, snap: DocumentSnapshot, source: Path | None) -> Path:
        if self.where == "before":
            self._hold()
        return super().write(snap, source)

    def discard(self) -> None:
        super().discard()
        self.discarded.set()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def action(window, text: str) -> QAction:
    return next(a for a in window.findChildren(QAction) if a.text() == text)


@pytest.mark.parametrize("where", ["before", "mid"])
def test_save_then_quit_while_autosave_is_writing_leaves_nothing(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    folder = tmp_path / "rec"
    store = HeldStore(folder, where, monkeypatch)
    window = make_window(qtbot, tmp_path)
    saver = install_autosave(window, window.settings, store)
    window.ws.doc.paste(0, 0, np.full((32, 32, 4), 200, np.uint8))
    assert saver.autosave_now()  # the write starts on its thread ...
    assert store.entered.wait(HOLD_S)  # ... and is held there
    writer = saver._in_flight
    assert writer is not None
    dialogs = window.io.dialogs
    assert isinstance(dialogs, ScriptedDialogs)
    dialogs.save_paths.append(str(tmp_path / "art.canvas"))
    action(window, "&Save").trigger()
    assert not window.ws.doc.modified
    action(window, "&Quit").trigger()  # no event loop runs between the save and the quit
    assert window.is_closed
    writer.join(HOLD_S + 5)
    assert not writer.is_alive()
    qtbot.wait(50)  # the write's report reaches the GUI thread
    assert leftovers(folder) == [], "a clean quit leaves no recovery file"
    assert not saver.autosave_now()  # and nothing writes one afterwards


def test_quit_with_unsaved_work_discarded_leaves_nothing(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "rec"
    store = HeldStore(folder, "mid", monkeypatch)
    window = make_window(qtbot, tmp_path)
    saver = install_autosave(window, window.settings, store)
    window.ws.doc.paste(0, 0, np.full((32, 32, 4), 90, np.uint8))
    assert saver.autosave_now() and store.entered.wait(HOLD_S)
    writer = saver._in_flight
    window.io.dialogs.save_answers.append("discard")  # type: ignore[attr-defined]
    action(window, "&Quit").trigger()
    assert window.is_closed
    assert writer is not None
    writer.join(HOLD_S + 5)
    qtbot.wait(50)
    assert leftovers(folder) == []


def test_store_closed_mid_write_removes_what_the_write_left(tmp_path: Path) -> None:
    """The store alone (no Qt): ``close`` wins over a write that ends after it."""
    from canvas_app.core.document import Document

    doc = Document()
    doc.paste(0, 0, np.full((16, 16, 4), 50, np.uint8))
    store = RecoveryStore(tmp_path / "rec")
    release = threading.Event()
    real = recovery.save_snapshot
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            store.write(doc.snapshot(), None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def held(snap: DocumentSnapshot, path: Path) -> None:
        real(snap, path)
        release.wait(HOLD_S)

    recovery.save_snapshot = held  # type: ignore[assignment]
    try:
        thread = threading.Thread(target=writer)
        thread.start()
        while not store.path.exists() and thread.is_alive():
            thread.join(0.01)
        store.close()
        release.set()
        thread.join(HOLD_S + 5)
    finally:
        recovery.save_snapshot = real
    assert errors == []
    assert leftovers(tmp_path / "rec") == []
    store.write(doc.snapshot(), None)  # a closed store writes nothing any more
    assert leftovers(tmp_path / "rec") == []


def test_autosaver_stopped_does_not_wait_for_a_stuck_write(qtbot, tmp_path: Path, monkeypatch) -> None:
    """A write stuck on a slow disk does not hold the quit: stop returns within its bound."""
    import time

    folder = tmp_path / "rec"
    store = HeldStore(folder, "before", monkeypatch)
    store.discard = RecoveryStore.discard.__get__(store)  # type: ignore[method-assign]  # never lets go
    window = make_window(qtbot, tmp_path)
    saver = Autosaver(window.ws, window.settings, store)
    window.ws.doc.paste(0, 0, np.full((8, 8, 4), 10, np.uint8))
    assert saver.autosave_now() and store.entered.wait(HOLD_S)
    t0 = time.perf_counter()
    saver.stop()
    assert time.perf_counter() - t0 < HOLD_S - 1
    writer = saver._in_flight
    if writer is not None:
        writer.join(HOLD_S + 5)
    assert leftovers(folder) == []


def test_each_test_has_its_own_app_folders(isolated_app_dirs: Path, tmp_path: Path) -> None:
    """tests/conftest.py: recovery files, settings and data of this test live in its own folder
    (a recovery file another test left can never open a dialog here)."""
    from canvas_app.core.recovery import recovery_dir
    from canvas_app.ui.settings import Settings

    assert recovery_dir() == isolated_app_dirs / "recovery"
    assert not recovery_dir().exists()
    assert Path(Settings().q.fileName()).is_relative_to(isolated_app_dirs / "config")
    assert list(tmp_path.iterdir()) == []  # and none of it in the test's own tmp_path

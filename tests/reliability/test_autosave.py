"""Autosave (``ui.autosave``) and recovery files (``core.recovery``): written off the GUI thread,
atomically, at the interval and after each accepted patch; removed when no longer needed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ScriptedDialogs, make_settings, make_window

from canvas_app.core.document import Document, DocumentSnapshot
from canvas_app.core.frames import Patch
from canvas_app.core.project_file import load_project, save_project
from canvas_app.core.recovery import RecoveryStore, recovery_dir
from canvas_app.ui.autosave import DEFAULT_INTERVAL_S, Autosaver, install_autosave, offer_recovery


class SlowStore(RecoveryStore):
    """Records the thread of each write and can hold or fail it."""

    def __init__(self, folder: Path, delay: float = 0.0, error: OSError | None = None) -> None:
        super().__init__(folder)
        self.delay, self.error = delay, error
        self.threads: list[str] = []

    def write(self, snap: DocumentSnapshot, source: Path | None) -> Path:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return super().write(snap, source)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def paint(doc: Document, value: int = 200, x: int = 0) -> None:
    doc.paste(x, 0, np.full((16, 16, 4), value, np.uint8))


def test_recovery_dir_is_under_user_data_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANVAS_APP_RECOVERY_DIR")
    import platformdirs

    assert recovery_dir() == platformdirs.user_data_path("canvas-app", "canvas-app") / "recovery"
    monkeypatch.setenv("CANVAS_APP_RECOVERY_DIR", "/some/where")
    assert recovery_dir() == Path("/some/where")


def test_store_writes_lists_loads_and_cleans(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    doc = Document()
    paint(doc)
    mine = RecoveryStore(folder)
    mine.write(doc.snapshot(), tmp_path / "art.canvas")
    assert mine.exists() and mine.orphans() == []  # this session is alive: not offered
    # A crashed session's file, plus debris: a temp file of a killed write, a lone sidecar, junk.
    crashed = RecoveryStore(folder, session=f"{dead_pid()}-x")
    crashed.write(doc.snapshot(), tmp_path / "art.canvas")
    meta = json.loads(crashed.sidecar.read_text())
    crashed.sidecar.write_text(json.dumps(dict(meta, pid=int(crashed.session.split("-")[0]))))
    old = time.time() - 3600
    for name in (".x.canvas.1234abcd.tmp", "lone.json", "junk.canvas"):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (old, old))
    [orphan] = mine.orphans()
    assert orphan.session == crashed.session and orphan.source == tmp_path / "art.canvas"
    assert "art.canvas, autosaved" in orphan.describe()
    recovered = mine.load(orphan)
    assert recovered.modified and recovered.path == tmp_path / "art.canvas"
    assert np.array_equal(recovered.image.read(0, 0, 16, 16), doc.image.read(0, 0, 16, 16))
    assert mine.clean() == 3
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [mine.path.name, mine.sidecar.name, crashed.path.name, crashed.sidecar.name]
    )
    assert mine.clean(max_age_s=-1) == 2  # an orphan past its age goes; ours stays
    mine.discard()
    assert list(folder.iterdir()) == []


def test_autosave_runs_off_the_gui_thread_without_blocking(qtbot, tmp_path: Path) -> None:
    window = make_window(qtbot, tmp_path)
    store = SlowStore(tmp_path / "rec", delay=0.5)
    saver = Autosaver(window.ws, window.settings, store)
    assert saver.interval_s == DEFAULT_INTERVAL_S  # the default: one minute
    paint(window.ws.doc)
    t0 = time.perf_counter()
    assert saver.autosave_now()
    assert time.perf_counter() - t0 < 0.2  # the GUI thread only took a snapshot
    paint(window.ws.doc, 90)  # edits go on while the write is in flight
    assert not saver.autosave_now()  # queued behind the write in flight
    with qtbot.waitSignals([saver.saved, saver.saved], timeout=10_000):
        pass
    assert store.threads == ["canvas-autosave", "canvas-autosave"]
    assert threading.current_thread() is threading.main_thread()
    saved = load_project(store.path)
    assert np.array_equal(saved.image.read(0, 0, 16, 16), window.ws.doc.image.read(0, 0, 16, 16))
    assert not saver.autosave_now()  # nothing changed since: no write


def test_interval_setting_and_accepted_patch_trigger_writes(qtbot, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.set("autosave/interval_s", 0.2)
    window = make_window(qtbot, tmp_path, settings=settings)
    store = RecoveryStore(tmp_path / "rec")
    saver = Autosaver(window.ws, settings, store)
    saver.start()
    paint(window.ws.doc)
    with qtbot.waitSignal(saver.saved, timeout=5000):
        pass  # from the timer
    # With a long interval, an accepted patch still gets written within a second.
    saver.stop(discard=False)
    saver2 = Autosaver(window.ws, make_settings(tmp_path / "other"), store)
    saver2.wait()  # its first write of the document as it is
    saver2.start()
    assert saver2.interval_s == DEFAULT_INTERVAL_S
    patch = Patch(x=0, y=0, w=8, h=8, frame_id="f", seed=1, request_json="{}")
    with qtbot.waitSignal(saver2.saved, timeout=5000):
        window.ws.doc.add_patch(patch, np.full((8, 8, 4), 77, np.uint8))
    assert [p.id for p in load_project(store.path).patches] == [patch.id]


def test_saving_the_project_removes_the_recovery_file(qtbot, tmp_path: Path) -> None:
    window = make_window(qtbot, tmp_path)
    store = RecoveryStore(tmp_path / "rec")
    saver = Autosaver(window.ws, window.settings, store)
    paint(window.ws.doc)
    with qtbot.waitSignal(saver.saved):
        saver.autosave_now()
    assert store.exists()
    save_project(window.ws.doc, tmp_path / "art.canvas")
    saver.autosave_now()
    assert not store.exists()


def test_failed_autosave_is_reported_in_the_window(qtbot, tmp_path: Path) -> None:
    window = make_window(qtbot, tmp_path)
    store = SlowStore(tmp_path / "rec", error=OSError(errno.ENOSPC, "No space left on device"))
    saver = install_autosave(window, window.settings, store)
    paint(window.ws.doc)
    with qtbot.waitSignal(saver.failed):
        saver.autosave_now()
    assert "Autosave failed" in window.banner.text and "No space left" in window.banner.text
    assert window.ws.doc.modified  # nothing claims the work is safe


def test_recovery_at_start_restores_document_and_source(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    doc = Document()
    paint(doc, 123)
    crashed = RecoveryStore(folder, session="1-crashed")
    crashed.write(doc.snapshot(), tmp_path / "art.canvas")
    meta = json.loads(crashed.sidecar.read_text())
    crashed.sidecar.write_text(json.dumps(dict(meta, pid=dead_pid())))
    window = make_window(qtbot, tmp_path)
    dialogs = window.io.dialogs
    assert isinstance(dialogs, ScriptedDialogs)
    dialogs.yes_no.append(True)
    store = RecoveryStore(folder)
    saver = install_autosave(window, window.settings, store)
    assert dialogs.asked == ["Recover unsaved work"]
    assert window.ws.doc.modified and window.ws.doc.path == tmp_path / "art.canvas"
    assert np.array_equal(window.ws.doc.image.read(0, 0, 16, 16), doc.image.read(0, 0, 16, 16))
    assert "art.canvas" in window.windowTitle()
    saver.wait()
    assert store.exists() and not crashed.exists()  # now held by this session's own file


def test_damaged_recovery_file_is_reported_and_removed(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    crashed = RecoveryStore(folder, session="1-crashed")
    folder.mkdir()
    crashed.path.write_bytes(b"PK\x03\x04 truncated")
    crashed.sidecar.write_text(json.dumps({"source": None, "saved_at": time.time(), "pid": dead_pid()}))
    window = make_window(qtbot, tmp_path)
    window.io.dialogs.yes_no.append(True)  # type: ignore[attr-defined]
    errors: list[str] = []
    window.io.error.connect(errors.append)
    assert offer_recovery(window.ws, window.io, RecoveryStore(folder)) is False
    assert errors and "recovery file could not be read" in errors[0]
    assert not window.ws.doc.modified and list(folder.iterdir()) == []

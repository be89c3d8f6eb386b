"""Saving over an existing project keeps it intact when the save fails: a full disk, permission
denied, or the process killed in the middle of the write. (tests/core/test_project_file.py covers
a failure inside the encoder and a disk that fills up part-way; these add the rest.)"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import make_window

from canvas_app.core import export
from canvas_app.core.document import Document
from canvas_app.core.project_file import load_project, save_project

ROOT = Path(__file__).resolve().parents[2]


def saved_document(path: Path) -> bytes:
    doc = Document()
    doc.paste(-300, 40, np.random.default_rng(1).integers(0, 256, (300, 700, 4), dtype=np.uint8))
    doc.add_frame(prompt="the old one")
    save_project(doc, path)
    return path.read_bytes()


def refuse_writes(monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    """Every file the save opens for writing fails with ``error`` (as the OS would)."""
    real_open = open

    def fake_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if "w" in mode:
            raise error
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(export, "open", fake_open, raising=False)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.EROFS, "Read-only file system"),
    ],
    ids=["disk full", "permission denied", "read-only"],
)
def test_failed_save_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    path = tmp_path / "art.canvas"
    original = saved_document(path)
    doc = load_project(path)
    doc.paste(0, 0, np.zeros((64, 64, 4), np.uint8) + 9)
    refuse_writes(monkeypatch, error)
    with pytest.raises(OSError) as info:
        save_project(doc, path)
    assert info.value.errno == error.errno
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["art.canvas"]
    assert doc.modified


def test_failed_rename_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The write worked, the rename over the old file is refused (e.g. a file locked on Windows).
    path = tmp_path / "art.canvas"
    original = saved_document(path)
    doc = load_project(path)
    doc.paste(0, 0, np.zeros((8, 8, 4), np.uint8) + 9)

    def refuse(*_args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(export.os, "replace", refuse)
    with pytest.raises(PermissionError):
        save_project(doc, path)
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["art.canvas"]


def test_save_failure_in_the_window_is_shown_and_nothing_is_marked_saved(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "art.canvas"
    original = saved_document(path)
    window = make_window(qtbot, tmp_path)
    assert window.io.open(str(path))
    window.ws.doc.paste(0, 0, np.zeros((8, 8, 4), np.uint8) + 9)
    refuse_writes(monkeypatch, PermissionError(errno.EACCES, "Permission denied"))
    assert window.io.save() is False
    assert "Could not save art.canvas" in window.banner.text and "Permission denied" in window.banner.text
    assert window.ws.doc.modified and window.isWindowModified()
    assert path.read_bytes() == original


KILLED_SAVE = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from canvas_app.core import project_file
    from canvas_app.core.project_file import load_project, save_project

    path = sys.argv[1]
    doc = load_project(path)
    doc.paste(0, 0, np.random.default_rng(2).integers(0, 256, (1024, 1024, 4), dtype=np.uint8))
    real = project_file._encode_tiles

    def encode_then_hang(tiles, level):
        out = real(tiles, level)
        print("MID-WRITE", flush=True)  # the archive is half written: the parent kills us here
        time.sleep(120)
        return out

    project_file._encode_tiles = encode_then_hang
    save_project(doc, path)
    print("SAVED", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_process_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "art.canvas"
    original = saved_document(path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "MID-WRITE"
    temp = [p for p in tmp_path.iterdir() if p.name != "art.canvas"]
    assert len(temp) == 1 and temp[0].stat().st_size > 0  # the new archive was being written aside
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert path.read_bytes() == original
    assert [f.prompt for f in load_project(path).frames.values()] == ["the old one"]

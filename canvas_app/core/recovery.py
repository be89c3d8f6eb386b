"""Recovery files: autosaved copies of open documents, kept beside the user's data.

Each running app session owns one recovery file, ``<session>.canvas`` (a normal project file)
with a sidecar ``<session>.json`` that says which project it belongs to, when it was written and
which process wrote it. A clean exit removes both; after a crash they stay, and the next start
lists them (``orphans``) and offers to recover them.

Qt-free. ``RecoveryStore.write`` may run on any thread (the autosaver calls it on a worker);
one store must not be written from two threads at once. ``close`` (a clean end of the session)
wins over a write still in flight: whatever that write puts on disk after ``close`` is removed
by the write itself, so a clean quit never leaves a recovery file behind.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from canvas_app.core.document import Document, DocumentSnapshot
from canvas_app.core.export import write_atomically
from canvas_app.core.project_file import EXTENSION, ProjectError, load_project, save_snapshot

APP_NAME = "canvas-app"
# Tests and portable installs point this at a folder of their own.
RECOVERY_DIR_ENV = "CANVAS_APP_RECOVERY_DIR"
SIDECAR = ".json"
RECOVERY_FORMAT = 1
# Orphans older than this are removed by ``clean`` without being offered.
MAX_AGE_S = 30 * 24 * 3600


def recovery_dir() -> Path:
    """The folder of recovery files: $CANVAS_APP_RECOVERY_DIR, else ``<user data dir>/recovery``."""
    override = os.environ.get(RECOVERY_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_data_path(APP_NAME, APP_NAME) / "recovery"


@dataclass(frozen=True)
class RecoveryInfo:
    """One recovery file on disk. ``source`` is the project it is a copy of (None: never saved)."""

    path: Path
    source: Path | None
    saved_at: float
    pid: int
    session: str

    @property
    def display_name(self) -> str:
        return self.source.name if self.source else "an unsaved document"

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved_at))
        return f"{self.display_name}, autosaved {when}"


class RecoveryStore:
    """The recovery file of this session (``write``/``discard``) and the others in the folder."""

    def __init__(self, folder: Path | None = None, session: str | None = None) -> None:
        self.folder = Path(folder) if folder is not None else recovery_dir()
        self.session = session or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # ``closed`` and the files it covers change together under this lock (see ``write``).
        self._lock = threading.Lock()
        self._closed = False

    @property
    def path(self) -> Path:
        return self.folder / f"{self.session}{EXTENSION}"

    @property
    def sidecar(self) -> Path:
        return self.folder / f"{self.session}{SIDECAR}"

    def write(self, snap: DocumentSnapshot, source: Path | None) -> Path:
        """Write ``snap`` atomically as this session's recovery file (any thread). Raises OSError.

        After ``close`` it writes nothing; when ``close`` comes while it writes, it removes what
        it wrote (each file appears by an atomic rename, so there is no half file to race with)."""
        if self._closed:
            return self.path
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            save_snapshot(snap, self.path)
            info = {
                "format": RECOVERY_FORMAT,
                "source": str(source) if source is not None else None,
                "saved_at": time.time(),
                "pid": os.getpid(),
            }
            data = json.dumps(info).encode("utf-8")
            write_atomically(self.sidecar, lambda fh: fh.write(data))
        finally:
            with self._lock:
                if self._closed:
                    self.discard()
        return self.path

    def exists(self) -> bool:
        return self.path.exists()

    def discard(self) -> None:
        """Remove this session's recovery file (the document is saved, closed or thrown away)."""
        _remove(self.path, self.sidecar)

    def close(self) -> None:
        """The session ended cleanly: remove its recovery file, and write none from now on, not
        even by a write already under way on another thread."""
        with self._lock:
            self._closed = True
            self.discard()

    # -- other sessions --------------------------------------------------------------------------
    def entries(self) -> list[RecoveryInfo]:
        """Every readable recovery entry in the folder, newest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for canvas in self.folder.glob(f"*{EXTENSION}"):
            info = _read_info(canvas)
            if info is not None:
                out.append(info)
        return sorted(out, key=lambda i: i.saved_at, reverse=True)

    def orphans(self) -> list[RecoveryInfo]:
        """Recovery files left by sessions that are no longer running (crashed), newest first."""
        return [
            i
            for i in self.entries()
            if i.session != self.session and not _process_alive(i.pid) and not _too_old(i)
        ]

    def load(self, info: RecoveryInfo) -> Document:
        """The recovered document: it belongs to ``info.source`` again and counts as modified, so
        that closing it asks to save. Raises ``ProjectError`` for a damaged recovery file."""
        doc = load_project(info.path)
        doc.path = info.source
        doc.mark_saved(state=-1)  # no history state is -1: the document reads as unsaved
        return doc

    def remove(self, info: RecoveryInfo) -> None:
        _remove(info.path, info.path.with_suffix(SIDECAR))

    def clean(self, max_age_s: float = MAX_AGE_S) -> int:
        """Remove what no session will use: temporary files of interrupted writes, sidecars without
        a project, projects without a sidecar, and orphans older than ``max_age_s``. Files of
        running sessions are left alone. Returns how many files went."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        now = time.time()
        for entry in self.folder.iterdir():
            if not entry.is_file():
                continue
            stale = False
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                # A write killed half-way; give a running writer a minute to finish it.
                stale = now - entry.stat().st_mtime > 60
            elif entry.suffix == SIDECAR:
                stale = not entry.with_suffix(EXTENSION).exists() and now - entry.stat().st_mtime > 60
            elif entry.suffix == EXTENSION:
                info = _read_info(entry)
                if info is None:
                    stale = now - entry.stat().st_mtime > 60
                elif info.session != self.session and not _process_alive(info.pid):
                    if now - info.saved_at > max_age_s:
                        _remove(entry.with_suffix(SIDECAR))
                        removed += 1
                        stale = True
            if stale:
                _remove(entry)
                removed += 1
        return removed


def _too_old(info: RecoveryInfo) -> bool:
    return time.time() - info.saved_at > MAX_AGE_S


def _read_info(canvas: Path) -> RecoveryInfo | None:
    """The sidecar of a recovery file, or None when it is missing or unreadable."""
    try:
        raw = json.loads(canvas.with_suffix(SIDECAR).read_text("utf-8"))
        source = raw.get("source")
        return RecoveryInfo(
            path=canvas,
            source=Path(source) if isinstance(source, str) and source else None,
            saved_at=float(raw["saved_at"]),
            pid=int(raw["pid"]),
            session=canvas.stem,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # a file we cannot delete is offered again next time; not worth failing for


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    # A killed child not yet reaped by its parent still answers signal 0 on Linux.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


__all__ = ["RecoveryInfo", "RecoveryStore", "ProjectError", "recovery_dir", "RECOVERY_DIR_ENV"]

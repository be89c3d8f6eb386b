"""Test-wide settings: no network, no screen, no user settings or recovery files touched.

Every test gets folders of its own for the app's recovery files, settings and data (``isolated_app_dirs``):
a file one test leaves (a killed app's recovery file, a setting) can never reach another test,
nor an app a test starts as a subprocess (it inherits the environment).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# For what runs outside a test function (collection, session fixtures): never the user's folder.
os.environ.setdefault("CANVAS_APP_RECOVERY_DIR", tempfile.mkdtemp(prefix="canvas-app-recovery-"))


@pytest.fixture(autouse=True)
def isolated_app_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app's recovery, settings and data folders at a fresh folder for this test.

    Not ``tmp_path`` itself: tests that list their ``tmp_path`` must not find these folders there.
    The cache folder stays (model caches are read-only inputs, and slow to rebuild)."""
    home = tmp_path_factory.mktemp("app-dirs")
    monkeypatch.setenv("CANVAS_APP_RECOVERY_DIR", str(home / "recovery"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    if "PySide6.QtCore" in sys.modules:
        # QSettings reads XDG_CONFIG_HOME once per process; tell it about this test's folder.
        from PySide6.QtCore import QSettings

        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "config"))
    return home


# -- tests write only to temporary folders ----------------------------------------------------------
# Tracked files a test could overwrite (pictures, models, data): any change during the run fails it.
# Source and prose files are left out, because a person may edit them while the suite runs.
ROOT = Path(__file__).resolve().parents[1]
EDITED_BY_PEOPLE = {".py", ".md", ".toml"}
_tracked: dict[str, tuple[int, int]] = {}


def _tracked_files() -> dict[str, tuple[int, int]]:
    try:
        names = (
            subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30)
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.SubprocessError):
        return {}  # not a git checkout (an unpacked sdist): nothing to compare against
    out = {}
    for name in filter(None, names):
        path = ROOT / name
        if path.suffix not in EDITED_BY_PEOPLE and path.is_file():
            st = path.stat()
            out[name] = (st.st_mtime_ns, st.st_size)
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    _tracked.update(_tracked_files())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _tracked or hasattr(session.config, "workerinput"):
        return
    now = _tracked_files()
    changed = sorted(n for n, stamp in _tracked.items() if now.get(n) != stamp)
    if changed:
        print(f"\nThe tests changed tracked files of the repository: {', '.join(changed)}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

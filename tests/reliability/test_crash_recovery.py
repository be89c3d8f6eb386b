"""Work survives a crash: a real app process is killed with SIGKILL in the middle of painting and
in the middle of a generation; the next start offers the autosaved copy and recovers it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

DRIVER = Path(__file__).with_name("crash_driver.py")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def app_env(tmp_path: Path, recovery: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HF_HUB_OFFLINE="1",
        CANVAS_APP_DEVICE="cpu",
        CANVAS_APP_RECOVERY_DIR=str(recovery),
        # QSettings and anything else per-user live in the test's folder.
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


class App:
    """The driver in a subprocess; ``lines`` collects what it printed (read on a thread, so that
    a hung app fails the test at its timeout instead of blocking it)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate, timeout: float) -> str:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        self.kill()
        raise AssertionError("the app did not get there; it printed:\n" + "\n".join(self.lines[-40:]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.finish(30)

    def finish(self, timeout: float) -> int:
        """Wait for the app to end by itself; returns its exit status."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._reader.join(30)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        return self.proc.returncode


def autosaved(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith("AUTOSAVED ")]


def strokes(lines: list[str]) -> list[str]:
    return [line.split()[2] for line in lines if line.startswith("STROKE ")]


def recover(env: dict[str, str], recovery: Path, *args: str) -> list[str]:
    """Start the app again; it must ask, recover, and on a clean quit leave no recovery file."""
    app = App(env, "recover", *args)
    line = app.wait_for(lambda s: s.startswith("RECOVERED"), 120)
    assert app.finish(60) == 0, app.lines
    assert any(s.startswith("ASKED Canvas did not close properly") for s in app.lines), app.lines
    assert list(recovery.glob("*.canvas")) == [], "a clean quit leaves no recovery file"
    return line.split()


def check_recovered(lines: list[str], recovered: list[str]) -> None:
    # The recovered document is the last autosave or a later stroke: nothing before it is lost,
    # and it is a whole state the artist saw (never a half-written file).
    saves = autosaved(lines)
    done = strokes(lines)
    assert saves and saves[-1] in done
    assert recovered[1] in done[done.index(saves[-1]) :], (recovered, lines)
    assert recovered[2] == "True"  # recovered work counts as unsaved
    assert recovered[3].startswith("Untitled")


def test_kill_mid_painting_then_recover(tmp_path: Path) -> None:
    recovery = tmp_path / "recovery"
    env = app_env(tmp_path, recovery)
    app = App(env, "paint")
    app.wait_for(lambda s: s == "PAINTING", 120)
    time.sleep(0.1)  # well inside the stroke
    app.kill()
    assert app.proc.returncode == -signal.SIGKILL
    assert len(autosaved(app.lines)) >= 2 and len(strokes(app.lines)) >= 3
    assert len(list(recovery.glob("*.canvas"))) == 1
    check_recovered(app.lines, recover(env, recovery))


def test_kill_mid_generation_then_recover(tmp_path: Path, tiny_sd: str) -> None:
    recovery = tmp_path / "recovery"
    env = app_env(tmp_path, recovery)
    app = App(env, "generate", tiny_sd)
    app.wait_for(lambda s: s.startswith("GENERATING"), 240)
    app.kill()
    assert app.proc.returncode == -signal.SIGKILL
    check_recovered(app.lines, recover(env, recovery))


def test_recover_and_quit_before_the_event_loop_runs_leaves_nothing(tmp_path: Path) -> None:
    """On a slow start the window can close before the app's event loop runs, so Qt never sends
    ``aboutToQuit``: the clean quit must still remove the recovery file the autosave writes."""
    recovery = tmp_path / "recovery"
    crashed = crashed_session_file(recovery)
    recovered = recover(app_env(tmp_path, recovery), recovery, "0")
    assert recovered[2] == "True" and not crashed.exists()
    assert list(recovery.iterdir()) == []  # no sidecar or temp file either


def crashed_session_file(recovery: Path) -> Path:
    """A recovery file as a killed session leaves it: its process is gone."""
    from canvas_app.core.document import Document
    from canvas_app.core.recovery import RecoveryStore

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = RecoveryStore(recovery, session=f"{dead.pid}-crashed")
    doc = Document()
    doc.paste(0, 0, np.full((8, 8, 4), 200, np.uint8))
    crashed.write(doc.snapshot(), None)
    # The sidecar says which process wrote it: pretend the dead one did.
    meta = json.loads(crashed.sidecar.read_text())
    crashed.sidecar.write_text(json.dumps(dict(meta, pid=dead.pid)))
    return crashed.path


def test_declining_recovery_discards_it(tmp_path: Path) -> None:
    from canvas_app.core.recovery import RecoveryStore
    from canvas_app.ui.autosave import offer_recovery

    recovery = tmp_path / "recovery"
    crashed = crashed_session_file(recovery)
    store = RecoveryStore(recovery)
    assert [o.session for o in store.orphans()] == [crashed.stem]

    class No:
        asked: list[str] = []

        def ask_yes_no(self, title: str, text: str) -> bool:
            self.asked.append(text)
            return False

    class IO:
        dialogs = No()

    assert offer_recovery(None, IO(), store) is False  # type: ignore[arg-type]
    assert "an unsaved document" in No.asked[0]
    assert store.orphans() == [] and list(recovery.iterdir()) == []

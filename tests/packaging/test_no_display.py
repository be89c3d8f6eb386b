"""On a Linux machine without a display the app says what is wrong and exits cleanly, instead of
Qt's abort (exit 134) with a hint about platform plugins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from canvas_app.app import EXIT_NO_DISPLAY, display_problem


def test_a_display_or_an_explicit_platform_is_enough() -> None:
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")
def test_starting_without_a_display_says_so_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run(
        [sys.executable, "-m", "canvas_app", "--quit-after-show", "--no-engine-preload"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_NO_DISPLAY == 2, done.stderr
    assert done.stderr.startswith("canvas-app: error: no display") and "DISPLAY" in done.stderr
    assert "plugin" not in done.stderr and done.stdout == ""

"""The guard keeps long painting sessions alive despite the bindings' refcount bug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QApplication
app = QApplication([])
from canvas_app.ui import refcount_guard
refcount_guard.install()
image, pixmap = QImage(64, 64, QImage.Format.Format_ARGB32_Premultiplied), QPixmap(16, 16)
painter = QPainter(image)
for _ in range(int(sys.argv[1])):
    painter.drawPixmap(0, 0, pixmap)
painter.end()
print("ALIVE")
"""


def test_many_void_calls_do_not_abort_the_interpreter():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # More calls than None has references in a fresh interpreter: without the guard this aborts
    # wherever the bindings have the bug.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "150000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-500:]
    assert "ALIVE" in out.stdout

"""The composition root: builds the document, the engine worker and the window, and runs Qt.

Torch is imported only inside the engine factory, which runs in the worker thread after the window
is on screen.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from canvas_app.engine.api import Engine
from canvas_app.ui import refcount_guard
from canvas_app.ui.autosave import install_autosave
from canvas_app.ui.main_window import MainWindow
from canvas_app.ui.settings import Settings
from canvas_app.workers.engine_worker import EngineWorker

ENGINE_START_DELAY_MS = 300


def make_engine_factory(device: str | None, preview_interval_s: float):  # type: ignore[no-untyped-def]
    """A factory the worker thread calls: the only place the GUI process pulls in torch."""

    def factory() -> Engine:
        from canvas_app.engine.local import EngineSettings, LocalDiffusersEngine

        return LocalDiffusersEngine(
            EngineSettings(device=device or None, preview_interval_s=preview_interval_s)
        )

    return factory


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="canvas-app", description="Infinite canvas for diffusion models")
    p.add_argument("project", nargs="?", help="a .canvas project to open")
    p.add_argument(
        "--device",
        help="cpu, cuda, mps, optionally :fp16/:bf16/:fp32 (default: from settings, else the best available)",
    )
    p.add_argument("--no-engine-preload", action="store_true", help="start the engine only on the first run")
    p.add_argument(
        "--report-startup", action="store_true", help="print start-up time and whether torch is loaded"
    )
    p.add_argument("--quit-after-show", action="store_true", help="exit once the window is shown (tests)")
    return p.parse_args(list(argv) if argv is not None else None)


def _app_icon() -> QIcon:
    try:
        from canvas_app.resources import icon_path

        path = icon_path(256)
        return QIcon(str(path)) if path.is_file() else QIcon()
    except (ImportError, FileNotFoundError):
        return QIcon()


def main(argv: Sequence[str] | None = None) -> int:
    t0 = time.perf_counter()
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    refcount_guard.install()
    app.setApplicationName("canvas-app")
    app.setOrganizationName("canvas-app")
    app.setApplicationDisplayName("Canvas")
    app.setWindowIcon(_app_icon())
    settings = Settings()
    device = args.device or settings.get("engine/device", "")
    preview = settings.get("engine/preview_interval_s", 0.1)
    if args.device:
        settings.set("engine/device", args.device)
    worker = EngineWorker(make_engine_factory(device, preview))
    window = MainWindow(worker, settings)
    # Quit when the main window closes, even if some other top-level window (a tool tip, a
    # menu) still counts as open for Qt's last-window-closed rule.
    window.closed.connect(app.quit)
    if args.project:
        window.io.open(str(Path(args.project)))
    install_autosave(window, settings)  # offers to recover a crashed session's work
    window.show()
    app.processEvents()
    if args.report_startup:
        shown = time.perf_counter() - t0
        print(
            f"window shown after {shown * 1000:.0f} ms; torch imported: {'torch' in sys.modules}", flush=True
        )
    if args.quit_after_show:
        window.close()
        return 0
    if window.is_closed:  # closed while starting up (a script or a test drove it): no loop to run
        return 0
    if not args.no_engine_preload:
        # Build the engine (and import torch) in its thread once the window is up.
        QTimer.singleShot(ENGINE_START_DELAY_MS, worker.start)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())

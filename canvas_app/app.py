"""The composition root: builds the document, the engine worker and the window, and runs Qt.

Torch is imported only inside the engine factory, which runs in the worker thread after the window
is on screen.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from canvas_app.engine.api import Engine
from canvas_app.ui import refcount_guard
from canvas_app.ui.autosave import can_ask_a_person, install_autosave
from canvas_app.ui.main_window import MainWindow
from canvas_app.ui.settings import DEVICE_KEY, Settings
from canvas_app.workers.engine_worker import EngineWorker

ENGINE_START_DELAY_MS = 300


def make_engine_factory(
    device: str | None, preview_interval_s: float, url: str = "", token: str = "", compile: bool = False
) -> Callable[[], Engine]:
    """A factory the worker thread calls: the only place the GUI process pulls in torch. With
    ``url``, the engine is a server's (canvas-app serve) and torch is never imported."""

    def factory() -> Engine:
        if url:
            from canvas_app.engine.remote import RemoteEngine

            return RemoteEngine(url, token)
        from canvas_app.engine.local import EngineSettings, LocalDiffusersEngine

        settings = EngineSettings(device=device or None, preview_interval_s=preview_interval_s)
        # The setting turns compiling on; CANVAS_APP_COMPILE=1 (EngineSettings' default) also does.
        return LocalDiffusersEngine(replace(settings, compile=True) if compile else settings)

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


EXIT_NO_DISPLAY = 2


def display_problem(environ: Mapping[str, str], platform: str) -> str | None:
    """Why the window cannot be shown, or None. On Linux Qt needs an X or Wayland display (or an
    explicit QT_QPA_PLATFORM); without one it aborts with a hint about plugins that misleads."""
    if not platform.startswith("linux"):
        return None
    if environ.get("QT_QPA_PLATFORM") or environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display to show the window on (neither DISPLAY nor WAYLAND_DISPLAY is set). Start it from "
        "a desktop session, with ssh -X, or under a virtual X server (xvfb-run canvas-app); "
        "'canvas-app generate' works without a display"
    )


def main(argv: Sequence[str] | None = None) -> int:
    t0 = time.perf_counter()
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if QApplication.instance() is None:
        problem = display_problem(os.environ, sys.platform)
        if problem:
            print(f"canvas-app: error: {problem}", file=sys.stderr)
            return EXIT_NO_DISPLAY
    app = QApplication.instance() or QApplication(sys.argv[:1])
    refcount_guard.install()
    app.setApplicationName("canvas-app")
    app.setOrganizationName("canvas-app")
    app.setApplicationDisplayName("Canvas")
    app.setWindowIcon(_app_icon())
    settings = Settings()
    if args.device:
        settings.set(DEVICE_KEY, args.device)
    engine = settings.engine()
    worker = EngineWorker(
        make_engine_factory(engine.device, engine.preview_s, engine.url, engine.token, compile=engine.compile)
    )
    window = MainWindow(worker, settings, engine_factory=make_engine_factory)
    # Quit when the main window closes, even if some other top-level window (a tool tip, a
    # menu) still counts as open for Qt's last-window-closed rule.
    window.closed.connect(app.quit)
    if args.project:
        window.io.open(str(Path(args.project)))
    # Offers to recover a crashed session's work; with no one to answer (no screen, CI) it keeps
    # that work for a later start and says so, instead of waiting forever on a dialog.
    window.autosaver = install_autosave(window, settings, can_ask=can_ask_a_person())
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

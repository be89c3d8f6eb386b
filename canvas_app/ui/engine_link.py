"""The window's link to its engine: which engine runs (this computer's device, or an engine server
through the RemoteEngine that the factory maker builds for a URL), put into effect from Settings at
once; the models a server offers; the status bar's engine label and busy bar.

It never imports torch or the engine: app.py hands in the factory maker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QProgressBar

from canvas_app.ui.server_models import ServerModels
from canvas_app.workers.engine_worker import EngineFactory

if TYPE_CHECKING:
    from canvas_app.ui.main_window import MainWindow

# (device, preview interval) -> factory; with an engine server also url= and token= keywords.
EngineFactoryMaker = Callable[..., EngineFactory]


class EngineLink(QObject):
    def __init__(self, window: MainWindow, engine_factory: EngineFactoryMaker | None) -> None:
        super().__init__(window)
        self.window_ = window
        # Builds an engine factory for (device, preview interval): lets Settings switch at once.
        self.engine_factory = engine_factory
        self.label = QLabel("Engine: not started")
        self.load_bar = QProgressBar(maximumWidth=120, textVisible=False)
        self.load_bar.setRange(0, 0)  # busy indicator while a model loads
        self.load_bar.hide()
        self._key = self.wanted()
        self.server_models = ServerModels(window)
        worker = window.worker
        worker.engine_ready.connect(lambda dev: self.label.setText(f"Engine: {dev}"))
        worker.engine_error.connect(window.show_error)
        worker.engine_error.connect(lambda _m: self.label.setText("Engine: unavailable"))
        worker.task_started.connect(self._task_started)
        worker.task_done.connect(self._task_done)

    def wanted(self) -> tuple[str, str, str, bool]:
        """(device, server URL, token, compile) from the settings: which engine should run."""
        return self.window_.settings.engine().engine_key

    def apply_settings(self) -> None:
        """Put the engine (this computer's device or a server), and the preview rate, into effect now."""
        window = self.window_
        choice = window.settings.engine()
        device, url, token, compile_unet = wanted = choice.engine_key
        preview = choice.preview_s
        if self.engine_factory is None:
            window.statusBar().showMessage("The engine settings apply at the next start.", 6000)
            return
        if wanted != self._key:
            self._key = wanted
            self.label.setText("Engine: starting…")
            if url:
                factory, label = (
                    self.engine_factory(device, preview, url=url, token=token),
                    f"Connecting to {url}",
                )
            else:
                # compile only when on: a factory maker need not know the option otherwise
                factory = self.engine_factory(device, preview, **({"compile": True} if compile_unet else {}))
                label = f"Switching to {device or 'the best device'}"
            window.worker.replace_engine(factory, label)
        else:
            # Same device: keep the loaded models, change only how often previews come.
            def set_rate(engine: object) -> None:
                if hasattr(engine, "settings"):
                    engine.settings = replace(engine.settings, preview_interval_s=preview)

            window.worker.submit_call(set_rate, "Preview rate")

    def _task_started(self, _task_id: int, label: str) -> None:
        self.load_bar.show()
        self.window_.statusBar().showMessage(f"{label}…")

    def _task_done(self, _task_id: int, label: str, error: str) -> None:
        self.load_bar.hide()
        if error:
            self.window_.show_error(f"{label} failed: {error}")
        else:
            self.window_.statusBar().showMessage(f"{label}: ready", 5000)

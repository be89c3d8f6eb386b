"""The model picker with an engine server: the server's models (GET /models), listed once its
engine is ready, with their native sizes for new frames; back to this computer's models when the
engine is local again. The list is fetched in the engine thread (a network call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from canvas_app.ui.model_picker import ModelEntry, native_size
from canvas_app.ui.settings import ENGINE_URL_KEY

if TYPE_CHECKING:
    from canvas_app.ui.main_window import MainWindow


class ServerModels(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.sizes: dict[str, int] = {}  # server model name -> native size
        self._task: int | None = None
        self._fetched: list[Any] = []
        window.worker.engine_ready.connect(self._engine_ready)
        window.worker.task_done.connect(self._task_done)

    def native_size(self, model: str) -> int:
        """The side of a new frame for ``model``: the server's word for its models."""
        return self.sizes.get(model) or native_size(model)

    def _engine_ready(self, _device: str) -> None:
        if not self.window_.settings.get(ENGINE_URL_KEY, ""):
            if self.sizes:  # back on this computer
                self.sizes = {}
                self.window_.refresh_models()
            return
        fetched: list[Any] = []
        self._fetched = fetched

        def fetch(engine: Any) -> None:
            fetched.extend(engine.models())

        self._task = self.window_.worker.submit_call(fetch, "Listing the server's models")

    def _task_done(self, task_id: int, _label: str, error: str) -> None:
        if task_id != self._task or error:
            return  # an error shows in the banner already (the window's own task_done)
        self._task = None
        self.sizes = {m.name: m.native_size for m in self._fetched}
        self.window_.frame_panel.set_models([ModelEntry(m.label, m.name, "server") for m in self._fetched])

"""The worker thread that owns the engine; QtCore only, no torch at import."""

from canvas_app.workers.engine_worker import EngineFactory, EngineWorker

__all__ = ["EngineFactory", "EngineWorker"]

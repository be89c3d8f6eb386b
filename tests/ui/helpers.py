"""Shared pieces of the UI tests: a window on the fake engine, scripted dialogs, pointer drags."""

from __future__ import annotations

from pathlib import Path

from fake_engine import FakeEngine
from PySide6.QtCore import QSettings

from canvas_app.ui.canvas_view import PointerEvent
from canvas_app.ui.main_window import MainWindow
from canvas_app.ui.settings import Settings
from canvas_app.workers import EngineWorker


class ScriptedDialogs:
    """Answers the window's questions from lists, and records what was asked."""

    def __init__(self) -> None:
        self.open_paths: list[str] = []
        self.save_paths: list[str] = []
        self.save_answers: list[str] = []
        self.yes_no: list[bool] = []
        self.asked: list[str] = []

    def open_path(self, title: str, filter: str) -> str:
        self.asked.append(title)
        return self.open_paths.pop(0) if self.open_paths else ""

    def save_path(self, title: str, filter: str, suggested: str) -> str:
        self.asked.append(title)
        return self.save_paths.pop(0) if self.save_paths else ""

    def ask_save_changes(self, name: str) -> str:
        self.asked.append(f"save changes to {name}")
        return self.save_answers.pop(0) if self.save_answers else "cancel"

    def ask_yes_no(self, title: str, text: str) -> bool:
        self.asked.append(title)
        return self.yes_no.pop(0) if self.yes_no else False


def make_settings(folder: Path) -> Settings:
    return Settings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))


def make_window(qtbot, tmp_path: Path, engine=None, settings: Settings | None = None) -> MainWindow:
    engine = engine or FakeEngine(step_delay=0.01)
    worker = EngineWorker(lambda: engine)
    worker.engine = engine
    window = MainWindow(worker, settings or make_settings(tmp_path), dialogs=ScriptedDialogs())
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def active_window(qtbot, tmp_path: Path):
    """For fixtures: the main window, active (keys go to it); closed at the end with its unsaved
    changes discarded."""
    window = make_window(qtbot, tmp_path)
    window.activateWindow()
    qtbot.waitActive(window)
    yield window
    window.io.dialogs.save_answers = ["discard"] * 5
    window.close()


def drag(window: MainWindow, tool: str, points, button: str = "left") -> None:
    """Drive a tool with pointer events in canvas pixels (as the view would)."""
    window.ws.set_tool(tool)
    gen = window.ws.tools[tool].press(PointerEvent(*points[0], button=button))
    if gen is None:
        return
    next(gen)
    for p in points[1:]:
        gen.send(PointerEvent(*p, button=button))
    gen.close()

"""File actions of the window: new, open, save, save as, recent files, export, unsaved-changes prompt.

Dialogs go through ``self.dialogs`` so that tests can answer them without a person.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from canvas_app.core.document import Document
from canvas_app.core.image_metadata import export_text
from canvas_app.core.project_file import EXTENSION, export_ora, export_png, load_project, save_project
from canvas_app.ui.settings import Settings
from canvas_app.ui.workspace import Workspace

PROJECT_FILTER = f"Canvas project (*{EXTENSION})"


class Dialogs(Protocol):
    def open_path(self, title: str, filter: str) -> str: ...
    def save_path(self, title: str, filter: str, suggested: str) -> str: ...
    def ask_save_changes(self, name: str) -> str: ...  # "save" | "discard" | "cancel"
    def ask_yes_no(self, title: str, text: str) -> bool: ...


class QtDialogs:
    """The real dialogs."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def open_path(self, title: str, filter: str) -> str:
        return QFileDialog.getOpenFileName(self.parent, title, "", filter)[0]

    def save_path(self, title: str, filter: str, suggested: str) -> str:
        return QFileDialog.getSaveFileName(self.parent, title, suggested, filter)[0]

    def ask_save_changes(self, name: str) -> str:
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self.parent,
            "Unsaved changes",
            f"Save the changes to {name} before closing it?",
            buttons.Save | buttons.Discard | buttons.Cancel,
            buttons.Save,
        )
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def ask_yes_no(self, title: str, text: str) -> bool:
        buttons = QMessageBox.StandardButton
        return QMessageBox.question(self.parent, title, text, buttons.Yes | buttons.No) == buttons.Yes


class DocumentIO(QObject):
    """Owns the document's file: which path, whether it is saved, and the recent list."""

    error = Signal(str)
    message = Signal(str)
    recent_changed = Signal(list)
    path_changed = Signal()

    def __init__(self, ws: Workspace, settings: Settings, dialogs: Dialogs) -> None:
        super().__init__()
        self.ws = ws
        self.settings = settings
        self.dialogs = dialogs

    @property
    def doc(self) -> Document:
        return self.ws.doc

    def display_name(self) -> str:
        return self.doc.path.name if self.doc.path else "Untitled"

    # -- closing the current document ------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask about unsaved changes; True when it is fine to drop the current document."""
        if not self.doc.modified:
            return True
        answer = self.dialogs.ask_save_changes(self.display_name())
        if answer == "save":
            return self.save()
        return answer == "discard"

    # -- commands --------------------------------------------------------------------------------
    def new(self) -> bool:
        if not self.maybe_save():
            return False
        self.ws.set_document(Document())  # its view: 100 % at the origin
        self.path_changed.emit()
        return True

    def open(self, path: str | None = None) -> bool:
        if path is None:
            path = self.dialogs.open_path("Open project", PROJECT_FILTER)
            if not path:
                return False
        if not self.maybe_save():
            return False
        try:
            doc = load_project(path)
        except (OSError, ValueError) as exc:
            self.error.emit(f"Could not open {Path(path).name}: {exc}")
            return False
        doc.mark_saved(Path(path))
        self.ws.set_document(doc)  # shows the saved view and active frame
        self.recent_changed.emit(self.settings.add_recent(str(Path(path).resolve())))
        self.path_changed.emit()
        self.message.emit(f"Opened {Path(path).name}")
        return True

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self._save_to(self.doc.path)

    def save_as(self) -> bool:
        suggested = str(self.doc.path or Path.home() / f"Untitled{EXTENSION}")
        path = self.dialogs.save_path("Save project as", PROJECT_FILTER, suggested)
        if not path:
            return False
        if not path.endswith(EXTENSION):
            path += EXTENSION
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        state = self.doc.history.state
        try:
            save_project(self.doc, path)
        except (OSError, ValueError) as exc:
            self.error.emit(f"Could not save {path.name}: {exc}")
            return False
        self.doc.mark_saved(path, state)
        self.recent_changed.emit(self.settings.add_recent(str(path.resolve())))
        self.path_changed.emit()
        self.message.emit(f"Saved {path.name}")
        return True

    def export_png(self, selection_only: bool = False) -> bool:
        frame_id = None
        if selection_only:
            frame = self.doc.frames.get(self.ws.selected_frame_id)
            if frame is None:
                self.error.emit("Select a frame to export just that part.")
                return False
            rect, frame_id = frame.rect, frame.id
        else:
            rect = self.doc.image.bounds()
        if rect is None:
            self.error.emit("Nothing to export: the canvas is empty.")
            return False
        path = self.dialogs.save_path("Export PNG", "PNG image (*.png)", self._suggest(".png"))
        if not path:
            return False
        try:
            # The settings of the latest generation in the exported area travel with the image.
            export_png(self.doc, path, rect, export_text(self.doc, rect, frame_id))
        except (OSError, ValueError) as exc:
            self.error.emit(f"Could not export {Path(path).name}: {exc}")
            return False
        self.message.emit(f"Exported {Path(path).name}")
        return True

    def export_ora(self) -> bool:
        if self.doc.image.bounds() is None:
            self.error.emit("Nothing to export: the canvas is empty.")
            return False
        path = self.dialogs.save_path("Export OpenRaster", "OpenRaster (*.ora)", self._suggest(".ora"))
        if not path:
            return False
        try:
            export_ora(self.doc, path)
        except (OSError, ValueError) as exc:
            self.error.emit(f"Could not export {Path(path).name}: {exc}")
            return False
        self.message.emit(f"Exported {Path(path).name}")
        return True

    def _suggest(self, suffix: str) -> str:
        base = self.doc.path.with_suffix(suffix) if self.doc.path else Path.home() / f"Untitled{suffix}"
        return str(base)

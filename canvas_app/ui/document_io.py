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
from canvas_app.core.openraster import OpenRasterError, OpenRasterImage, read_openraster
from canvas_app.core.project_file import (
    EXTENSION,
    OpenRasterNotProjectError,
    export_ora,
    export_png,
    load_project,
    save_project,
)
from canvas_app.ui.settings import Settings
from canvas_app.ui.workspace import Workspace

PROJECT_FILTER = f"Canvas project (*{EXTENSION})"
OPEN_FILTER = (
    f"Canvas project or OpenRaster image (*{EXTENSION} *.ora);;{PROJECT_FILTER};;"
    "OpenRaster image from Krita, GIMP, MyPaint (*.ora)"
)


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
        """Open a project, or import an OpenRaster image (``.ora``) as a new, unsaved document."""
        if path is None:
            path = self.dialogs.open_path("Open project", OPEN_FILTER)
            if not path:
                return False
        if not self.maybe_save():
            return False
        if Path(path).suffix.lower() == ".ora":
            return self._import_openraster(path)
        try:
            doc = load_project(path)
        except OpenRasterNotProjectError:
            return self._import_openraster(path)  # an .ora under another name
        except (OSError, ValueError) as exc:
            self.error.emit(f"Could not open {Path(path).name}: {exc}")
            return False
        doc.mark_saved(Path(path))
        self.ws.set_document(doc)  # shows the saved view and active frame
        self.recent_changed.emit(self.settings.add_recent(str(Path(path).resolve())))
        self.path_changed.emit()
        if doc.load_notices:
            extra = f" (and {len(doc.load_notices) - 1} more)" if len(doc.load_notices) > 1 else ""
            self.error.emit(f"Opened {Path(path).name}, with repairs: {doc.load_notices[0]}{extra}")
        else:
            self.message.emit(f"Opened {Path(path).name}")
        return True

    def read_openraster(self, path: str) -> OpenRasterImage | None:
        """The composited layers of an ``.ora`` file, or None after reporting why not."""
        try:
            return read_openraster(path, Path(path).name)
        except (OSError, OpenRasterError) as exc:
            self.error.emit(f"Could not import {Path(path).name}: {exc}")
            return None

    def _import_openraster(self, path: str) -> bool:
        """The composited layers become the image of a new document at (0, 0); it has no file
        yet, so Save asks where to write the project and the .ora is never overwritten."""
        name = Path(path).name
        image = self.read_openraster(path)
        if image is None:
            return False
        doc = Document()
        doc.paste(0, 0, image.pixels, label=f"Import {name}")
        self.ws.set_document(doc)
        h, w = image.pixels.shape[:2]
        self.ws.view.set_zoom(1.0)
        self.ws.view.center_on_point(w / 2, h / 2)
        self.path_changed.emit()
        notes = "; ".join(image.notes[:3]) + ("; …" if len(image.notes) > 3 else "")
        self.message.emit(
            f"Imported {name}: {image.layers} layers, {w}x{h}" + (f" ({notes})" if notes else "")
        )
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

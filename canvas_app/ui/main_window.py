"""The main window: canvas, side panel, tool bar, menus, status bar; it wires the parts together.

It never imports torch: the engine lives behind the :class:`EngineWorker` handed in.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QImage
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from canvas_app.core.brush import BrushSettings
from canvas_app.core.document import Document
from canvas_app.core.frames import PromptFrame, snap
from canvas_app.core.image_metadata import MetadataError, read_settings
from canvas_app.core.request import BUILTIN_MODEL
from canvas_app.ui import refcount_guard
from canvas_app.ui.autosave import Autosaver
from canvas_app.ui.brush_panel import BrushPanel
from canvas_app.ui.document_io import Dialogs, DocumentIO, QtDialogs
from canvas_app.ui.engine_link import EngineFactoryMaker, EngineLink
from canvas_app.ui.error_banner import ErrorBanner
from canvas_app.ui.frame_panel import FramePanel
from canvas_app.ui.image_import import IMAGE_SUFFIXES, ImportError_, PlaceTool, load_image_file, restore_frame
from canvas_app.ui.jobs import GenerationController
from canvas_app.ui.model_picker import list_models
from canvas_app.ui.qimage import qimage_to_array
from canvas_app.ui.region_tool import bind_region_actions
from canvas_app.ui.seam_marks import SeamHint, SeamMarks
from canvas_app.ui.settings import MODEL_KEY, Settings
from canvas_app.ui.settings_dialog import SettingsDialog
from canvas_app.ui.shortcuts_dialog import ShortcutsDialog, shortcut_rows
from canvas_app.ui.staging import PatchList, StagingBar
from canvas_app.ui.tools import install_tools
from canvas_app.ui.upscale_actions import bind_upscale_actions
from canvas_app.ui.window_menus import build_actions
from canvas_app.ui.workspace import Workspace
from canvas_app.workers.engine_worker import EngineWorker

APP_TITLE = "Canvas"


class MainWindow(QMainWindow):
    closed = Signal()  # the window accepted a close: the app should quit

    def __init__(
        self,
        worker: EngineWorker,
        settings: Settings | None = None,
        doc: Document | None = None,
        dialogs: Dialogs | None = None,
        engine_factory: EngineFactoryMaker | None = None,
    ) -> None:
        super().__init__()
        refcount_guard.install()  # before the first paint: see refcount_guard's docstring
        self.settings = settings or Settings()
        self.worker = worker
        self.autosaver: Autosaver | None = None  # set by install_autosave's caller
        self.ws = Workspace(doc)
        install_tools(self.ws)
        self.place_tool = PlaceTool(self.ws)
        self.ws.tools["place"] = self.place_tool
        self.gen = GenerationController(self.ws, worker)
        self.seams = SeamMarks(self.ws, self.gen)
        self.io = DocumentIO(self.ws, self.settings, dialogs or QtDialogs(self))
        self._closing = False
        self.is_closed = False
        # The mode shown for the selected frame follows edits, at most every 120 ms.
        self._mode_timer = QTimer(self, singleShot=True, interval=120)

        # 1. Central area: error banner over the canvas view.
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.banner = ErrorBanner()
        column.addWidget(self.banner)
        column.addWidget(self.ws.view, 1)
        self.setCentralWidget(central)
        self.staging_bar = StagingBar(self.ws, self.gen)

        # 2. Side panel.
        self.frame_panel = FramePanel(self.ws, self.gen)
        self.brush_panel = BrushPanel(self.ws)
        self.patch_list = PatchList(self.ws)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.frame_panel)
        side_layout.addWidget(self.patch_list)
        side_layout.addWidget(self.brush_panel)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        self.dock = QDockWidget("Frame", self, objectName="side_panel")
        self.dock.setWidget(scroll)
        self.dock.setMinimumWidth(320)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        # 3. Status bar.
        self.zoom_label = QLabel("100%")
        self.pos_label = QLabel("")
        # Which engine runs (device or server), its label and busy bar: engine_link.py.
        self.engine_link = EngineLink(self, engine_factory)
        self.engine_label, self.server_models = self.engine_link.label, self.engine_link.server_models
        sb = self.statusBar()
        sb.addPermanentWidget(self.engine_link.load_bar)
        sb.addPermanentWidget(self.engine_label)
        sb.addPermanentWidget(self.pos_label)
        sb.addPermanentWidget(self.zoom_label)

        build_actions(self)
        self._connect()
        self._load_settings()
        self.refresh_models()
        self._update_title()
        self.resize(1400, 900)

    def _connect(self) -> None:
        ws, gen, io = self.ws, self.gen, self.io
        ws.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        ws.view.cursor_moved.connect(lambda x, y: self.pos_label.setText(f"{int(x // 1)}, {int(y // 1)}"))
        ws.view.files_dropped.connect(self.import_files)
        ws.view.image_dropped.connect(lambda img, x, y: self.import_qimage(img, QPointF(x, y)))
        ws.tool_changed.connect(self._tool_changed)
        ws.document_replaced.connect(self._document_replaced)
        gen.error.connect(self.show_error)
        gen.busy_changed.connect(lambda busy: busy and self.statusBar().showMessage("Generating…"))
        gen.outcome.connect(lambda text: self.statusBar().showMessage(text, 3000))
        io.error.connect(self.show_error)
        io.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        io.recent_changed.connect(self._fill_recent)
        io.path_changed.connect(self._update_title)
        self.frame_panel.generate_button.clicked.connect(self.generate)
        self.frame_panel.cancel_button.clicked.connect(lambda: self.gen.cancel())
        self.frame_panel.model.activated.connect(
            lambda _i: self.load_model(self.frame_panel.model.currentData())
        )
        self.frame_panel.accept_requested.connect(self.accept_candidate)
        self.ws.tools["frame"].new_frame_settings = self.frame_panel.new_frame_settings
        self.frame_panel.add_model_file.connect(self.add_model_file)
        self.frame_panel.add_model_folder.connect(self.add_model_folder)
        self.patch_list.reroll_requested.connect(self.reroll)
        self.ws.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        bind_region_actions(self.ws, self.tool_actions)
        self.seams.changed.connect(lambda: self.repair_seam_action.setEnabled(self.seams.can_repair()))
        self.seam_hint = SeamHint(self.seams, self.repair_seam_action, self.statusBar())
        bind_upscale_actions(self.ws, self.gen, self.patch_list, self.show_error)
        self._mode_timer.timeout.connect(self.frame_panel.refresh_mode)
        self._bind_document()

    def _bind_document(self) -> None:
        ev = self.ws.doc.events
        ev.modified_changed.connect(lambda _m: self._update_title())
        ev.history_changed.connect(self._update_undo)
        for event in (ev.pixels_changed, ev.mask_changed, ev.frames_changed):
            event.connect(lambda *_a: self._mode_timer.start())
        self._update_undo()

    # -- settings --------------------------------------------------------------------------------
    def _load_settings(self) -> None:
        s = self.settings
        geometry = s.get("window/geometry", b"")
        if geometry:
            self.restoreGeometry(geometry)
        state = s.get("window/state", b"")
        if state:
            self.restoreState(state)
        for family in self.ws.brushes:
            current = asdict(self.ws.brushes[family])
            try:
                self.ws.brushes[family] = BrushSettings(
                    size=s.get(f"brush/{family}/size", float(current["size"])),
                    hardness=s.get(f"brush/{family}/hardness", float(current["hardness"])),
                    opacity=s.get(f"brush/{family}/opacity", float(current["opacity"])),
                )
            except ValueError:
                pass  # a damaged value: keep the default brush
        self.frame_panel.set_default_model(s.get(MODEL_KEY, BUILTIN_MODEL))
        self.grid_action.setChecked(s.get("view/grid", True))
        self._fill_recent(self.settings.recent_files())

    def save_settings(self) -> None:
        s = self.settings
        s.set("window/geometry", self.saveGeometry())
        s.set("window/state", self.saveState())
        for family, b in self.ws.brushes.items():
            s.set(f"brush/{family}/size", b.size)
            s.set(f"brush/{family}/hardness", b.hardness)
            s.set(f"brush/{family}/opacity", b.opacity)
        s.set("view/grid", self.grid_action.isChecked())
        s.sync()

    # -- slots -----------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self.banner.show_message(message)
        self.statusBar().showMessage(message, 8000)

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.io.display_name()}[*] — {APP_TITLE}")
        self.setWindowModified(self.ws.doc.modified)

    def _update_undo(self) -> None:
        h = self.ws.doc.history
        self.undo_action.setEnabled(h.can_undo)
        self.redo_action.setEnabled(h.can_redo)
        self.undo_action.setText(f"&Undo {h.undo_label}" if h.undo_label else "&Undo")
        self.redo_action.setText(f"&Redo {h.redo_label}" if h.redo_label else "&Redo")

    def _document_replaced(self) -> None:
        self._bind_document()
        self.frame_panel.refresh()
        self._update_title()

    def _tool_changed(self, name: str) -> None:
        action = self.tool_actions.get(name)
        if action is not None:
            action.setChecked(True)

    def _set_grid(self, on: bool) -> None:
        self.ws.view.show_grid = on
        self.ws.view.viewport().update()

    def _fill_recent(self, paths: list) -> None:
        self.recent_menu.clear()
        for path in paths:
            self.recent_menu.addAction(path, lambda p=path: self.io.open(p))
        self.recent_menu.setEnabled(bool(paths))

    def undo(self) -> None:
        self.frame_panel.commit_text()
        self.ws.doc.undo()

    def redo(self) -> None:
        self.ws.doc.redo()

    def fit_to_content(self) -> None:
        self.ws.view.fit_rect(self.ws.scene.content_rect())

    def delete_frame(self) -> None:
        frame_id = self.ws.selected_frame_id
        if frame_id and frame_id in self.ws.doc.frames:
            self.gen.cancel(frame_id)
            self.gen.discard(frame_id)
            self.ws.doc.remove_frame(frame_id)

    # -- generation ------------------------------------------------------------------------------
    def generate(self) -> int | None:
        """Ctrl+Enter: run the selected frame; with none selected, make one in the middle of the view
        at the model's native size, with the panel's settings. Focus goes to the canvas, so that
        Enter accepts the result and arrows step through candidates."""
        self.frame_panel.commit_text()
        frame_id = self.ws.selected_frame_id
        if not frame_id or frame_id not in self.ws.doc.frames:
            settings = self.frame_panel.new_frame_settings()
            size = self.server_models.native_size(str(settings["model"]))
            c = self.ws.view.visible_scene_rect().center()
            frame = self.ws.doc.add_frame(
                PromptFrame(x=snap(c.x() - size / 2), y=snap(c.y() - size / 2), w=size, h=size, **settings)  # type: ignore[arg-type]
            )
            self.ws.select_frame(frame.id)
            frame_id = frame.id
        self.ws.view.setFocus(Qt.FocusReason.OtherFocusReason)
        try:
            rid = self.gen.generate(frame_id)
        except (ValueError, RuntimeError) as exc:
            self.show_error(f"Cannot generate: {exc}")
            return None
        if not self.ws.doc.frame(frame_id).prompt.strip():
            self.statusBar().showMessage("Empty prompt: generating a random scene.", 6000)
        return rid

    def upscale(self, scale: int) -> int | None:
        """Generate > Upscale x2/x4: the selected frame's pixels, upscaled and refined, staged on the
        frame grown to match."""
        self.frame_panel.commit_text()
        frame_id = self.ws.selected_frame_id
        if not frame_id or frame_id not in self.ws.doc.frames:
            self.show_error("Cannot upscale: select a frame first")
            return None
        self.ws.view.setFocus(Qt.FocusReason.OtherFocusReason)
        try:
            return self.gen.upscale(frame_id, scale)
        except (ValueError, RuntimeError) as exc:
            self.show_error(f"Cannot upscale: {exc}")
            return None

    def repair_seam(self) -> int | None:
        """Generate > Repair Seam: re-inpaint a thin band along the selected frame's flagged seam."""
        self.ws.view.setFocus(Qt.FocusReason.OtherFocusReason)
        try:
            return self.seams.repair()
        except (ValueError, RuntimeError) as exc:
            self.show_error(f"Cannot repair the seam: {exc}")
            return None

    def generate_more(self) -> None:
        if self.ws.selected_frame_id:
            self.gen.generate_more(self.ws.selected_frame_id)

    def escape(self) -> None:
        """Esc: drop a floating image, else cancel the selected frame's run (or any run)."""
        if self.place_tool.floating is not None:
            self.place_tool.cancel()
            return
        if not self.gen.cancel(self.ws.selected_frame_id or None):
            self.gen.cancel()

    def accept_candidate(self) -> None:
        if self.place_tool.floating is not None:
            self.place_tool.commit()
            return
        if self.ws.selected_frame_id:
            self.gen.accept(self.ws.selected_frame_id)

    def discard_candidates(self) -> None:
        if self.ws.selected_frame_id:
            self.gen.discard(self.ws.selected_frame_id)

    def _step(self, delta: int) -> None:
        if self.ws.selected_frame_id:
            self.gen.step_candidate(self.ws.selected_frame_id, delta)

    def reroll(self, patch_id: str, edited_prompt: bool) -> None:
        patch = next((p for p in self.ws.doc.patches if p.id == patch_id), None)
        if patch is None:
            return
        prompt = negative = None
        frame = self.ws.doc.frames.get(patch.frame_id)
        if edited_prompt and frame is not None:
            self.frame_panel.commit_text()
            frame = self.ws.doc.frame(frame.id)
            prompt, negative = frame.prompt, frame.negative_prompt
        try:
            self.gen.reroll_patch(patch, prompt, negative)
        except (ValueError, RuntimeError) as exc:
            self.show_error(f"Cannot re-roll: {exc}")

    # -- models ----------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        self.frame_panel.set_models(list_models(self.settings.added_models()))

    def load_model(self, model: str | None) -> None:
        """Load the model in the engine thread so the first run with it starts at once."""
        if not model:
            return
        self.settings.set(MODEL_KEY, model)
        self.frame_panel.set_default_model(model)
        load = type(self.worker).submit_call
        load(self.worker, lambda engine: engine.load(model), f"Loading {Path(model).name}")

    def add_model_file(self) -> None:
        path = QFileDialog.getOpenFileName(self, "Add model file", "", "Checkpoints (*.safetensors)")[0]
        if path:
            self.add_model(path)

    def add_model_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add diffusers model folder")
        if path:
            self.add_model(path)

    def add_model(self, path: str) -> None:
        self.settings.add_model(path)
        self.refresh_models()
        self.frame_panel._select_model(path)
        self.frame_panel._commit(model=path)
        self.load_model(path)

    # -- settings and help dialogs ----------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self, shortcut_rows(self, {"Tools": list(self.tool_actions.values())}))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # -- images in -------------------------------------------------------------------------------
    def import_files(self, paths: list, x: float, y: float) -> None:
        for path in paths:
            suffix = Path(path).suffix.lower()
            if suffix == ".canvas":
                self.io.open(path)
                return
            if suffix == ".ora":  # OpenRaster layers, composited, float like any dropped image
                layers = self.io.read_openraster(path)
                if layers is not None:
                    self.place_tool.begin(layers.pixels, QPointF(x, y))
                continue
            if suffix not in IMAGE_SUFFIXES:
                self.show_error(f"{Path(path).name} is not an image or a project this app can open.")
                continue
            try:
                pixels, meta = load_image_file(path)
            except ImportError_ as exc:
                self.show_error(str(exc))
                continue
            self.place_tool.begin(pixels, QPointF(x, y), meta)
            self._offer_metadata(meta, pixels.shape[1], pixels.shape[0])

    def import_qimage(self, image: QImage, center: QPointF | None = None) -> None:
        if image.isNull():
            self.show_error("The clipboard image could not be read.")
            return
        if center is None:
            center = self.ws.view.visible_scene_rect().center()
        self.place_tool.begin(qimage_to_array(image, 4), center)

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self.import_qimage(QImage(mime.imageData()))
        elif mime is not None and mime.hasUrls():
            c = self.ws.view.visible_scene_rect().center()
            self.import_files([u.toLocalFile() for u in mime.urls() if u.isLocalFile()], c.x(), c.y())
        else:
            self.statusBar().showMessage("The clipboard holds no image.", 4000)

    def _offer_metadata(self, meta: dict, w: int, h: int) -> None:
        try:
            settings = read_settings(meta)
        except MetadataError as exc:
            self.show_error(f"The image's generation settings were not restored: {exc}.")
            return
        if settings is None:
            return
        text = (
            f"This image carries generation settings:\n\n{settings.summary()}\n\nRestore them into a frame?"
        )
        if not self.io.dialogs.ask_yes_no("Restore settings", text):
            return
        floating = self.place_tool.floating
        pos = floating.pos() if floating is not None else QPointF(0, 0)
        models = [(e.label, e.model) for e in list_models(self.settings.added_models())]
        fallback = str(self.frame_panel.new_frame_settings().get("model", BUILTIN_MODEL))
        try:
            frame, notices = restore_frame(settings, (int(pos.x()), int(pos.y())), (w, h), models, fallback)
            self.ws.doc.add_frame(frame)
        except (TypeError, ValueError) as exc:
            self.show_error(f"The image's settings could not be restored: {exc}")
            return
        self.ws.select_frame(frame.id)
        if notices:
            self.show_error("Settings restored, except: " + "; ".join(notices) + ".")

    # -- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.frame_panel.commit_text()
        if not self.io.maybe_save():
            event.ignore()
            return
        self._closing = True
        self.gen.shutdown()
        self.save_settings()
        self.worker.shutdown(15000)
        event.accept()
        self.is_closed = True
        self.closed.emit()

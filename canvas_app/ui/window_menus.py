"""The main window's menus, shortcuts and tool bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox, QToolBar

if TYPE_CHECKING:
    from canvas_app.ui.main_window import MainWindow

# Keys without a modifier act on the canvas only, so text fields keep Enter, Backspace, arrows, ...
CANVAS_ONLY_KEYS = ("Return", "Enter", "Backspace", "Left", "Right", "Del", "+", "-", "=", "0", "1", "[", "]")


def make_action(
    window: MainWindow, text: str, slot, shortcut: str | QKeySequence | list | None = None, **kw
) -> QAction:  # type: ignore[no-untyped-def]
    action = QAction(text, window)
    if shortcut is not None:
        if isinstance(shortcut, list):
            action.setShortcuts(shortcut)
        else:
            action.setShortcut(QKeySequence(shortcut))
    if kw.get("checkable"):
        action.setCheckable(True)
        action.toggled.connect(slot)
    else:
        action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)
    return action


def build_actions(window: MainWindow) -> None:
    """Menus, shortcuts and the tool bar of the main window."""
    KS = QKeySequence.StandardKey
    menu = window.menuBar()
    file = menu.addMenu("&File")
    file.addAction(make_action(window, "&New", window.io.new, KS.New))
    file.addAction(make_action(window, "&Open…", lambda: window.io.open(), KS.Open))
    window.recent_menu = file.addMenu("Open &Recent")
    file.addAction(make_action(window, "&Save", window.io.save, KS.Save))
    file.addAction(make_action(window, "Save &As…", window.io.save_as, KS.SaveAs))
    file.addSeparator()
    file.addAction(make_action(window, "Export PNG…", lambda: window.io.export_png(False), "Ctrl+E"))
    file.addAction(
        make_action(
            window, "Export Selected Frame as PNG…", lambda: window.io.export_png(True), "Ctrl+Shift+E"
        )
    )
    file.addAction(make_action(window, "Export OpenRaster…", window.io.export_ora))
    file.addSeparator()
    file.addAction(make_action(window, "&Quit", window.close, KS.Quit))

    edit = menu.addMenu("&Edit")
    window.undo_action = make_action(window, "&Undo", window.undo, KS.Undo)
    window.redo_action = make_action(
        window, "&Redo", window.redo, [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")]
    )
    edit.addAction(window.undo_action)
    edit.addAction(window.redo_action)
    edit.addSeparator()
    edit.addAction(make_action(window, "&Paste Image", window.paste, KS.Paste))
    edit.addAction(make_action(window, "Delete Frame", window.delete_frame, KS.Delete))
    edit.addAction(make_action(window, "Clear Mask", lambda: window.ws.doc.clear_mask(), "Ctrl+Shift+M"))
    edit.addSeparator()
    edit.addAction(make_action(window, "Smaller Brush", lambda: window.ws.scale_brush(1 / 1.2), "["))
    edit.addAction(make_action(window, "Larger Brush", lambda: window.ws.scale_brush(1.2), "]"))
    edit.addSeparator()
    window.settings_action = make_action(window, "Se&ttings…", window.show_settings, "Ctrl+,")
    window.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
    edit.addAction(window.settings_action)

    view = menu.addMenu("&View")
    v = window.ws.view
    view.addAction(
        make_action(
            window,
            "Zoom In",
            lambda: v.zoom_step(1),
            [QKeySequence("Ctrl+="), QKeySequence("Ctrl++"), QKeySequence("+"), QKeySequence("=")],
        )
    )
    view.addAction(
        make_action(window, "Zoom Out", lambda: v.zoom_step(-1), [QKeySequence("Ctrl+-"), QKeySequence("-")])
    )
    view.addAction(
        make_action(
            window, "Actual Size (100%)", lambda: v.set_zoom(1.0), [QKeySequence("Ctrl+0"), QKeySequence("0")]
        )
    )
    view.addAction(
        make_action(
            window, "Fit to Content", window.fit_to_content, [QKeySequence("Ctrl+1"), QKeySequence("1")]
        )
    )
    view.addSeparator()
    window.grid_action = make_action(window, "Pixel Grid", window._set_grid, "Ctrl+'", checkable=True)
    window.mask_action = make_action(
        window, "Mask Overlay", window.ws.scene.set_mask_visible, "Ctrl+H", checkable=True
    )
    window.grid_action.setChecked(True)
    window.mask_action.setChecked(True)
    view.addAction(window.grid_action)
    view.addAction(window.mask_action)
    view.addAction(window.dock.toggleViewAction())

    gen = menu.addMenu("&Generate")
    gen.addAction(
        make_action(
            window, "&Generate", window.generate, [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")]
        )
    )
    gen.addAction(make_action(window, "&Cancel", window.escape, "Esc"))
    gen.addAction(
        make_action(
            window,
            "&Accept Candidate",
            window.accept_candidate,
            [QKeySequence("Return"), QKeySequence("Enter")],
        )
    )
    gen.addAction(make_action(window, "&Discard Candidates", window.discard_candidates, "Backspace"))
    gen.addAction(make_action(window, "Previous Candidate", lambda: window._step(-1), "Left"))
    gen.addAction(make_action(window, "Next Candidate", lambda: window._step(1), "Right"))
    gen.addAction(make_action(window, "Generate &More", window.generate_more, "Ctrl+Shift+Return"))
    gen.addSeparator()
    window.upscale2_action = make_action(window, "&Upscale Frame x2", lambda: window.upscale(2), "Ctrl+U")
    window.upscale4_action = make_action(
        window, "Upscale Frame x&4", lambda: window.upscale(4), "Ctrl+Shift+U"
    )
    gen.addAction(window.upscale2_action)
    gen.addAction(window.upscale4_action)
    # Enabled while the selected frame's staged or accepted result has a flagged seam (SeamMarks).
    window.repair_seam_action = make_action(window, "&Repair Seam", window.repair_seam, "Ctrl+Alt+R")
    window.repair_seam_action.setEnabled(False)
    gen.addAction(window.repair_seam_action)
    for action in window.patch_list.upscale_actions.values():
        gen.addAction(action)

    def frame_selected(*_args: object) -> None:
        selected = window.ws.selected_frame_id in window.ws.doc.frames
        window.upscale2_action.setEnabled(selected)
        window.upscale4_action.setEnabled(selected)

    window.ws.selection_changed.connect(frame_selected)
    window.ws.document_replaced.connect(frame_selected)
    frame_selected()

    help_menu = menu.addMenu("&Help")
    window.about_action = make_action(window, "&About canvas_app", lambda: show_about(window))
    window.shortcuts_action = make_action(window, "&Keyboard Shortcuts", window.show_shortcuts, "Ctrl+/")
    help_menu.addAction(window.shortcuts_action)
    help_menu.addAction(window.about_action)

    tools_bar = QToolBar("Tools", objectName="tools")
    tools_bar.setMovable(False)
    window.addToolBar(Qt.ToolBarArea.LeftToolBarArea, tools_bar)
    window.tool_group = QActionGroup(window)
    window.tool_actions: dict[str, QAction] = {}
    for name, tool in window.ws.tools.items():
        if name == "place":
            continue
        action = QAction(tool.label, window, checkable=True)
        action.setShortcut(QKeySequence(tool.shortcut))
        action.setToolTip(f"{tool.label} ({tool.shortcut})")
        action.triggered.connect(lambda _c=False, n=name: window.ws.set_tool(n))
        window.tool_group.addAction(action)
        tools_bar.addAction(action)
        window.tool_actions[name] = action
    window.tool_actions[window.ws.tool_name].setChecked(True)
    # Edits in text fields keep their own Enter / Backspace / arrows: these act on the canvas only.
    for action in window.actions():
        if action.shortcut().toString() in CANVAS_ONLY_KEYS:
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            window.removeAction(action)
            window.ws.view.addAction(action)


def about_text(window: MainWindow) -> str:
    from canvas_app.about import about_info, format_about_text

    return format_about_text(about_info(window.worker.device or None))


def show_about(window: MainWindow) -> None:
    QMessageBox.about(window, "About canvas_app", about_text(window))

"""Help > Keyboard Shortcuts: a table built from the window's actions as they are now, so it lists
what the keys really do (it cannot go stale when a shortcut changes)."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)


def shortcut_rows(
    window: QMainWindow, extra: dict[str, list[QAction]] | None = None
) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action with a shortcut: the menus in menu-bar order, then
    ``extra`` groups (e.g. the tool bar's tools)."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def add(group: str, action: QAction) -> None:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        keys = [k for k in keys if k]
        if action.menu() is not None:
            walk(f"{group} › {_clean(action.text())}", action.menu())
        elif keys and id(action) not in seen:
            seen.add(id(action))
            rows.append((group, _clean(action.text()), ", ".join(keys)))

    def walk(group: str, menu: QMenu) -> None:
        for action in menu.actions():
            add(group, action)

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(_clean(top.text()), top.menu())
    for group, actions in (extra or {}).items():
        for action in actions:
            add(group, action)
    return rows


def _clean(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


class ShortcutsDialog(QDialog):
    def __init__(self, window: QMainWindow, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.setObjectName("shortcuts_dialog")
        self.filter = QLineEdit(placeholderText="Filter", objectName="filter", clearButtonEnabled=True)
        self.table = QTableWidget(len(rows), 3, objectName="shortcuts")
        self.table.setHorizontalHeaderLabels(["Action", "Keys", "Menu"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (group, text, keys) in enumerate(rows):
            for col, value in enumerate((text, keys, group)):
                self.table.setItem(row, col, QTableWidgetItem(value))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.filter.textChanged.connect(self._filter)
        self.resize(560, 620)

    def rows(self) -> list[tuple[str, str, str]]:
        """What the table shows (visible rows): (action, keys, menu)."""
        out = []
        for r in range(self.table.rowCount()):
            if not self.table.isRowHidden(r):
                out.append(tuple(self.table.item(r, c).text() for c in range(3)))
        return out  # type: ignore[return-value]

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r in range(self.table.rowCount()):
            hay = " ".join(self.table.item(r, c).text().lower() for c in range(3))
            self.table.setRowHidden(r, bool(needle) and needle not in hay)

"""The regions of the selected frame, in the frame panel: add, edit prompt and box, reorder, hide,
delete. Every change is one undo step of the document (``Document.add_region`` and friends); the
list follows the document, so undo and redo show at once."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from canvas_app.core import limits
from canvas_app.core.frames import SNAP, PromptFrame, snap
from canvas_app.core.regions import Region
from canvas_app.core.request import BUILTIN_MODEL
from canvas_app.core.vocabulary import REGION_LABELS
from canvas_app.ui.frame_item import region_color
from canvas_app.ui.prompt_words import PromptWordsNote
from canvas_app.ui.workspace import Workspace

HINT = "Regions: parts of the frame with their own prompt; the frame's prompt is the background."


class RegionList(QWidget):
    """``model()`` names the model the frame runs with (the frame panel's picker), whose words the
    note under the region prompt checks; by default the selected frame's."""

    def __init__(self, ws: Workspace, model: Callable[[], str] | None = None) -> None:
        super().__init__()
        self.ws = ws
        self._loading = False
        self._shown_frame = ""  # the frame whose regions the list shows
        # The frame and region whose prompts the fields show (what is typed there belongs to them).
        self._fields_for = ("", "")
        # The list follows the document after the event that changed it has returned (a refresh
        # inside a spin box's or an item's own signal would delete what is emitting).
        self._refresh_timer = QTimer(self, singleShot=True, interval=0)
        self._refresh_timer.timeout.connect(lambda: self.refresh())
        self.list = QListWidget(objectName="regions")
        self.list.setMaximumHeight(96)
        self.prompt = QLineEdit(objectName="region_prompt", placeholderText="What to paint in this region")
        self.negative = QLineEdit(objectName="region_negative", placeholderText="Region negative (optional)")
        for edit in (self.prompt, self.negative):
            edit.setMaxLength(limits.MAX_REGION_PROMPT_CHARS)
        # The same note as under the frame's prompt, for the region's own words.
        self.words_note = PromptWordsNote(
            self.prompt, self.negative, model or self._frame_model, REGION_LABELS, "region_prompt_words"
        )
        self.box = [
            QSpinBox(
                minimum=-limits.MAX_FRAME_SIDE, maximum=limits.MAX_FRAME_SIDE, singleStep=SNAP, objectName=n
            )
            for n in ("region_x", "region_y", "region_w", "region_h")
        ]
        self.box[2].setMinimum(SNAP)
        self.box[3].setMinimum(SNAP)

        def action(text: str, shortcut: QKeySequence | str | None, slot) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
                # Only while the region list (or its editors) has the focus: Delete elsewhere
                # keeps its own meaning.
                act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.add_action = action("Add region", "Ctrl+Shift+R", self.add_region)
        self.delete_action = action("Delete region", QKeySequence.StandardKey.Delete, self.delete_region)
        self.up_action = action("Move region up", "Ctrl+Up", lambda: self.move_region(-1))
        self.down_action = action("Move region down", "Ctrl+Down", lambda: self.move_region(1))
        buttons = QHBoxLayout()
        for act in (self.add_action, self.delete_action, self.up_action, self.down_action):
            button = QToolButton()
            button.setDefaultAction(act)
            buttons.addWidget(button)
        buttons.addStretch(1)
        box_row = QHBoxLayout()
        for label, spin in zip("XYWH", self.box, strict=True):
            box_row.addWidget(QLabel(label))
            box_row.addWidget(spin, 1)
        self.hint = QLabel(HINT, wordWrap=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(self.prompt)
        layout.addWidget(self.negative)
        layout.addWidget(self.words_note)
        layout.addLayout(box_row)
        # Tab goes prompt -> negative -> X, Y, W, H (not by the order the widgets were made in).
        chain = (self.prompt, self.negative, *self.box)
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)

        self.list.currentRowChanged.connect(lambda _row: self._show_current())
        self.list.itemChanged.connect(self._item_changed)
        self.prompt.editingFinished.connect(self.commit_text)
        self.negative.editingFinished.connect(self.commit_text)
        for spin in self.box:
            spin.valueChanged.connect(self._box_edited)
        ws.selection_changed.connect(lambda _id: self.refresh())
        ws.region_selected.connect(self._region_selected)
        ws.scene.relay.frame_changed.connect(self._frame_changed)
        self.refresh()

    # -- the document -> widgets -------------------------------------------------------------------
    @property
    def frame(self) -> PromptFrame | None:
        return self.ws.doc.frames.get(self.ws.selected_frame_id)

    def _frame_model(self) -> str:
        frame = self.frame
        return frame.model if frame is not None else BUILTIN_MODEL

    @property
    def current(self) -> Region | None:
        frame, row = self.frame, self.list.currentRow()
        if frame is None or not 0 <= row < len(frame.regions):
            return None
        return frame.regions[row]

    def refresh(self, keep: str | None = None) -> None:
        """Show the selected frame's regions, keeping the current one (or ``keep``) selected. On the
        same frame with no region selected (the artist clicked beside them), none stays selected."""
        frame = self.frame
        same_frame = frame is not None and frame.id == self._shown_frame
        current = self.current if same_frame else None
        keep = keep or (current.id if current is not None else None)
        none_chosen = same_frame and current is None
        self._shown_frame = frame.id if frame is not None else ""
        self._loading = True
        # The list's signals wait for the rebuild: an empty list for a moment would disable the
        # region's fields, and the field being typed in would hand its focus on (Tab went to the
        # patch list).
        blocker = QSignalBlocker(self.list)
        try:
            self.list.clear()
            for i, region in enumerate(frame.regions if frame is not None else ()):
                item = QListWidgetItem(region.prompt or "(no prompt)")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if region.visible else Qt.CheckState.Unchecked)
                item.setToolTip("Unchecked: hidden (not generated)")
                swatch = QPixmap(12, 12)
                swatch.fill(region_color(i))  # the colour it has on the canvas
                item.setIcon(QIcon(swatch))
                self.list.addItem(item)
            ids = [r.id for r in frame.regions] if frame is not None else []
            if keep in ids:
                self.list.setCurrentRow(ids.index(keep))
            else:
                self.list.setCurrentRow(0 if ids and not none_chosen else -1)
        finally:
            blocker.unblock()
            self._loading = False
        self.add_action.setEnabled(frame is not None and len(frame.regions) < limits.MAX_REGIONS)
        self._show_current()

    def _show_current(self) -> None:
        region = self.current
        region_id = region.id if region is not None else ""
        fields_for = (self._shown_frame, region_id)
        if fields_for != self._fields_for:
            self.commit_text()  # what was typed belongs to the region shown so far
        self._fields_for = fields_for
        self._loading = True
        try:
            for edit, text in (
                (self.prompt, region.prompt if region else ""),
                (self.negative, region.negative_prompt if region else ""),
            ):
                # Typed and not yet committed (the list follows every change of the document,
                # which may come while a person types): the typing stays.
                if not (edit.isModified() and region_id) and edit.text() != text:
                    edit.setText(text)
            for spin, value in zip(self.box, region.rect if region else (0, 0, SNAP, SNAP), strict=True):
                spin.setValue(value)
        finally:
            self._loading = False
        for widget in (self.prompt, self.negative, *self.box):
            widget.setEnabled(region is not None)
        self.words_note.check()  # another region (or none) shows its own words at once
        if (region.id if region is not None else "") != self.ws.selected_region_id:
            # The canvas follows the list: the region tools act on the region shown here.
            self.ws.select_region(region.id if region is not None else "")
        row, count = self.list.currentRow(), self.list.count()
        self.delete_action.setEnabled(region is not None)
        self.up_action.setEnabled(region is not None and row > 0)
        self.down_action.setEnabled(region is not None and row < count - 1)

    def _region_selected(self, region_id: str, edit: bool) -> None:
        """A region picked (or drawn) on the canvas: show it, and with ``edit`` focus its prompt."""
        current = self.current
        if region_id and (current is None or current.id != region_id):
            self.refresh(keep=region_id)
        elif not region_id and current is not None:
            self.list.setCurrentRow(-1)
        if edit and self.current is not None:
            self.prompt.setFocus(Qt.FocusReason.OtherFocusReason)
            self.prompt.selectAll()

    def _frame_changed(self, frame_id: str) -> None:
        if frame_id == self.ws.selected_frame_id:
            self._refresh_timer.start()

    # -- widgets -> the document -------------------------------------------------------------------
    def add_region(self) -> None:
        """A box over the middle of the frame, half its size, to adjust; its prompt box gets the focus."""
        frame = self.frame
        if frame is None or len(frame.regions) >= limits.MAX_REGIONS:
            return
        w, h = max(SNAP, snap(frame.w / 2)), max(SNAP, snap(frame.h / 2))
        region = Region(snap((frame.w - w) / 2), snap((frame.h - h) / 2), w, h)
        self.ws.doc.add_region(frame.id, region)
        self.ws.select_region(region.id, edit=True)

    def delete_region(self) -> None:
        frame, region = self.frame, self.current
        if frame is not None and region is not None:
            row = self.list.currentRow()
            self.ws.doc.remove_region(frame.id, region.id)
            regions = self.ws.doc.frame(frame.id).regions
            self.refresh(keep=regions[min(row, len(regions) - 1)].id if regions else None)

    def move_region(self, delta: int) -> None:
        frame, region = self.frame, self.current
        if frame is not None and region is not None:
            self.ws.doc.move_region(frame.id, region.id, self.list.currentRow() + delta)
            self.refresh(keep=region.id)

    def commit_text(self) -> None:
        """Write what was typed into the prompt fields (not yet committed) to their region: on
        Enter, on focus loss, before another region shows, before a run."""
        changes = {
            name: edit.text()
            for name, edit in (("prompt", self.prompt), ("negative_prompt", self.negative))
            if edit.isModified()
        }
        self.prompt.setModified(False)
        self.negative.setModified(False)
        frame_id, region_id = self._fields_for
        frame = self.ws.doc.frames.get(frame_id)
        region = next((r for r in frame.regions if r.id == region_id), None) if frame else None
        if self._loading or frame is None or region is None or not changes:
            return  # nothing typed, or the region went (deleted, undone): so did its prompt
        if any(getattr(region, k) != v for k, v in changes.items()):
            self.ws.doc.update_region(frame.id, region.id, "Edit region prompt", **changes)

    def _edit(self, label: str, **changes: object) -> None:
        frame, region = self.frame, self.current
        if self._loading or frame is None or region is None:
            return
        if all(getattr(region, k) == v for k, v in changes.items()):
            return
        self.ws.doc.update_region(frame.id, region.id, label, **changes)

    def _box_edited(self, *_args: object) -> None:
        x, y, w, h = (spin.value() for spin in self.box)
        self._edit("Move region", x=x, y=y, w=w, h=h)

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._loading:
            return
        self.list.setCurrentItem(item)
        visible = item.checkState() == Qt.CheckState.Checked
        self._edit("Show region" if visible else "Hide region", visible=visible)

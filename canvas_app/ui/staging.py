"""The staging strip shown on the canvas under a frame with results, and the patch lineage list."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from canvas_app.core.upscale import SCALES
from canvas_app.ui.jobs import GenerationController, frame_pixels
from canvas_app.ui.qimage import array_to_qimage
from canvas_app.ui.workspace import Workspace

THUMB = 56
MAX_THUMBS = 8


def thumbnail(image: np.ndarray, size: int = THUMB) -> QPixmap:
    pixmap = QPixmap.fromImage(array_to_qimage(np.ascontiguousarray(image)))
    return pixmap.scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


class StagingBar(QWidget):
    """Floats over the canvas view below the selected frame while it has candidates: thumbnails,
    previous / next, accept (Enter), discard (Backspace), generate more."""

    def __init__(self, ws: Workspace, gen: GenerationController) -> None:
        # A child of the view, not of its viewport: viewport scrolling would shift it twice.
        super().__init__(ws.view)
        self.ws = ws
        self.gen = gen
        self.setObjectName("staging")
        self.setAutoFillBackground(True)
        self.setStyleSheet(
            "#staging { background: rgba(30, 30, 36, 230); border-radius: 6px; }"
            " QToolButton:checked { border: 2px solid rgb(80, 160, 255); }"
        )
        self.prev_button = QToolButton(text="◀", toolTip="Previous candidate (Left)")
        self.next_button = QToolButton(text="▶", toolTip="Next candidate (Right)")
        self.counter = QLabel()
        self.counter.setStyleSheet("color: white")
        self.accept_button = QPushButton("Accept", objectName="accept", toolTip="Enter")
        self.discard_button = QPushButton("Discard", objectName="discard", toolTip="Backspace")
        self.more_button = QPushButton("More", objectName="more", toolTip="Generate more candidates")
        self.thumbs = QHBoxLayout()
        self.thumbs.setSpacing(2)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 4)
        row.addWidget(self.prev_button)
        row.addLayout(self.thumbs)
        row.addWidget(self.next_button)
        row.addWidget(self.counter)
        row.addWidget(self.accept_button)
        row.addWidget(self.discard_button)
        row.addWidget(self.more_button)
        self.prev_button.clicked.connect(lambda: gen.step_candidate(self.frame_id, -1))
        self.next_button.clicked.connect(lambda: gen.step_candidate(self.frame_id, 1))
        self.accept_button.clicked.connect(lambda: gen.accept(self.frame_id))
        self.discard_button.clicked.connect(lambda: gen.discard(self.frame_id))
        self.more_button.clicked.connect(lambda: gen.generate_more(self.frame_id))
        gen.staging_changed.connect(lambda _fid: self.refresh())
        ws.selection_changed.connect(lambda _fid: self.refresh())
        ws.view.zoom_changed.connect(lambda _z: self.reposition())
        ws.view.horizontalScrollBar().valueChanged.connect(lambda _v: self.reposition())
        ws.view.verticalScrollBar().valueChanged.connect(lambda _v: self.reposition())
        ws.scene.relay.frame_changed.connect(lambda _fid: self.reposition())
        self.hide()

    @property
    def frame_id(self) -> str:
        return self.ws.selected_frame_id

    def refresh(self) -> None:
        staging = self.gen.staging.get(self.frame_id)
        while self.thumbs.count():
            item = self.thumbs.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if staging is None or not staging.candidates:
            self.hide()
            return
        n = len(staging.candidates)
        start = max(0, min(staging.index - MAX_THUMBS // 2, n - MAX_THUMBS))
        for index in range(start, min(n, start + MAX_THUMBS)):
            cand = staging.candidates[index]
            button = QToolButton(checkable=True, toolTip=f"seed {cand.seed}")
            button.setIcon(QIcon(thumbnail(frame_pixels(cand))))
            button.setIconSize(QSize(THUMB, THUMB))
            button.setChecked(index == staging.index)
            button.clicked.connect(lambda _c=False, i=index: self.gen.select_candidate(self.frame_id, i))
            self.thumbs.addWidget(button)
        self.counter.setText(f"{staging.index + 1}/{n}")
        self.adjustSize()
        self.show()
        self.raise_()
        self.reposition()

    def reposition(self) -> None:
        frame = self.ws.doc.frames.get(self.frame_id)
        if frame is None or not self.isVisible():
            return
        view = self.ws.view
        rect = view.mapFromScene(QRectF(frame.x, frame.y, frame.w, frame.h)).boundingRect()
        vp = view.viewport()
        x = rect.center().x() - self.width() // 2
        y = rect.bottom() + 8
        x = max(4, min(x, vp.width() - self.width() - 4))
        y = max(4, min(y, vp.height() - self.height() - 4))
        self.move(vp.geometry().topLeft() + QPoint(int(x), int(y)))


class PatchList(QWidget):
    """Accepted patches of the document, newest first, with re-roll (new seed; optionally with the
    frame's current prompt)."""

    reroll_requested = Signal(str, bool)  # patch id, use the frame's edited prompt

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.list = QListWidget(objectName="patches")
        self.list.setMaximumHeight(140)
        self.reroll = QPushButton("Re-roll", toolTip="Generate the selected patch again with a new seed")
        self.reroll_prompt = QPushButton(
            "Re-roll with frame prompt", toolTip="Use the frame's current (edited) prompt and a new seed"
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.reroll)
        buttons.addWidget(self.reroll_prompt)
        # Also in the Generate menu (the window adds them); upscale_actions.py decides what they
        # upscale (a staged candidate or the selected patch) and when they are enabled.
        self.upscale_actions: dict[int, QAction] = {}
        upscale_buttons = QHBoxLayout()
        for scale in SCALES:
            action = QAction(f"Upscale Patch x{scale}", self)
            self.upscale_actions[scale] = action
            button = QToolButton()
            button.setDefaultAction(action)
            upscale_buttons.addWidget(button)
        upscale_buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Accepted patches"))
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addLayout(upscale_buttons)
        self.reroll.clicked.connect(lambda: self._request(False))
        self.reroll_prompt.clicked.connect(lambda: self._request(True))
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self._bound_doc = None
        ws.document_replaced.connect(self.bind)
        self.bind()

    def bind(self) -> None:
        if self._bound_doc is not None:
            self._bound_doc.events.patches_changed.disconnect(self.refresh)
        self._bound_doc = self.ws.doc
        self.ws.doc.events.patches_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_patch_id()
        self.list.clear()
        for patch in reversed(self.ws.doc.patches):
            try:
                prompt = json.loads(patch.request_json).get("prompt", "")
            except ValueError:
                prompt = ""
            item = QListWidgetItem(f"seed {patch.seed} · {patch.w}×{patch.h} · {prompt[:40]}")
            item.setData(Qt.ItemDataRole.UserRole, patch.id)
            self.list.addItem(item)
            if patch.id == selected:
                item.setSelected(True)
        self._update_buttons()

    def selected_patch_id(self) -> str:
        items = self.list.selectedItems()
        return str(items[0].data(Qt.ItemDataRole.UserRole)) if items else ""

    def select_patch(self, patch_id: str) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == patch_id)

    def _update_buttons(self) -> None:
        has = bool(self.selected_patch_id())
        self.reroll.setEnabled(has)
        self.reroll_prompt.setEnabled(has)

    def _request(self, edited_prompt: bool) -> None:
        patch_id = self.selected_patch_id()
        if patch_id:
            self.reroll_requested.emit(patch_id, edited_prompt)

"""Seam marks: the seam check of each staged or accepted result, drawn on the canvas, and its repair.

After a result is staged (as accepting it would composite it now) or accepted (against the document
just before), ``core.seams`` checks the colour step across the boundary of what it regenerates. Flagged
segments are outlined on the canvas; "Repair Seam" re-inpaints a thin band along them at low strength
through the ordinary frame plan, and the result is staged like any candidate. A staged result is
accepted first (one undo step), so the repair works on what the artist sees. While marks are on the
canvas, the status bar says so and names the Repair Seam action and its shortcut (``SeamHint``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QLabel, QStatusBar

from canvas_app.core.frames import Patch
from canvas_app.core.seams import SeamCheck, check_candidate
from canvas_app.ui.jobs import Candidate, GenerationController
from canvas_app.ui.workspace import Workspace

SEAM_COLOR = QColor(255, 40, 40)


@dataclass
class SeamState:
    check: SeamCheck
    candidate: Candidate | None = None  # the staged candidate checked, or None once accepted
    patch_id: str = ""  # the accepted patch


def seam_path(check: SeamCheck) -> QPainterPath:
    """The flagged segments as open polylines, in canvas coordinates."""
    path = QPainterPath()
    for line in check.polylines():
        path.moveTo(QPointF(*line[0]))
        for x, y in line[1:]:
            path.lineTo(QPointF(x, y))
    return path


class SeamMarks(QObject):
    """Keeps one seam check per frame (its staged or last accepted result) and its outline."""

    changed = Signal()  # a check or the selection changed: the repair action may change state

    def __init__(self, ws: Workspace, gen: GenerationController) -> None:
        super().__init__()
        self.ws = ws
        self.gen = gen
        self.states: dict[str, SeamState] = {}
        self.items: dict[str, QGraphicsPathItem] = {}
        self._before: SeamCheck | None = None
        gen.staging_changed.connect(self._on_staging)
        gen.accepting.connect(self._on_accepting)
        gen.accepted.connect(self._on_accepted)
        gen.job_changed.connect(lambda _fid: self.changed.emit())
        ws.selection_changed.connect(lambda _fid: self.changed.emit())
        ws.scene.relay.frame_removed.connect(self._drop)
        ws.document_replaced.connect(self._on_document_replaced)
        self._bound = ws.doc
        ws.doc.events.patches_changed.connect(self._on_patches)

    # -- queries ---------------------------------------------------------------------------------
    def state(self, frame_id: str | None = None) -> SeamState | None:
        return self.states.get(self.ws.selected_frame_id if frame_id is None else frame_id)

    def can_repair(self, frame_id: str | None = None) -> bool:
        """A flagged seam on the frame (the selected one by default) and no run for it under way."""
        frame_id = self.ws.selected_frame_id if frame_id is None else frame_id
        state = self.states.get(frame_id)
        return (
            state is not None
            and state.check.has_seam
            and frame_id in self.ws.doc.frames
            and not self.gen.active_jobs(frame_id)
        )

    # -- command ---------------------------------------------------------------------------------
    def repair(self, frame_id: str | None = None) -> int:
        """Queue the repair of the frame's flagged seam; returns the request id. A staged result is
        accepted first. Raises ValueError when there is nothing to repair."""
        frame_id = self.ws.selected_frame_id if frame_id is None else frame_id
        if not self.can_repair(frame_id):
            raise ValueError("there is no seam to repair on this frame")
        if self.states[frame_id].candidate is not None:
            self.gen.accept(frame_id)
        check = self.states[frame_id].check
        return self.gen.repair_seam(frame_id, (check.origin, check.band()))

    # -- events ----------------------------------------------------------------------------------
    def _on_staging(self, frame_id: str) -> None:
        staging = self.gen.staging.get(frame_id)
        cand = staging.current if staging else None
        state = self.states.get(frame_id)
        if cand is None or self.gen.active_jobs(frame_id):
            if state is not None and state.candidate is not None:  # the staged result is gone
                self._set(frame_id, None)
            return
        if state is not None and state.candidate is cand:
            return
        check = check_candidate(self.ws.doc, cand.request, cand.image)
        self._set(frame_id, SeamState(check, cand))

    def _on_accepting(self, _frame_id: str, cand: Candidate) -> None:
        # Against the document as it is now, which may have changed since the candidate was staged.
        self._before = check_candidate(self.ws.doc, cand.request, cand.image)

    def _on_accepted(self, frame_id: str, patch: Patch) -> None:
        if self._before is not None:
            self._set(frame_id, SeamState(self._before, None, patch.id))
        self._before = None

    def _on_patches(self) -> None:
        """An accepted result undone: its mark goes with it."""
        ids = {p.id for p in self.ws.doc.patches}
        for frame_id, state in list(self.states.items()):
            if state.candidate is None and state.patch_id not in ids:
                self._set(frame_id, None)

    def _on_document_replaced(self) -> None:
        self._bound.events.patches_changed.disconnect(self._on_patches)
        self._bound = self.ws.doc
        self._bound.events.patches_changed.connect(self._on_patches)
        for frame_id in list(self.states):
            self._set(frame_id, None)

    def _drop(self, frame_id: str) -> None:
        self._set(frame_id, None)

    # -- display ---------------------------------------------------------------------------------
    def _set(self, frame_id: str, state: SeamState | None) -> None:
        if state is None:
            self.states.pop(frame_id, None)
        else:
            self.states[frame_id] = state
        item = self.items.pop(frame_id, None)
        if item is not None:
            self.ws.scene.removeItem(item)
        if state is not None and state.check.has_seam:
            item = QGraphicsPathItem(seam_path(state.check))
            pen = QPen(SEAM_COLOR, 3, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
            pen.setCosmetic(True)  # as thick at any zoom
            item.setPen(pen)
            item.setZValue(20)  # over frames and their staged results
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            item.setToolTip(
                f"Seam: colour step ΔE00 {state.check.step('after'):.1f} "
                f"(was {state.check.step('before'):.1f}) · Generate > Repair Seam"
            )
            self.ws.scene.addItem(item)
            self.items[frame_id] = item
        self.changed.emit()


def seam_hint(marks: SeamMarks, action: QAction) -> str:
    """What the status bar says about the seam marks: the selected frame's, else how many other
    frames have one; "" without marks. The action's own text and shortcut are named."""
    name = action.text().replace("&", "")
    keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    how = f"Generate > {name} ({keys})" if keys else f"Generate > {name}"
    state = marks.state()
    if state is not None and state.check.has_seam and marks.ws.selected_frame_id in marks.items:
        what = "staged" if state.candidate is not None else "accepted"
        step, before = state.check.step("after"), state.check.step("before")
        return (
            f"Seam found at the edge of the {what} result (colour step ΔE00 {step:.1f}, was {before:.1f}), "
            f"marked in red: {how} blends it."
        )
    others = len(marks.items)
    if others:
        frames = "another frame" if others == 1 else f"{others} other frames"
        return f"A seam is marked in red on {frames}: select it, then {how}."
    return ""


class SeamHint(QLabel):
    """The seam hint in ``bar``, left of its permanent widgets: it follows the marks and goes with
    them; a passing message (Done, Accepted…) covers it for its time, then it shows again."""

    def __init__(self, marks: SeamMarks, action: QAction, bar: QStatusBar) -> None:
        super().__init__(objectName="seam_hint")
        self._marks, self._action, self._bar = marks, action, bar
        self.setStyleSheet("color: #c62828;")  # the marks' red family: the hint belongs to them
        bar.addWidget(self, 1)
        marks.changed.connect(self.refresh)
        bar.messageChanged.connect(lambda _text: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        text = seam_hint(self._marks, self._action)
        self.setText(text)
        self.setVisible(bool(text) and not self._bar.currentMessage())

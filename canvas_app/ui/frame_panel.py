"""The side panel that edits the selected frame and runs it: prompt, settings, mode, progress."""

from __future__ import annotations

import random
from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from canvas_app.core import limits
from canvas_app.core.frames import PromptFrame
from canvas_app.core.limits import MAX_SEED
from canvas_app.core.request import FRAME_SETTINGS, Mode
from canvas_app.ui.job_state import JobState
from canvas_app.ui.jobs import GenerationController
from canvas_app.ui.model_picker import SCHEDULERS, ModelEntry
from canvas_app.ui.prompt_words import PromptWordsNote
from canvas_app.ui.region_list import RegionList
from canvas_app.ui.workspace import Workspace

COMMIT_DELAY_MS = 400
# The smallest strength the box offers: the engine refuses 0 (it would change nothing).
STRENGTH_STEP = 0.01
# The settings a new frame takes from the panel when none is selected: what a frame carries into its
# requests (core's one list), and its seed.
NEW_FRAME_SETTINGS = ("seed", *FRAME_SETTINGS)
# How a frame larger than the model's native area runs (core.request.LARGE_FRAME_MODES).
LARGE_FRAME_TEXT = {
    "two-pass": "Compose, then refine",
    "tiled": "Tiles (one pass, repeats)",
}
# What an inpaint starts from under the mask (core.request.MASKED_CONTENT_MODES).
MASKED_CONTENT_TEXT = {
    "original": "Original (to change it)",
    "fill": "Fill from around (to remove it)",
}
EMPTY_PROMPT_NOTE = "Empty prompt: Generate paints a random scene."
# What an empty prompt does follows the frame's mode: over pixels the model continues what is there.
EMPTY_PROMPT_NOTES = {
    Mode.TXT2IMG: EMPTY_PROMPT_NOTE,
    Mode.IMG2IMG: "Empty prompt: Generate repaints the picture freely, keeping its layout.",
    Mode.INPAINT: "Empty prompt: the masked area is filled to match its surroundings.",
    Mode.OUTPAINT: "Empty prompt: the empty area is filled to continue the picture.",
}
NO_FRAME_HINT = (
    "No frame selected: these settings go to the next frame. Draw one with the Frame tool (F), "
    "or press Generate to make one here."
)
ABOUT_ROLE = Qt.ItemDataRole.UserRole + 1  # a model entry's one-line description
MODE_TEXT = {
    Mode.TXT2IMG: "txt2img: the frame is empty",
    Mode.IMG2IMG: "img2img: redraws the whole frame",
    Mode.INPAINT: "inpaint: regenerates the masked area",
    Mode.OUTPAINT: "outpaint: fills the empty part",
}


class FramePanel(QWidget):
    """Edits ``ws.selected_frame_id``. Text edits are committed to the document after a short pause
    (one undo step per pause, not per key). With no frame selected it edits ``draft``: the settings
    the next new frame takes (a prompt typed first is not lost)."""

    add_model_file = Signal()
    add_model_folder = Signal()
    accept_requested = Signal()  # Enter in a prompt box while candidates are staged

    def __init__(self, ws: Workspace, gen: GenerationController) -> None:
        super().__init__()
        self.ws = ws
        self.gen = gen
        self._loading = False
        self.draft = PromptFrame()
        self._shown_id = ""  # the frame the widgets show ("" : the draft); edits go there
        self._commit_timer = QTimer(self, singleShot=True, interval=COMMIT_DELAY_MS)
        self._commit_timer.timeout.connect(self._commit_frame_text)

        self.prompt = QPlainTextEdit(placeholderText="Describe what to paint in the frame")
        self.prompt.setObjectName("prompt")
        self.prompt.setMaximumHeight(90)
        self.negative = QPlainTextEdit(placeholderText="What to avoid")
        self.negative.setObjectName("negative")
        self.negative.setMaximumHeight(50)
        self.model = QComboBox(objectName="model")
        self.add_model = QToolButton(text="+", toolTip="Add a model file or folder")
        self.add_model.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_model.addAction("Add model file…", self.add_model_file.emit)
        self.add_model.addAction("Add model folder…", self.add_model_folder.emit)
        self.scheduler = QComboBox(objectName="scheduler")
        self.scheduler.addItems(SCHEDULERS)
        self.steps = QSpinBox(minimum=limits.MIN_STEPS, maximum=limits.MAX_STEPS, objectName="steps")
        self.guidance = QDoubleSpinBox(
            minimum=limits.MIN_GUIDANCE, maximum=limits.MAX_GUIDANCE, singleStep=0.5, objectName="guidance"
        )
        self.strength = QDoubleSpinBox(
            minimum=STRENGTH_STEP,
            maximum=limits.MAX_STRENGTH,
            singleStep=0.05,
            decimals=2,
            objectName="strength",
        )
        self.large_frame = QComboBox(
            objectName="large_frame",
            toolTip="A frame larger than the model's native size: compose it at the native size, then "
            "refine it at full size (one picture), or draw it in tiles in one pass (each tile its own "
            "picture: for textures and repeating panoramas)",
        )
        for key, text in LARGE_FRAME_TEXT.items():
            self.large_frame.addItem(text, key)
        self.masked_content = QComboBox(
            objectName="masked_content",
            toolTip="Inpaint: what the masked area starts from before it is redrawn at the frame's "
            "strength. Original: the pixels there (to change them; they stay recognisable at low "
            "strength). Fill: first filled from their surroundings (to remove something: the model "
            "starts from the background)",
        )
        for key, text in MASKED_CONTENT_TEXT.items():
            self.masked_content.addItem(text, key)
        self.color_correction = QCheckBox(
            "Keep the photo's colours",
            objectName="color_correction",
            toolTip="Inpaint: the redrawn area keeps the colours it started from at all but the finest "
            "detail (with Fill: the colours around it). For removing things from photos; it also "
            "undoes a colour the prompt asks for",
        )
        self.refine_strength = QDoubleSpinBox(
            minimum=STRENGTH_STEP,
            maximum=limits.MAX_STRENGTH,
            singleStep=0.05,
            decimals=2,
            objectName="refine_strength",
            toolTip="How much the refining pass of a large frame redraws the composition",
        )
        # A double spin box with no decimals: seeds go up to 2**32 - 1, past QSpinBox's int range.
        # -1 reads "random": no run yet, so no seed to show.
        self.seed = QDoubleSpinBox(minimum=-1, maximum=MAX_SEED, decimals=0, objectName="seed")
        self.seed.setSpecialValueText("random")
        self.seed_lock = QCheckBox("lock", toolTip="Use this seed every time (unlocked: a new seed per run)")
        self.dice = QToolButton(text="Roll", toolTip="New random seed (locks it)")
        self.batch = QSpinBox(minimum=limits.MIN_BATCH, maximum=limits.MAX_BATCH, objectName="batch")
        self.mode_label = QLabel(objectName="mode")
        self.mode_label.setWordWrap(True)
        self.generate_button = QPushButton("Generate", objectName="generate", toolTip="Ctrl+Enter")
        self.generate_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", objectName="cancel", toolTip="Esc")
        self.progress = QProgressBar(objectName="progress", textVisible=True)
        self.progress.setRange(0, 1000)
        self.status = QLabel(objectName="status")
        self.status.setWordWrap(True)

        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.add_model)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        seed_row.addWidget(self.seed_lock)
        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        self.prompt_note = QLabel(EMPTY_PROMPT_NOTE, objectName="prompt_note")
        self.prompt_note.setWordWrap(True)
        form.addRow("", self.prompt_note)
        # Words the chosen model does not know or ignores, shown before the run (as the mode is).
        self.words_note = PromptWordsNote(self.prompt, self.negative, self.current_model)
        form.addRow("", self.words_note)
        form.addRow("Negative", self.negative)
        form.addRow("Model", model_row)
        self.model_about = QLabel(objectName="model_about")
        self.model_about.setWordWrap(True)
        form.addRow("", self.model_about)
        form.addRow("Sampler", self.scheduler)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Strength", self.strength)
        form.addRow("Masked", self.masked_content)
        form.addRow("", self.color_correction)
        form.addRow("Seed", seed_row)
        form.addRow("Batch", self.batch)
        form.addRow("Large frame", self.large_frame)
        form.addRow("Refine", self.refine_strength)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        self.hint = QLabel(NO_FRAME_HINT, objectName="hint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        layout.addLayout(form)
        layout.addWidget(self.mode_label)
        self.regions = RegionList(ws, self.current_model)
        layout.addWidget(self.regions)
        QWidget.setTabOrder(self.prompt, self.negative)
        QWidget.setTabOrder(self.negative, self.model)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        for edit in (self.prompt, self.negative):
            edit.setTabChangesFocus(True)  # Tab goes on to the next field; a prompt needs no tab
            edit.textChanged.connect(self._text_edited)
            edit.installEventFilter(self)
            edit.setToolTip("Shift+Enter: new line. Enter accepts a staged candidate.")
        self.model.activated.connect(lambda _i: self._commit(model=self.current_model()))
        self.model.currentIndexChanged.connect(lambda _i: self._model_shown())
        self.scheduler.activated.connect(lambda _i: self._commit(scheduler=self.scheduler.currentText()))
        self.steps.valueChanged.connect(lambda v: self._commit(steps=int(v)))
        self.guidance.valueChanged.connect(lambda v: self._commit(guidance=float(v)))
        self.strength.valueChanged.connect(lambda v: self._commit(strength=round(float(v), 4)))
        self.batch.valueChanged.connect(lambda v: self._commit(batch=int(v)))
        self.large_frame.activated.connect(lambda _i: self._large_frame_edited())
        self.masked_content.activated.connect(
            lambda _i: self._commit(masked_content=self.masked_content.currentData())
        )
        self.color_correction.toggled.connect(lambda on: self._commit(color_correction=bool(on)))
        self.refine_strength.valueChanged.connect(lambda v: self._commit(refine_strength=round(float(v), 4)))
        self.seed.valueChanged.connect(self._seed_edited)
        self.seed_lock.toggled.connect(self._seed_edited)
        self.dice.clicked.connect(self.roll_seed)
        ws.selection_changed.connect(lambda _id: self.refresh())
        ws.scene.relay.frame_changed.connect(self._frame_changed)
        gen.job_changed.connect(self._job_changed)
        gen.staging_changed.connect(self._job_changed)
        self.refresh()

    # -- keys ------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter in a prompt box accepts the staged candidate, as the status line says; Shift+Enter
        still starts a new line (and Enter does when nothing is staged)."""
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            plain = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and plain and self.has_staged():
                self.accept_requested.emit()
                return True
        return super().eventFilter(watched, event)

    def has_staged(self) -> bool:
        staging = self.gen.staging.get(self.ws.selected_frame_id)
        return staging is not None and staging.current is not None

    # -- models ----------------------------------------------------------------------------------
    def set_models(self, entries: list[ModelEntry]) -> None:
        current = self.model.currentData()
        self.model.clear()
        for entry in entries:
            self.model.addItem(entry.label, entry.model)
            self.model.setItemData(
                self.model.count() - 1, entry.about or entry.model, Qt.ItemDataRole.ToolTipRole
            )
            self.model.setItemData(self.model.count() - 1, entry.about, ABOUT_ROLE)
        self._select_model(current or "builtin")
        self._model_shown()

    def _select_model(self, model: str) -> None:
        index = self.model.findData(model)
        if index < 0:
            self.model.addItem(model.rsplit("/", 1)[-1], model)
            index = self.model.count() - 1
        self.model.setCurrentIndex(index)

    def current_model(self) -> str:
        """The model the panel shows (the frame's, or the next frame's)."""
        return str(self.model.currentData() or "builtin")

    def _model_shown(self) -> None:
        about = self.model.currentData(ABOUT_ROLE) or ""
        self.model_about.setText(about)
        self.model_about.setVisible(bool(about))
        self.words_note.check()
        self.regions.words_note.check()

    # -- frame <-> widgets -----------------------------------------------------------------------
    @property
    def frame(self) -> PromptFrame | None:
        return self.ws.doc.frames.get(self.ws.selected_frame_id)

    def new_frame_settings(self) -> dict[str, object]:
        """What a new frame takes from the panel: the draft's settings (pending text included)."""
        if self.frame is None:
            self.commit_text()
        return {k: getattr(self.draft, k) for k in NEW_FRAME_SETTINGS}

    def set_default_model(self, model: str) -> None:
        """The model new frames use (the last one picked)."""
        self.draft = replace(self.draft, model=model)
        if self.frame is None:
            self.refresh()

    def refresh(self) -> None:
        """Load the selected frame (or, with none, the draft) into the widgets."""
        if self._commit_timer.isActive():
            self.commit_text()  # typing not yet committed belongs to the frame shown so far
        self._shown_id = self.ws.selected_frame_id
        selected = self.frame
        frame = selected or self.draft
        self._loading = True
        try:
            self.hint.setVisible(selected is None)
            if self.prompt.toPlainText() != frame.prompt:
                self.prompt.setPlainText(frame.prompt)
            if self.negative.toPlainText() != frame.negative_prompt:
                self.negative.setPlainText(frame.negative_prompt)
            self._select_model(frame.model)
            self.scheduler.setCurrentText(frame.scheduler)
            self.steps.setValue(frame.steps)
            self.guidance.setValue(frame.guidance)
            _set_value(self.strength, frame.strength)
            self.batch.setValue(frame.batch)
            self.large_frame.setCurrentIndex(self.large_frame.findData(frame.large_frame))
            self.masked_content.setCurrentIndex(self.masked_content.findData(frame.masked_content))
            self.color_correction.setChecked(frame.color_correction)
            _set_value(self.refine_strength, frame.refine_strength)
            self.refine_strength.setEnabled(frame.large_frame == "two-pass")
            self.seed_lock.setChecked(frame.seed >= 0)
            self.seed.setValue(self.shown_seed())
        finally:
            self._loading = False
        self._update_prompt_note()
        self.words_note.check()
        self.refresh_mode()
        self._job_changed(self.ws.selected_frame_id)

    def shown_seed(self) -> int:
        """The seed field shows the locked seed; unlocked, the seed of what is on screen: the
        selected candidate, else the last run, else the newest accepted patch; -1 ("random") when
        the frame has none of these."""
        selected = self.frame
        if selected is None:
            return self.draft.seed
        if selected.seed >= 0:
            return selected.seed
        staging = self.gen.staging.get(selected.id)
        if staging is not None and staging.current is not None:
            return staging.current.seed
        if selected.id in self.gen.last_seed:
            return self.gen.last_seed[selected.id]
        patches = [p for p in self.ws.doc.patches if p.frame_id == selected.id]
        return patches[-1].seed if patches else -1

    def refresh_mode(self) -> None:
        """Show the mode each frame will run in (it follows the pixels and mask under it)."""
        for frame_id, item in self.ws.scene.frame_items.items():
            if frame_id in self.ws.doc.frames:
                item.set_mode_label(self.gen.mode_for(frame_id).value)
        frame = self.frame
        if frame is None:
            self.mode_label.setText("")
            self.prompt_note.setText(EMPTY_PROMPT_NOTE)
            self.strength.setEnabled(True)
            self.masked_content.setEnabled(True)  # for the next frame
            self.color_correction.setEnabled(True)
            return
        mode = self.gen.mode_for(frame.id)
        self.mode_label.setText(f"Mode: {MODE_TEXT[mode]}")
        self.prompt_note.setText(EMPTY_PROMPT_NOTES[mode])
        self.strength.setEnabled(mode != Mode.TXT2IMG)
        # Only a brushed mask has masked content (an outpaint's empty pixels are always filled).
        brushed = mode is Mode.INPAINT or (
            mode is Mode.OUTPAINT and bool(self.ws.doc.mask.read(*frame.rect).any())
        )
        self.masked_content.setEnabled(brushed)
        self.color_correction.setEnabled(brushed)

    def _large_frame_edited(self) -> None:
        value = self.large_frame.currentData()
        self.refine_strength.setEnabled(value == "two-pass")
        self._commit(large_frame=value)

    def _frame_changed(self, frame_id: str) -> None:
        if frame_id == self.ws.selected_frame_id and not self._commit_timer.isActive():
            self.refresh()

    def _text_edited(self) -> None:
        self._update_prompt_note()
        if self._loading:
            return
        for edit in (self.prompt, self.negative):
            # QPlainTextEdit has no maxLength: cut what was typed or pasted past the cap (undoable).
            if edit.document().characterCount() - 1 > limits.MAX_PROMPT_CHARS:
                cursor = edit.textCursor()
                cursor.setPosition(limits.MAX_PROMPT_CHARS)
                cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
                cursor.removeSelectedText()
                self.status.setText(
                    f"A prompt holds at most {limits.MAX_PROMPT_CHARS:,} characters; the rest was cut."
                )
        self._commit_timer.start()

    def _update_prompt_note(self) -> None:
        self.prompt_note.setVisible(not self.prompt.toPlainText().strip())

    def commit_text(self) -> None:
        """Write pending prompt edits to the frame now (before a run, on focus loss), the region
        prompts' too."""
        self.regions.commit_text()
        self._commit_frame_text()

    def _commit_frame_text(self) -> None:
        self._commit_timer.stop()
        self._commit(
            label="Edit prompt", prompt=self.prompt.toPlainText(), negative_prompt=self.negative.toPlainText()
        )

    def _seed_edited(self, *_args: object) -> None:
        if self._loading:
            return
        if self.seed_lock.isChecked() and self.seed.value() < 0:
            # Locking "random": lock a real seed instead.
            self._loading = True
            self.seed.setValue(random.randint(0, MAX_SEED))
            self._loading = False
        self._commit(seed=int(self.seed.value()) if self.seed_lock.isChecked() else -1)

    def roll_seed(self) -> None:
        self._loading = True  # one undo step for lock + value
        self.seed_lock.setChecked(True)
        self.seed.setValue(random.randint(0, MAX_SEED))
        self._loading = False
        self._seed_edited()

    def _commit(self, label: str = "Edit frame", **changes: object) -> None:
        if self._loading:
            return
        frame = self.ws.doc.frames.get(self._shown_id) if self._shown_id else None
        if self._shown_id and frame is None:
            return  # the frame went (deleted, another document): nothing to edit
        current = frame or self.draft
        if all(getattr(current, k) == v for k, v in changes.items()):
            return
        try:
            if frame is None:
                self.draft = self.draft.with_changes(**changes)
            else:
                self.ws.doc.update_frame(frame.id, label, **changes)
        except ValueError as exc:
            self.status.setText(str(exc))

    # -- progress --------------------------------------------------------------------------------
    def _job_changed(self, frame_id: str) -> None:
        if frame_id != self.ws.selected_frame_id:
            self.cancel_button.setEnabled(self.gen.busy)
            return
        text, fraction = self.gen.status_text(frame_id) if frame_id else ("", None)
        jobs = self.gen.active_jobs(frame_id) if frame_id else []
        self.cancel_button.setEnabled(self.gen.busy)
        self.progress.setVisible(bool(jobs))
        self.progress.setValue(int((fraction or 0.0) * 1000))
        failed = [j for j in self.gen.jobs.values() if j.frame.id == frame_id and j.state == JobState.FAILED]
        if not text and failed:
            text = f"Failed: {failed[-1].message}"
        self.status.setText(text)
        if frame_id and not self.seed_lock.isChecked():
            self._loading = True
            self.seed.setValue(self.shown_seed())
            self._loading = False


def _set_value(box: QDoubleSpinBox, value: float) -> None:
    """Show ``value`` unless the box already holds it: setting it again rewrites the text (0.5 ->
    "0.50") under the typing cursor, so "0.55" typed key by key would end as 0.5."""
    if abs(box.value() - value) > 1e-9:
        box.setValue(value)

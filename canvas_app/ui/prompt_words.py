"""The note under a prompt that names, before the run, the words the chosen model does not know
(the built-in model's word list) or knows but ignores (its position words).

core.vocabulary decides, from the model's files, as the engine does from the loaded tokenizer: the
note and the run's notices name the same words. The frame's prompt and each region's prompt get the
same note (a region's prompt is read by the same tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QLineEdit, QPlainTextEdit

from canvas_app.core.vocabulary import FRAME_LABELS, words_for_model

# Typing is checked after this pause, not on every key: a word half typed is not yet a finding.
CHECK_DELAY_MS = 300

PromptEdit = QPlainTextEdit | QLineEdit


class PromptWordsNote(QLabel):
    """Follows ``prompt`` and ``negative`` (after a short pause) and ``model()``; hidden when every
    word counts. ``labels`` name the two boxes in the sentences (core.vocabulary's)."""

    def __init__(
        self,
        prompt: PromptEdit,
        negative: PromptEdit,
        model: Callable[[], str],
        labels: tuple[str, str] = FRAME_LABELS,
        object_name: str = "prompt_words",
    ) -> None:
        super().__init__(objectName=object_name)
        self.setWordWrap(True)
        self.setStyleSheet("color: #b36b00;")  # a warning, not an error: the run still works
        self.hide()
        self._prompt, self._negative, self._model, self._labels = prompt, negative, model, labels
        self._timer = QTimer(self, singleShot=True, interval=CHECK_DELAY_MS)
        self._timer.timeout.connect(self.check)
        for edit in (prompt, negative):
            # A lambda: QLineEdit's textChanged carries the text, which QTimer.start must not get.
            edit.textChanged.connect(lambda *_args: self._timer.start())

    def check(self) -> None:
        """Read the prompts now (a frame, region or model change shows at once)."""
        self._timer.stop()
        words = words_for_model(self._model())
        prompt, negative = _text(self._prompt), _text(self._negative)
        sentences = [_sentence(n) for n in words.notices(prompt, negative, self._labels)]
        self.setText("\n".join(sentences))
        self.setVisible(bool(sentences))


def _text(edit: PromptEdit) -> str:
    return edit.toPlainText() if isinstance(edit, QPlainTextEdit) else edit.text()


def _sentence(notice: str) -> str:
    return notice[:1].upper() + notice[1:] + "."

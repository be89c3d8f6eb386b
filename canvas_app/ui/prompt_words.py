"""The note under the prompt that names, before the run, the words the chosen model does not know
(the built-in model's word list) or knows but ignores (its position words).

core.vocabulary decides, from the model's files, as the engine does from the loaded tokenizer: the
note and the run's notices name the same words.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from canvas_app.core.vocabulary import words_for_model

# Typing is checked after this pause, not on every key: a word half typed is not yet a finding.
CHECK_DELAY_MS = 300


class PromptWordsNote(QLabel):
    """Follows ``prompt`` and ``negative`` (after a short pause) and ``model()``; hidden when every
    word counts."""

    def __init__(self, prompt: QPlainTextEdit, negative: QPlainTextEdit, model: Callable[[], str]) -> None:
        super().__init__(objectName="prompt_words")
        self.setWordWrap(True)
        self.setStyleSheet("color: #b36b00;")  # a warning, not an error: the run still works
        self.hide()
        self._prompt, self._negative, self._model = prompt, negative, model
        self._timer = QTimer(self, singleShot=True, interval=CHECK_DELAY_MS)
        self._timer.timeout.connect(self.check)
        for edit in (prompt, negative):
            edit.textChanged.connect(self._timer.start)

    def check(self) -> None:
        """Read the prompts now (a frame or model change shows at once)."""
        self._timer.stop()
        words = words_for_model(self._model())
        prompt, negative = self._prompt.toPlainText(), self._negative.toPlainText()
        sentences = [_sentence(n) for n in words.notices(prompt, negative)]
        self.setText("\n".join(sentences))
        self.setVisible(bool(sentences))


def _sentence(notice: str) -> str:
    return notice[:1].upper() + notice[1:] + "."

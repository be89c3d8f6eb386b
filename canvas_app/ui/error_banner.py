"""A dismissable message strip above the canvas for errors a person can act on."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

HIDE_AFTER_MS = 15000


class ErrorBanner(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("error_banner")
        self.setStyleSheet("#error_banner { background: #7a2230; } QLabel { color: white; padding: 4px; }")
        self.setAutoFillBackground(True)
        self.label = QLabel()
        self.label.setWordWrap(True)
        close = QToolButton(text="✕", toolTip="Dismiss")
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        row.addWidget(self.label, 1)
        row.addWidget(close)
        self._timer = QTimer(self, singleShot=True, interval=HIDE_AFTER_MS)
        self._timer.timeout.connect(self.hide)
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, message: str) -> None:
        self.label.setText(message)
        self.show()
        self._timer.start()

"""Edit > Settings: every app setting in one dialog, applied as soon as OK or Apply is pressed.

Nothing waits for a restart: a new device or engine server rebuilds the engine in its thread (queued runs finish
first), a new preview rate reaches the running engine, a new autosave interval restarts the timer,
and the default model is loaded at once and used by the next frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
)

from canvas_app.ui.autosave import DEFAULT_INTERVAL_S, INTERVAL_KEY
from canvas_app.ui.model_picker import list_models
from canvas_app.ui.settings import MODEL_KEY, EngineChoice

if TYPE_CHECKING:
    from canvas_app.ui.main_window import MainWindow

DEVICES = (
    ("Automatic", ""),
    ("CPU", "cpu"),  # bf16 where the processor computes it natively, else fp32
    ("CPU, bf16", "cpu:bf16"),
    ("CPU, fp32", "cpu:fp32"),
    ("CUDA (NVIDIA)", "cuda"),
    ("Apple MPS", "mps"),
)
PREVIEW_RATES = (("Every step", 0.0), ("10 per second", 0.1), ("4 per second", 0.25), ("1 per second", 1.0))
MAX_AUTOSAVE_S = 3600


class SettingsDialog(QDialog):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self.window_ = window
        s = window.settings
        chosen = s.engine()

        # Engine: this computer, or an engine server (canvas-app serve) by URL and token.
        self.engine = QComboBox(objectName="engine")
        self.engine.addItem("This computer", "local")
        self.engine.addItem("Engine server", "server")
        self.engine.setCurrentIndex(1 if chosen.url else 0)
        self.server_url = QLineEdit(
            chosen.url, objectName="server_url", placeholderText="http://gpu-box:8000"
        )
        self.server_token = QLineEdit(chosen.token, objectName="server_token")
        self.server_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.server_token.setPlaceholderText("printed by canvas-app serve")
        self.engine_problem = QLabel(objectName="engine_problem")
        self.engine_problem.setStyleSheet("color: #c0392b")
        self.engine_problem.hide()
        self.engine.currentIndexChanged.connect(self._engine_kind_changed)
        self.device = QComboBox(objectName="device")
        for label, value in DEVICES:
            self.device.addItem(label, value)
        self.device.setCurrentIndex(max(0, self.device.findData(chosen.device)))
        self.preview = QComboBox(objectName="preview_rate")
        rate = chosen.preview_s
        for label, value in PREVIEW_RATES:
            self.preview.addItem(label, value)
        nearest = min(range(len(PREVIEW_RATES)), key=lambda i: abs(PREVIEW_RATES[i][1] - rate))
        self.preview.setCurrentIndex(nearest)
        self.compile = QCheckBox(
            "Compile the model (faster steps; the first run of each size compiles for minutes)"
        )
        self.compile.setObjectName("compile")
        self.compile.setChecked(chosen.compile)
        self.autosave = QSpinBox(minimum=0, maximum=MAX_AUTOSAVE_S, suffix=" s", objectName="autosave")
        self.autosave.setSpecialValueText("off")
        self.autosave.setValue(int(s.get(INTERVAL_KEY, DEFAULT_INTERVAL_S)))
        self.model = QComboBox(objectName="default_model")
        for entry in list_models(s.added_models()):
            self.model.addItem(entry.label, entry.model)
        current = s.get(MODEL_KEY, "builtin")
        if self.model.findData(current) < 0:
            self.model.addItem(current.rsplit("/", 1)[-1], current)
        self.model.setCurrentIndex(self.model.findData(current))

        form = QFormLayout()
        form.addRow("Engine", self.engine)
        form.addRow("Server URL", self.server_url)
        form.addRow("Token", self.server_token)
        form.addRow("Device", self.device)
        form.addRow("Live previews", self.preview)
        form.addRow("Speed", self.compile)
        form.addRow("Autosave every", self.autosave)
        form.addRow("Model for new frames", self.model)
        note = QLabel("Changes apply at once; runs already queued finish on the old device.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons = buttons
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.engine_problem)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self._engine_kind_changed()

    def _engine_kind_changed(self) -> None:
        server = self.engine.currentData() == "server"
        self.server_url.setEnabled(server)
        self.server_token.setEnabled(server)
        self.device.setEnabled(not server)  # the server picks its own device
        self.compile.setEnabled(not server)

    def accept(self) -> None:
        if self.apply():
            super().accept()

    def _server_choice(self) -> tuple[str, str] | None:
        """(url, token) to use ("" url: this computer), or None after saying what is wrong."""
        from canvas_app.engine.remote import parse_url  # no torch, no ray: plain HTTP

        if self.engine.currentData() != "server":
            return "", ""
        url, token = self.server_url.text().strip().rstrip("/"), self.server_token.text().strip()
        problem = ""
        try:
            parse_url(url)
        except ValueError as error:
            problem = str(error)
        if not problem and not token:
            problem = "the engine server needs its token (canvas-app serve prints it)"
        self.engine_problem.setText(problem)
        self.engine_problem.setVisible(bool(problem))
        return None if problem else (url, token)

    def apply(self) -> bool:
        """Store the values and put the changed ones into effect. False (and nothing applied)
        when the engine server fields are not usable."""
        w, s = self.window_, self.window_.settings
        server = self._server_choice()
        if server is None:
            self.server_url.setFocus()
            return False
        wanted = EngineChoice(
            device=str(self.device.currentData()),
            preview_s=float(self.preview.currentData()),
            url=server[0],
            token=server[1],
            compile=self.compile.isChecked(),
        )
        if wanted != s.engine():
            s.set_engine(wanted)
            w.engine_link.apply_settings()
        interval = float(self.autosave.value())
        if interval != s.get(INTERVAL_KEY, DEFAULT_INTERVAL_S):
            s.set(INTERVAL_KEY, interval)
            if w.autosaver is not None:
                w.autosaver.set_interval(interval)
        model = self.model.currentData()
        if model and model != s.get(MODEL_KEY, "builtin"):
            w.load_model(model)
        s.sync()
        return True

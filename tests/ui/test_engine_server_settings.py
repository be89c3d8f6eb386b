"""Settings > Engine: an engine server by URL and token, applied at once; faults reach the banner
once and the app keeps working (issue 18). The server here is a plain HTTP server speaking the real
wire format around the fake engine (the Ray Serve server has its own tests in tests/serve)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_engine import FakeEngine
from helpers import ScriptedDialogs, drag, make_settings
from PySide6.QtWidgets import QDialogButtonBox

from canvas_app.app import make_engine_factory
from canvas_app.engine.api import CancelToken
from canvas_app.engine.wire import decode_request, encode_event
from canvas_app.ui.main_window import MainWindow
from canvas_app.ui.settings_dialog import SettingsDialog
from canvas_app.workers import EngineWorker

TOKEN = "server-token-for-tests"
MODELS = [
    {"name": "builtin", "label": "Built-in", "native_size": 128},
    {"name": "sd15-studio", "label": "SD 1.5 (studio)", "native_size": 512},
]


class WireServer:
    """POST /generate runs the fake engine and streams its events as NDJSON; GET /info."""

    def __init__(self) -> None:
        self.engine = FakeEngine(step_delay=0.005, device="remote")
        engine = self.engine

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _json(self, status: int, data: object) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._json(401, {"error": "wrong token"})
                if self.path == "/models":
                    return self._json(200, MODELS)
                self._json(200, {"device": engine.describe_device()})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._json(401, {"error": "wrong token"})
                if self.path.startswith("/cancel/"):
                    return self._json(200, {})
                _job, request = decode_request(body)
                self.send_response(200)
                self.end_headers()
                engine.generate(request, lambda e: self.wfile.write(encode_event(e)), CancelToken())

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[WireServer]:
    srv = WireServer()
    yield srv
    srv.stop()


@pytest.fixture
def window(qtbot, tmp_path):
    local = FakeEngine(step_delay=0.005)
    worker = EngineWorker(lambda: local)

    def maker(device: str, preview: float, url: str = "", token: str = ""):
        # The app's own maker for a server (a real RemoteEngine); the fake for this computer.
        return make_engine_factory(device, preview, url, token) if url else (lambda: local)

    w = MainWindow(worker, make_settings(tmp_path), dialogs=ScriptedDialogs(), engine_factory=maker)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    w.worker.start()
    qtbot.waitUntil(lambda: w.engine_label.text() == "Engine: fake CPU", timeout=5000)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def open_settings(qtbot, window) -> SettingsDialog:
    window.settings_action.trigger()
    dialog = [d for d in window.findChildren(SettingsDialog) if d.isVisible()][-1]
    qtbot.waitExposed(dialog)
    return dialog


def choose_server(qtbot, dialog: SettingsDialog, url: str, token: str) -> None:
    dialog.engine.setCurrentIndex(dialog.engine.findData("server"))
    assert dialog.server_url.isEnabled() and not dialog.device.isEnabled()
    dialog.server_url.clear()
    qtbot.keyClicks(dialog.server_url, url)
    dialog.server_token.clear()
    qtbot.keyClicks(dialog.server_token, token)


def generate_once(qtbot, window) -> None:
    drag(window, "frame", [(0, 0), (128, 128)])
    window.generate()


def test_switching_to_a_server_applies_at_once_and_runs_there(qtbot, window, server) -> None:
    dialog = open_settings(qtbot, window)
    choose_server(qtbot, dialog, server.url, TOKEN)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    port = server.url.rsplit(":", 1)[1]
    qtbot.waitUntil(
        lambda: window.engine_label.text() == f"Engine: server 127.0.0.1:{port} (fake REMOTE)", timeout=5000
    )
    assert window.settings.get("engine/server_url", "") == server.url
    # The model picker lists the server's models; a new frame takes the server model's size.
    picker = window.frame_panel.model
    qtbot.waitUntil(lambda: picker.count() == 2 and picker.itemData(1) == "sd15-studio", timeout=5000)
    assert picker.itemText(1) == "SD 1.5 (studio)"
    picker.setCurrentIndex(1)
    picker.activated.emit(1)  # as a click on the item does
    qtbot.waitUntil(lambda: "Loading sd15-studio: ready" in window.statusBar().currentMessage(), timeout=5000)
    window.frame_panel.prompt.setPlainText("a studio model frame")
    rid = window.generate()
    assert rid is not None
    frame = window.ws.doc.frames[window.ws.selected_frame_id]
    assert (frame.w, frame.h, frame.model) == (512, 512, "sd15-studio")
    qtbot.waitUntil(lambda: window.frame_panel.has_staged(), timeout=20000)
    assert [r.model for r in server.engine.requests] == ["sd15-studio"]
    # ... and back to this computer, again without a restart.
    dialog = open_settings(qtbot, window)
    assert dialog.server_url.text() == server.url
    dialog.engine.setCurrentIndex(dialog.engine.findData("local"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: window.engine_label.text() == "Engine: fake CPU", timeout=5000)
    assert window.settings.get("engine/server_url", "x") == ""


def test_a_bad_url_or_missing_token_is_said_and_nothing_changes(qtbot, window) -> None:
    dialog = open_settings(qtbot, window)
    choose_server(qtbot, dialog, "gpu-box:8000", "t")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.isVisible() and dialog.engine_problem.isVisible()
    assert "http://HOST:PORT" in dialog.engine_problem.text()
    choose_server(qtbot, dialog, "http://gpu-box:8000", "")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    assert dialog.isVisible() and "token" in dialog.engine_problem.text()
    assert window.settings.get("engine/server_url", "") == ""
    dialog.reject()


def test_server_down_is_one_message_and_the_app_recovers_when_it_is_back(qtbot, window, server) -> None:
    url = server.url
    server.stop()
    dialog = open_settings(qtbot, window)
    choose_server(qtbot, dialog, url, TOKEN)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: "not connected" in window.engine_label.text(), timeout=5000)
    messages: list[str] = []
    window.gen.error.connect(messages.append)
    generate_once(qtbot, window)
    qtbot.waitUntil(lambda: bool(messages) and not window.worker.busy, timeout=10000)
    qtbot.wait(200)
    assert len(messages) == 1 and "cannot reach the engine server" in messages[0]
    assert not window.frame_panel.has_staged()

"""One real Ray Serve engine server on 127.0.0.1 for this folder's tests (module scope: Ray's start
is the slow part). Skipped, with the reason, when ray[serve] is not installed."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("CANVAS_APP_DEVICE", "cpu")

pytest.importorskip(
    "ray.serve", reason='the engine server tests need ray[serve]: pip install "canvas-app[serve]"'
)

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
def server() -> Iterator[object]:
    from canvas_app.serve import launch

    srv = launch.start(TOKEN, port=free_port(), device="cpu", num_cpus=2)
    try:
        yield srv
    finally:
        srv.stop()


def run(engine, request, cancel=None, on_event=None):
    from canvas_app.engine.api import CancelToken

    events = []

    def emit(event):
        events.append(event)
        if on_event is not None:
            on_event(event)

    engine.generate(request, emit, cancel or CancelToken())
    return events

"""Shared by the engine server tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import os
import socket

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("CANVAS_APP_DEVICE", "cpu")

try:  # the client side needs no ray; these tests run the server
    import ray.serve  # noqa: F401

    RAY_MISSING = ""
except ImportError as error:
    RAY_MISSING = f'the engine server tests need ray[serve] ({error}): pip install "canvas-app[serve]"'

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(engine, request, cancel=None, on_event=None):
    from canvas_app.engine.api import CancelToken

    events = []

    def emit(event):
        events.append(event)
        if on_event is not None:
            on_event(event)

    engine.generate(request, emit, cancel or CancelToken())
    return events

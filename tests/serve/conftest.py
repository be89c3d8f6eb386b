"""One real Ray Serve engine server on 127.0.0.1 for this folder's tests (one for the folder: Ray's
start is the slow part). The tests skip, with the reason, when ray[serve] is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_support import RAY_MISSING, TOKEN, free_port


@pytest.fixture(scope="package")
def server() -> Iterator[object]:
    if RAY_MISSING:
        pytest.skip(RAY_MISSING)
    from canvas_app.serve import launch

    srv = launch.start(TOKEN, port=free_port(), device="cpu", num_cpus=2)
    try:
        yield srv
    finally:
        srv.stop()

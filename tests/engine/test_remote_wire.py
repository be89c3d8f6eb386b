"""The NDJSON event codec, and RemoteEngine's transport faults against a plain HTTP server that
misbehaves on purpose (no ray needed: the faults are in the network, not the engine)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from canvas_app.core.image_metadata import REQUEST_KEY
from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Failed,
    Finished,
    GenerationRequest,
    Loading,
    Mode,
    Progress,
    Started,
)
from canvas_app.engine.remote import RemoteEngine, parse_url
from canvas_app.engine.wire import (
    PING,
    WireError,
    decode_event,
    decode_request,
    encode_event,
    encode_request,
)

TERMINAL = (Finished, Cancelled, Failed)


def roundtrip(event, request=None):
    line = encode_event(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return decode_event(line, 42, request)


def test_every_event_survives_the_wire() -> None:
    assert roundtrip(Loading(0, "loading model builtin", 0.5)) == Loading(42, "loading model builtin", 0.5)
    assert roundtrip(Started(0, 20, 3)) == Started(42, 20, 3)
    assert roundtrip(Cancelled(0, 7)) == Cancelled(42, 7)
    assert roundtrip(Failed(0, "out of memory on cuda")) == Failed(42, "out of memory on cuda")
    preview = np.random.default_rng(0).integers(0, 256, (32, 24, 3), dtype=np.uint8)
    got = roundtrip(Progress(0, 3, 20, 1, (8, 16, 96, 128), preview))
    assert (got.step, got.total, got.tile, got.tile_box) == (3, 20, 1, (8, 16, 96, 128))
    assert np.array_equal(got.preview, preview)
    assert roundtrip(Progress(0, 4, 20, 0, (0, 0, 8, 8), None)).preview is None
    assert decode_event(PING, 1) is None


def test_results_are_exact_and_carry_our_metadata() -> None:
    request = GenerationRequest(prompt="a red house", seed=9, batch=2, steps=4)
    images = [np.random.default_rng(i).integers(0, 256, (64, 48, 3), dtype=np.uint8) for i in range(2)]
    line = encode_event(Finished(0, images, [9, 10], request, ["a notice"]))
    got = decode_event(line, 5, request)
    assert isinstance(got, Finished) and got.request is request
    assert got.seeds == [9, 10] and got.notices == ["a notice"]
    for a, b in zip(got.candidates, images):
        assert np.array_equal(a, b)
    import base64
    import io

    png = base64.b64decode(json.loads(line)["candidates"][1])
    with Image.open(io.BytesIO(png)) as img:
        assert json.loads(img.text[REQUEST_KEY])["seed"] == 10


@pytest.mark.parametrize(
    "line",
    [
        b"<html>502 Bad Gateway</html>\n",
        b'{"type": "progress"}\n',
        b'{"type": "what"}\n',
        b"[1, 2]\n",
        b'{"type": "finished", "seeds": [1], "notices": [], "candidates": ["not png"]}\n',
    ],
)
def test_anything_else_is_a_wire_error(line: bytes) -> None:
    with pytest.raises(WireError):
        decode_event(line, 1)


def test_requests_with_pixels_survive_and_bad_bodies_are_refused() -> None:
    init = np.random.default_rng(1).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    mask = (np.arange(256).reshape(16, 16) % 2 * 255).astype(np.uint8)
    request = GenerationRequest(
        prompt="p", mode=Mode.INPAINT, width=16, height=16, init_image=init, mask=mask
    )
    job, back = decode_request(encode_request("abc123", request))
    assert job == "abc123" and back == request
    assert np.array_equal(back.init_image, init) and np.array_equal(back.mask, mask)
    for body in (
        b"nope",
        b"{}",
        json.dumps({"job": "../x", "request": {}}).encode(),
        json.dumps({"job": "a", "request": {"colour": 1}}).encode(),
    ):
        with pytest.raises(ValueError):
            decode_request(body)


def test_urls() -> None:
    assert parse_url("http://gpu-box:8000/") == ("http", "gpu-box", 8000, "")
    assert parse_url("https://studio.example/canvas") == ("https", "studio.example", 443, "/canvas")
    for bad in ("gpu-box:8000", "ftp://x", "http://"):
        with pytest.raises(ValueError):
            parse_url(bad)


# -- transport faults -------------------------------------------------------------------------------
Behaviour = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture()
def fake_server() -> Iterator[Callable[[Behaviour], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Behaviour) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                behaviour(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def stream(handler: BaseHTTPRequestHandler, lines: list[bytes]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/x-ndjson")
    handler.end_headers()
    for line in lines:
        handler.wfile.write(line)
        handler.wfile.flush()


def run_remote(url: str, cancel: CancelToken | None = None, **kw) -> list:
    events: list = []
    RemoteEngine(url, "t", **kw).generate(
        GenerationRequest(prompt="x"), events.append, cancel or CancelToken(), 3
    )
    ends = [e for e in events if isinstance(e, TERMINAL)]
    assert len(ends) == 1 and events[-1] is ends[0], events
    return events


def test_stream_cut_mid_run_fails_once_with_a_clear_message(fake_server) -> None:
    url = fake_server(
        lambda h: stream(
            h, [encode_event(Started(0, 10, 1)), encode_event(Progress(0, 1, 10, 0, (0, 0, 8, 8)))]
        )
    )
    events = run_remote(url)
    assert [type(e) for e in events] == [Started, Progress, Failed]
    assert "lost the connection" in events[-1].message and "restarting" in events[-1].message
    assert events[-1].request_id == 3


def test_half_a_line_then_silence_fails_once(fake_server) -> None:
    url = fake_server(lambda h: stream(h, [encode_event(Started(0, 10, 1)), b'{"type": "progr']))
    events = run_remote(url)
    assert isinstance(events[-1], Failed) and "cut-off" in events[-1].message


def test_a_silent_server_times_out(fake_server) -> None:
    gate = threading.Event()
    url = fake_server(lambda h: (stream(h, [encode_event(Started(0, 10, 1))]), gate.wait(5)))
    events = run_remote(url, read_timeout_s=0.5)
    gate.set()
    assert isinstance(events[-1], Failed) and "lost the connection" in events[-1].message


def test_a_proxy_error_page_is_reported(fake_server) -> None:
    def bad_gateway(h: BaseHTTPRequestHandler) -> None:
        h.send_response(502)
        h.end_headers()
        h.wfile.write(b"<html>upstream gone</html>")

    events = run_remote(fake_server(bad_gateway))
    assert isinstance(events[-1], Failed) and "answered 502" in events[-1].message


def test_cancel_without_a_confirmation_drops_the_stream(fake_server) -> None:
    """A server that never confirms: after the grace the client drops the stream and the run ends
    Cancelled (once), at the last step it saw."""
    gate = threading.Event()

    def slow(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/cancel/"):
            h.send_response(200)
            h.end_headers()
            h.wfile.write(b"{}")
            return
        stream(h, [encode_event(Started(0, 10, 1)), encode_event(Progress(0, 2, 10, 0, (0, 0, 8, 8)))])
        gate.wait(10)

    cancel = CancelToken()
    url = fake_server(slow)
    timer = threading.Timer(0.3, cancel.cancel)
    timer.start()
    events = run_remote(url, cancel, cancel_grace_s=0.3)
    gate.set()
    assert events[-1] == Cancelled(3, 2)


def test_the_client_side_needs_no_ray() -> None:
    import subprocess
    import sys

    code = (
        "import sys, canvas_app.engine.remote, canvas_app.cli_remote, canvas_app.cli;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'starlette', 'fastapi')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_server_token_is_made_once_owner_only_and_reused(tmp_path) -> None:
    import stat

    from canvas_app.serve.launch import ServeError, load_or_create_token

    path = tmp_path / "config" / "server-token"
    token, created = load_or_create_token(path)
    assert created and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == (token, False)
    path.write_text("short\n")
    with pytest.raises(ServeError, match="shorter than 16"):
        load_or_create_token(path)

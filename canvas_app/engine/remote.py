"""RemoteEngine: the Engine contract over HTTP, to a ``canvas-app serve`` server (Ray Serve).

Standard library only (http.client), so the desktop app needs neither ray nor a web framework. One
POST /generate per run; the server answers with a stream of NDJSON events (``engine.wire``). Every
way a run can go wrong -- server down, wrong token, a restart or a network drop mid-stream, a bad
line -- ends the run with exactly one Failed, and the next run connects afresh.

Cancel: a watcher thread sees the CancelToken, calls POST /cancel/{job} and, if the server has not
confirmed within ``cancel_grace_s``, drops the stream (the server stops on the disconnect too).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    EngineEvent,
    Failed,
    Finished,
    GenerationRequest,
    Progress,
)
from canvas_app.engine.wire import MAX_LINE, WireError, decode_event, encode_request

# The server pings every few seconds (engine.serve_app.PING_S); silence this long means the
# network or the server is gone.
READ_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
CANCEL_GRACE_S = 5.0
_TERMINAL = (Finished, Cancelled, Failed)


class RemoteError(Exception):
    """A call to the server failed; the message is for a person."""


@dataclass(frozen=True)
class ServerModel:
    name: str  # what a request's ``model`` names
    label: str
    native_size: int


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix); raises ValueError for anything but http(s)://host[:port]."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the engine URL must look like http://HOST:PORT, not {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


class RemoteEngine:
    """Runs requests on a server. Calls are independent: a failed one leaves nothing to reset."""

    def __init__(
        self,
        url: str,
        token: str,
        read_timeout_s: float = READ_TIMEOUT_S,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self.url = url.strip().rstrip("/")
        self.scheme, self.host, self.port, self.prefix = parse_url(url)
        self.token = token.strip()
        self.read_timeout_s = read_timeout_s
        self.cancel_grace_s = cancel_grace_s
        self._device = ""

    # -- plain calls -------------------------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, timeout: float = CONNECT_TIMEOUT_S * 2) -> Any:
        conn = self._connection(timeout)
        try:
            conn.request(method, self.prefix + path, headers=self._headers())
            response = conn.getresponse()
            body = response.read(1 << 20)
        except (OSError, http.client.HTTPException) as error:
            raise RemoteError(self._unreachable(error)) from None
        finally:
            conn.close()
        if response.status != 200:
            raise RemoteError(self._refused(response.status, body))
        try:
            return json.loads(body)
        except ValueError:
            raise RemoteError(f"the server at {self.url} sent an unreadable answer") from None

    def info(self) -> dict[str, Any]:
        """The server's device, replica and version (checks the token too)."""
        data = self._call("GET", "/info")
        if not isinstance(data, dict):
            raise RemoteError(f"the server at {self.url} sent an unreadable answer")
        return data

    def models(self) -> list[ServerModel]:
        data = self._call("GET", "/models")
        try:
            return [ServerModel(str(m["name"]), str(m["label"]), int(m["native_size"])) for m in data]
        except (KeyError, TypeError, ValueError):
            raise RemoteError(f"the server at {self.url} sent an unreadable model list") from None

    def load(self, model: str, inpaint: bool = False, loras: tuple[tuple[str, float], ...] = ()) -> None:
        """Picking a model: check that the server offers it (it loads at the first run there)."""
        offered = self.models()
        short = model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if not any(model == m.name or short == m.name for m in offered):
            names = ", ".join(m.name for m in offered)
            raise RemoteError(f"the engine server has no model {short!r} (it offers: {names})")
        if loras:
            raise RemoteError("LoRAs are not available on the engine server yet")

    def describe_device(self) -> str:
        """Which server and device run, for the status bar. Never raises: a server that is down
        or refuses the token is named with the reason, and the engine stays usable, so a run
        after the server comes back (or the token is fixed) just works."""
        if self._device:
            return self._device
        where = f"server {self.host}:{self.port}"
        try:
            info = self.info()
        except RemoteError as error:
            return f"{where} (not connected: {error})"
        self._device = f"{where} ({info.get('device', 'unknown device')})"
        return self._device

    # -- generation --------------------------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        cancel: CancelToken,
        request_id: int = 0,
    ) -> None:
        run = _Run(self, request, emit, cancel, request_id)
        run.execute()

    # -- messages ----------------------------------------------------------------------------------
    def _unreachable(self, error: BaseException) -> str:
        if isinstance(error, ConnectionRefusedError):
            why = "nothing answers there (is the server running?)"
        elif isinstance(error, socket.timeout | TimeoutError):
            why = "it did not answer in time"
        elif isinstance(error, socket.gaierror):
            why = "the host name is unknown"
        else:
            why = f"{type(error).__name__}: {error}"
        return f"cannot reach the engine server at {self.url}: {why}"

    def _refused(self, status: int, body: bytes) -> str:
        if status in (401, 403):
            return f"the engine server at {self.url} refused the token (check it in Settings)"
        try:
            detail = str(json.loads(body).get("error", ""))
        except (ValueError, AttributeError):
            detail = ""
        detail = detail or body[:200].decode("utf-8", "replace").strip() or "no details"
        return f"the engine server at {self.url} answered {status}: {detail}"


class _Run:
    """One generation: the stream, the cancel watcher, and the rule that exactly one terminal event
    reaches ``emit``."""

    def __init__(
        self,
        engine: RemoteEngine,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        cancel: CancelToken,
        request_id: int,
    ) -> None:
        self.engine, self.request, self._emit, self.cancel = engine, request, emit, cancel
        self.request_id = request_id
        self.job = uuid.uuid4().hex
        self.ended = False
        self.step = 0
        self.conn: http.client.HTTPConnection | None = None
        self.done = threading.Event()
        self.cancel_sent = threading.Event()

    def emit(self, event: EngineEvent) -> None:
        if self.ended:
            return
        if isinstance(event, _TERMINAL):
            self.ended = True
        elif isinstance(event, Progress):
            self.step = event.step
        self._emit(event)

    def execute(self) -> None:
        watcher = threading.Thread(target=self._watch_cancel, name="remote-cancel", daemon=True)
        watcher.start()
        try:
            self._stream()
        except Exception as error:  # noqa: BLE001 - the contract: a failed run emits, never raises
            if self.cancel_sent.is_set():
                self.emit(Cancelled(self.request_id, self.step))
            elif isinstance(error, RemoteError):
                self.emit(Failed(self.request_id, str(error)))
            elif isinstance(error, WireError):
                self.emit(Failed(self.request_id, f"{error} at {self.engine.url}"))
            elif isinstance(error, OSError | http.client.HTTPException):
                self.emit(Failed(self.request_id, self._lost(error)))
            else:
                self.emit(
                    Failed(self.request_id, f"remote generation failed: {type(error).__name__}: {error}")
                )
        finally:
            self.done.set()
            if self.conn is not None:
                self.conn.close()
        if not self.ended:
            if self.cancel_sent.is_set():
                self.emit(Cancelled(self.request_id, self.step))
            else:
                self.emit(Failed(self.request_id, self._lost(None)))

    def _lost(self, error: BaseException | None) -> str:
        if isinstance(error, ConnectionRefusedError | socket.gaierror):
            return self.engine._unreachable(error)
        why = f" ({type(error).__name__})" if error is not None else ""
        return (
            f"lost the connection to the engine server at {self.engine.url} during the run{why}: "
            "the server may be restarting or the network dropped; try again"
        )

    def _stream(self) -> None:
        if self.cancel.cancelled:
            self.emit(Cancelled(self.request_id, 0))
            return
        engine = self.engine
        body = encode_request(self.job, self.request)
        self.conn = conn = engine._connection(CONNECT_TIMEOUT_S)
        try:
            conn.connect()
        except OSError as error:
            raise RemoteError(engine._unreachable(error)) from None
        assert conn.sock is not None
        conn.sock.settimeout(engine.read_timeout_s)
        conn.request("POST", engine.prefix + "/generate", body=body, headers=engine._headers())
        response = conn.getresponse()
        if response.status != 200:
            raise RemoteError(engine._refused(response.status, response.read(1 << 16)))
        while not self.ended:
            line = response.readline(MAX_LINE)
            if not line:
                return  # the stream ended: execute() reports it unless a terminal event came
            if not line.endswith(b"\n"):
                raise WireError("a cut-off event from the server")
            event = decode_event(line, self.request_id, self.request)
            if event is not None:
                self.emit(event)

    def _watch_cancel(self) -> None:
        while not self.done.wait(0.05):
            if self.cancel.cancelled:
                break
        else:
            return
        self.cancel_sent.set()
        try:
            self.engine._call("POST", f"/cancel/{self.job}", timeout=CONNECT_TIMEOUT_S)
        except RemoteError:
            pass  # dropping the stream below stops the server too
        # The server confirms with a Cancelled event on the stream within one step; past the
        # grace the stream is dropped and the run ends here.
        if not self.done.wait(self.engine.cancel_grace_s):
            conn = self.conn
            if conn is not None and conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

"""The Ray Serve deployment: each replica holds one LocalDiffusersEngine and serves

    POST /generate        a request (JSON, PNG pixels) -> NDJSON engine events (engine.wire)
    POST /cancel/{job}    stop that run within one step, whichever replica runs it
    GET  /models          the models this server offers (serve.catalog)
    GET  /info            device, replica, version (token checked: the client's connection test)
    GET  /health          {"status": "ok"} without a token, for load balancers

Every route but /health needs ``Authorization: Bearer TOKEN``, compared in constant time. A run
stops within one step when the client calls /cancel or goes away (Ray Serve cancels the streaming
handler: asyncio.CancelledError here).

Importing this module imports ray; nothing on the desktop side does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from canvas_app.engine.api import Cancelled, CancelToken, EngineEvent, Failed, Finished
from canvas_app.engine.wire import PING, decode_request, encode_event
from canvas_app.serve import catalog

PING_S = 5.0  # keep-alive on a quiet stream (client READ_TIMEOUT_S is 30 s)
POLL_S = 0.2  # how often a running job looks at the shared cancel board
BOARD_NAME = "canvas-app-cancel-board"
_TERMINAL = (Finished, Cancelled, Failed)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@ray.remote(num_cpus=0)
class CancelBoard:
    """Job ids cancelled through /cancel: the replica that took the call may not run the job."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}

    def cancel(self, job: str) -> None:
        now = time.monotonic()
        self._ids = {k: t for k, t in self._ids.items() if now - t < 3600}  # forget old ids
        self._ids[job] = now

    def is_cancelled(self, job: str) -> bool:
        return job in self._ids


@serve.deployment(name="canvas-engine", max_ongoing_requests=16, health_check_period_s=10)
class EngineDeployment:
    def __init__(
        self,
        digest: str,
        models_dir: str | None = None,
        device: str | None = None,
        preview_interval_s: float = 0.1,
    ) -> None:
        from canvas_app.engine.local import EngineSettings, LocalDiffusersEngine

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._digest = digest
        self._catalog = catalog.scan(Path(models_dir) if models_dir else None)
        self._engine = LocalDiffusersEngine(
            EngineSettings(device=device or None, preview_interval_s=preview_interval_s)
        )
        self._device = self._engine.describe_device()
        # One run at a time per replica, first come first served; the engine thread is separate
        # so that /cancel, /models and keep-alives are answered during a run.
        self._slot = asyncio.Semaphore(1)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._jobs: dict[str, CancelToken] = {}
        self._board = CancelBoard.options(  # type: ignore[attr-defined]
            name=BOARD_NAME, get_if_exists=True, lifetime="detached"
        ).remote()
        self._replica = serve.get_replica_context().replica_tag if _in_serve() else "local"

    # -- routing -----------------------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        if path == "/health" and request.method == "GET":
            return JSONResponse({"status": "ok"})
        if not self._authorised(request):
            return JSONResponse({"error": "missing or wrong token"}, status_code=401)
        if path == "/generate" and request.method == "POST":
            return await self._generate(request)
        if path.startswith("/cancel/") and request.method == "POST":
            return await self._cancel(path.removeprefix("/cancel/"))
        if path == "/models" and request.method == "GET":
            return JSONResponse([e.to_dict() for e in self._catalog])
        if path == "/info" and request.method == "GET":
            from canvas_app import __version__

            return JSONResponse({"device": self._device, "replica": self._replica, "version": __version__})
        return JSONResponse({"error": f"no route {request.method} {path}"}, status_code=404)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        return hmac.compare_digest(token_digest(given.strip()), self._digest)

    async def _cancel(self, job: str) -> Response:
        token = self._jobs.get(job)
        if token is not None:
            token.cancel()
        else:
            await self._board.cancel.remote(job)
        return JSONResponse({"cancelled": job})

    # -- generation --------------------------------------------------------------------------------
    async def _generate(self, http: Request) -> Response:
        try:
            job, request = decode_request(await http.body())
            entry = catalog.resolve(self._catalog, request.model)
            if request.loras:
                raise ValueError("LoRAs are not available on the engine server yet")
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        local = request.with_changes(model=entry.path)
        return StreamingResponse(self._stream(job, request, local), media_type="application/x-ndjson")

    async def _stream(self, job: str, request: Any, local: Any) -> Any:
        token = CancelToken()
        self._jobs[job] = token
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()

        def emit(event: EngineEvent) -> None:  # the engine thread
            loop.call_soon_threadsafe(events.put_nowait, event)

        acquired = False
        try:
            while not acquired:  # waiting for the slot: keep the stream alive, honour a cancel
                try:
                    await asyncio.wait_for(self._slot.acquire(), PING_S)
                    acquired = True
                except asyncio.TimeoutError:
                    if await self._board.is_cancelled.remote(job):
                        token.cancel()
                        break
                    yield PING
            if token.cancelled:
                if acquired:
                    self._slot.release()
                yield encode_event(Cancelled(0, 0))
                return
            run = loop.run_in_executor(self._pool, self._engine.generate, local, emit, token, 0)
            # The slot is free only when the engine thread is, even if this stream is cancelled.
            run.add_done_callback(lambda _: self._slot.release())
            last_ping = last_poll = time.monotonic()
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), POLL_S)
                except asyncio.TimeoutError:
                    event = None
                now = time.monotonic()
                if now - last_poll >= POLL_S and not token.cancelled:
                    last_poll = now
                    if await self._board.is_cancelled.remote(job):
                        token.cancel()
                if event is None:
                    if now - last_ping >= PING_S:
                        last_ping = now
                        yield PING
                    continue
                if isinstance(event, Finished):
                    event = replace(event, request=request)  # metadata names the client's model
                yield encode_event(event)
                last_ping = now
                if isinstance(event, _TERMINAL):
                    break
            await run
        except (asyncio.CancelledError, GeneratorExit):
            token.cancel()  # the client went away: the step loop stops at its next step
            raise
        finally:
            token.cancel()
            self._jobs.pop(job, None)


def _in_serve() -> bool:
    try:
        serve.get_replica_context()
        return True
    except Exception:  # noqa: BLE001 - outside a replica (unit use)
        return False


def build_app(
    token: str,
    models_dir: str | None = None,
    replicas: int = 1,
    gpus_per_replica: float = 0.0,
    cpus_per_replica: float = 1.0,
    device: str | None = None,
) -> Any:
    """The bound Serve application for ``serve.run``."""
    options: dict[str, Any] = {"num_cpus": cpus_per_replica}
    if gpus_per_replica:
        options["num_gpus"] = gpus_per_replica
    return EngineDeployment.options(  # type: ignore[attr-defined]
        num_replicas=replicas, ray_actor_options=options
    ).bind(token_digest(token), models_dir, device)

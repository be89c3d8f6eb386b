"""The wire format between RemoteEngine and the server: engine events as NDJSON lines.

One JSON object per line, ``{"type": ..., ...}``. Images travel as base64 PNG: previews small and
fast (compress level 1), results with our generation metadata so a saved byte stream is the same
PNG the local engine's CLI would write. ``ping`` lines keep an idle stream (a long model load)
alive and let the client notice a dead network. Neither side of this module needs ray.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
from PIL import Image

from canvas_app.core.export import encode_png
from canvas_app.core.image_metadata import png_text
from canvas_app.engine.api import (
    Cancelled,
    EngineEvent,
    Failed,
    Finished,
    GenerationRequest,
    Loading,
    Progress,
    Started,
)

PING = b'{"type": "ping"}\n'
# The largest line a client accepts: a batch of big results is a few tens of MB of base64.
MAX_LINE = 512 * 1024 * 1024


class WireError(ValueError):
    """A line that is not one of our events (a proxy's error page, a cut-off stream)."""


def _png_b64(array: np.ndarray, metadata: dict[str, str] | None = None) -> str:
    return base64.b64encode(encode_png(array, 1, metadata)).decode("ascii")


def _array(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text, validate=True))) as img:
        img.load()
        return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "RGBA") else img).copy()


def encode_event(event: EngineEvent) -> bytes:
    """One NDJSON line (with its newline) for an engine event."""
    data: dict[str, Any]
    if isinstance(event, Loading):
        data = {"type": "loading", "stage": event.stage, "fraction": event.fraction}
    elif isinstance(event, Started):
        data = {"type": "started", "total_steps": event.total_steps, "tiles": event.tiles}
    elif isinstance(event, Progress):
        data = {
            "type": "progress",
            "step": event.step,
            "total": event.total,
            "tile": event.tile,
            "tile_box": list(event.tile_box),
            "preview": None if event.preview is None else _png_b64(event.preview),
        }
    elif isinstance(event, Finished):
        request = event.request
        data = {
            "type": "finished",
            "seeds": list(event.seeds),
            "notices": list(event.notices),
            "candidates": [
                _png_b64(image, png_text(request, seed) if request is not None else None)
                for image, seed in zip(event.candidates, event.seeds, strict=True)
            ],
        }
    elif isinstance(event, Cancelled):
        data = {"type": "cancelled", "step": event.step}
    elif isinstance(event, Failed):
        data = {"type": "failed", "message": event.message}
    else:  # pragma: no cover - EngineEvent is closed
        raise TypeError(f"not an engine event: {event!r}")
    return json.dumps(data).encode("utf-8") + b"\n"


def decode_event(
    line: bytes | str, request_id: int, request: GenerationRequest | None = None
) -> EngineEvent | None:
    """The event on one line, with the caller's request id (the server does not know it), or None
    for a keep-alive ping. Raises WireError for anything else."""
    try:
        data = json.loads(line)
        kind = data["type"]
        if kind == "ping":
            return None
        if kind == "loading":
            return Loading(request_id, str(data["stage"]), float(data["fraction"]))
        if kind == "started":
            return Started(request_id, int(data["total_steps"]), int(data["tiles"]))
        if kind == "progress":
            x, y, w, h = (int(v) for v in data["tile_box"])
            preview = None if data.get("preview") is None else _array(data["preview"])
            return Progress(
                request_id, int(data["step"]), int(data["total"]), int(data["tile"]), (x, y, w, h), preview
            )
        if kind == "finished":
            candidates = [_array(text) for text in data["candidates"]]
            seeds = [int(s) for s in data["seeds"]]
            if len(candidates) != len(seeds):
                raise WireError("the result has a different number of images and seeds")
            return Finished(request_id, candidates, seeds, request, [str(n) for n in data["notices"]])
        if kind == "cancelled":
            return Cancelled(request_id, int(data["step"]))
        if kind == "failed":
            return Failed(request_id, str(data["message"]))
    except WireError:
        raise
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise WireError(f"unreadable event from the server ({type(error).__name__})") from None
    raise WireError(f"unknown event type {kind!r} from the server")


def encode_request(job: str, request: GenerationRequest) -> bytes:
    """The body of POST /generate: the job id (for /cancel) and the request with PNG pixels."""
    return json.dumps({"job": job, "request": request.to_dict()}).encode("utf-8")


def decode_request(body: bytes) -> tuple[str, GenerationRequest]:
    """Raises ValueError with a readable message for a malformed body."""
    try:
        data = json.loads(body)
        job = str(data["job"])
        request = GenerationRequest.from_dict(data["request"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"malformed request ({type(error).__name__}: {error})") from None
    except OSError as error:  # an unreadable PNG inside
        raise ValueError(f"malformed image in the request: {error}") from None
    if not job or len(job) > 64 or not job.replace("-", "").isalnum():
        raise ValueError("malformed job id")
    return job, request

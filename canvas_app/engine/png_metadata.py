"""PNG text chunks for generated images: A1111's ``parameters`` (readable by other tools) and our
own JSON chunk holding the whole request, so an image can be regenerated exactly."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from canvas_app.engine.api import GenerationRequest, Mode

PARAMETERS_KEY = "parameters"
REQUEST_KEY = "canvas-app-request"


def a1111_parameters(request: GenerationRequest, seed: int, model_name: str | None = None) -> str:
    """The ``parameters`` text as AUTOMATIC1111 writes it."""
    fields = [
        ("Steps", str(request.steps)),
        ("Sampler", request.scheduler),
        ("CFG scale", f"{request.guidance:g}"),
        ("Seed", str(seed)),
        ("Size", f"{request.width}x{request.height}"),
        ("Model", model_name or request.model),
    ]
    if request.mode is not Mode.TXT2IMG:
        fields.append(("Denoising strength", f"{request.strength:g}"))
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields))
    return "\n".join(lines)


def _quote(value: str) -> str:
    return json.dumps(value) if ("," in value or ":" in value or "\n" in value) else value


def parse_parameters(text: str) -> dict[str, str]:
    """Read an A1111 ``parameters`` text back: prompt, negative prompt and the key: value fields."""
    lines = text.split("\n")
    last = lines[-1] if re.search(r"(^|, )Steps: ", lines[-1]) else ""
    body = lines[:-1] if last else lines
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    out = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(negative_lines)}
    for match in re.finditer(r'\s*([\w ]+):\s*("(?:\\.|[^"\\])*"|[^,]*)(?:,|$)', last):
        key, value = match.group(1).strip(), match.group(2).strip()
        out[key] = json.loads(value) if value.startswith('"') else value
    return out


def png_info(request: GenerationRequest, seed: int, model_name: str | None = None) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(request, seed, model_name))
    # The stored request reproduces exactly this image: its own seed, one candidate.
    own = request.with_changes(seed=seed, batch=1)
    info.add_itxt(REQUEST_KEY, own.to_json(), zip=True)
    return info


def write_png(
    path: Path, image: np.ndarray, request: GenerationRequest, seed: int, model_name: str | None = None
) -> None:
    """Write atomically: a reader never sees half a file, a failure leaves no file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            Image.fromarray(image).save(fh, format="PNG", pnginfo=png_info(request, seed, model_name))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_png_metadata(path: Path) -> tuple[dict[str, str], GenerationRequest | None]:
    """(parsed A1111 parameters or {}, our request or None) of a PNG."""
    with Image.open(path) as img:
        img.load()
        text: dict[str, Any] = dict(getattr(img, "text", {}) or {})
    params = parse_parameters(text[PARAMETERS_KEY]) if PARAMETERS_KEY in text else {}
    request = GenerationRequest.from_json(text[REQUEST_KEY]) if REQUEST_KEY in text else None
    return params, request

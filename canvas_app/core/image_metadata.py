"""Generation settings inside image files: written into every PNG we make (CLI and export) and read
back, bounded and range-checked, from an image someone drops on the canvas.

Two text chunks: A1111's ``parameters`` (readable by A1111, Forge, ComfyUI, civitai, sd-parsers)
and our own request JSON under ``REQUEST_KEY``, which keeps the exact text and our model string.
The reader prefers ours and falls back to ``parameters``; both paths go through the same checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from canvas_app import __version__
from canvas_app.core import limits
from canvas_app.core.a1111 import (
    PARAMETERS_KEY,
    SAMPLER_NAMES,
    a1111_sampler,
    format_infotext,
    parse_infotext,
    sampler_from_a1111,
)
from canvas_app.core.document import Document
from canvas_app.core.raster import Rect
from canvas_app.core.regions import Region, regions_from_json
from canvas_app.core.request import MASKED_CONTENT_MODES, GenerationRequest, Mode

__all__ = [
    "PARAMETERS_KEY",
    "REQUEST_KEY",
    "MetadataError",
    "RestoredSettings",
    "export_text",
    "match_model",
    "model_label",
    "png_text",
    "read_settings",
]

REQUEST_KEY = "canvas-app-request"
_MASKED = (Mode.INPAINT, Mode.OUTPAINT)
_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
_SIZE = re.compile(r"^(\d{1,6})x(\d{1,6})$")


class MetadataError(ValueError):
    """An image carries generation settings that cannot be used; the message is for a person."""


# -- writing ---------------------------------------------------------------------------------------------
def model_label(model: str) -> str:
    """A model as A1111's "Model" field names it: the checkpoint's name, no folder, no extension."""
    name = PurePosixPath(model.replace("\\", "/").rstrip("/")).name or model
    for suffix in _MODEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def png_text(request: GenerationRequest, seed: int, origin: tuple[int, int] = (0, 0)) -> dict[str, str]:
    """The text chunks of one generated image with seed ``seed``. ``origin`` is where the
    generation's top-left sits in the image written (a canvas export holds more than one)."""
    sampler, schedule = a1111_sampler(request.scheduler)
    fields: list[tuple[str, object]] = [
        ("Steps", request.steps),
        ("Sampler", sampler),
        ("Schedule type", schedule),
        ("CFG scale", f"{request.guidance:g}"),
        ("Seed", seed),
        ("Size", f"{request.width}x{request.height}"),
        ("Model", model_label(request.model)),
        ("Denoising strength", None if request.mode is Mode.TXT2IMG else f"{request.strength:g}"),
        # A1111's own key and values ("fill", "original"); only a masked generation has one.
        ("Masked content", request.masked_content if request.mode in _MASKED else None),
        # A1111 applies its color correction without writing it down; ours says when it was on.
        ("Color correction", "on" if request.color_correction and request.mode in _MASKED else None),
        ("Version", f"canvas-app {__version__}"),
    ]
    # Ours reproduces exactly this image: its own seed, one candidate; no pixels (the image is here).
    own = request.with_changes(seed=seed, batch=1, origin=tuple(origin), init_image=None, mask=None)
    return {
        PARAMETERS_KEY: format_infotext(request.prompt, request.negative_prompt, fields),
        REQUEST_KEY: own.to_json(include_pixels=False),
    }


def export_text(doc: Document, rect: Rect, frame_id: str | None = None) -> dict[str, str]:
    """The text chunks for an export of ``rect``: the latest generation accepted inside it (of frame
    ``frame_id`` when it has one there). Empty when nothing in ``rect`` was generated."""
    x, y, w, h = rect
    inside = [p for p in doc.patches if p.x < x + w and x < p.x + p.w and p.y < y + h and y < p.y + p.h]
    own = [p for p in inside if p.frame_id == frame_id]
    for patch in reversed(own or inside):
        try:
            request = GenerationRequest.from_json(patch.request_json)
        except (ValueError, TypeError):
            continue
        # The frame, not the crop with its context, is what the artist drew and gets back on drop;
        # its regions are kept relative to the frame too.
        dx, dy = request.origin[0] - patch.x, request.origin[1] - patch.y
        frame_sized = request.with_changes(
            width=patch.w, height=patch.h, regions=tuple(r.shifted(dx, dy) for r in request.regions)
        )
        return png_text(frame_sized, patch.seed, (patch.x - x, patch.y - y))
    return {}


# -- reading ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestoredSettings:
    """What an image says about how it was made, every value checked against ``core.limits``.

    ``values``: PromptFrame fields (seed, steps, guidance, strength, scheduler, batch, masked_content,
    color_correction) that passed;
    ``size``/``origin``: the generation's size and top-left in the image, when known; ``model``: the
    model as the image names it; ``notices``: what was cut, refused or not found, for the user.
    """

    prompt: str = ""
    negative_prompt: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    size: tuple[int, int] | None = None
    origin: tuple[int, int] = (0, 0)
    model: str | None = None
    notices: tuple[str, ...] = ()
    source: str = "A1111"
    # Regions of the generation, relative to its top-left (our own JSON only).
    regions: tuple[Region, ...] = ()

    def summary(self, max_prompt: int = 160) -> str:
        """A few lines for a question to the user (the prompt shortened)."""
        prompt = self.prompt if len(self.prompt) <= max_prompt else self.prompt[:max_prompt] + "…"
        parts = [f"{k} {self.values[k]}" for k in ("seed", "steps", "scheduler") if k in self.values]
        if self.size:
            parts.append(f"{self.size[0]}x{self.size[1]}")
        if self.model:
            parts.append(f"model {model_label(self.model)}")
        return f"“{prompt}”\n" + ", ".join(parts)


def read_settings(meta: Mapping[str, str]) -> RestoredSettings | None:
    """The settings an image's text chunks carry; None when it carries none. Raises MetadataError
    when it carries some that cannot be used (too long, damaged)."""
    problems: list[str] = []
    own = meta.get(REQUEST_KEY)
    if own:
        try:
            return _from_request_json(_bounded(own, "canvas-app settings"))
        except MetadataError as exc:
            problems.append(str(exc))
    text = meta.get(PARAMETERS_KEY)
    if text and text.strip():
        try:
            text = _bounded(text, "generation text")
            if text.lstrip().startswith("{"):
                return _from_request_json(text)
            return _from_infotext(text)
        except MetadataError as exc:
            problems.append(str(exc))
    if problems:
        raise MetadataError("; ".join(problems))
    return None


def match_model(name: str, choices: Iterable[tuple[str, str]]) -> str | None:
    """The model string among ``choices`` ((label, model) pairs, as in the picker) that ``name``
    names: the same string, else the same checkpoint name (case ignored). None when none does."""
    choices = list(choices)
    for _label, model in choices:
        if model == name:
            return model
    wanted = model_label(name).lower()
    for label, model in choices:
        if wanted in (label.lower(), model_label(model).lower()):
            return model
    return None


def _bounded(text: str, what: str) -> str:
    if len(text) > limits.MAX_METADATA_CHARS:
        raise MetadataError(
            f"the image's {what} is {len(text):,} characters long, more than the {limits.MAX_METADATA_CHARS:,} "
            "read; it was not restored"
        )
    return text


def _from_request_json(text: str) -> RestoredSettings:
    try:
        data = json.loads(text)
    except ValueError:
        raise MetadataError("the image's canvas-app settings are damaged") from None
    if not isinstance(data, dict):
        raise MetadataError("the image's canvas-app settings are damaged")
    checker = _Checker()
    for key in ("seed", "steps", "guidance", "strength", "batch", "scheduler"):
        if key in data:
            checker.take(key, data[key])
    # As in the A1111 text: only a masked generation says what its masked area started from.
    if data.get("mode") in [m.value for m in _MASKED]:
        for key in ("masked_content", "color_correction"):
            if key in data:
                checker.take(key, data[key])
    width, height, origin = data.get("width"), data.get("height"), data.get("origin", [0, 0])
    if isinstance(width, int) and isinstance(height, int) and _is_int(width) and _is_int(height):
        checker.size(width, height)
    if isinstance(origin, list) and len(origin) == 2 and all(_is_int(v) for v in origin):
        checker.origin = (int(origin[0]), int(origin[1]))
    model = data.get("model")
    regions: tuple[Region, ...] = ()
    try:
        regions = regions_from_json(data.get("regions"))
    except (TypeError, ValueError) as exc:
        checker.notices.append(f"the regions were not restored: {exc}")
    restored = checker.result(
        _text(data.get("prompt")),
        _text(data.get("negative_prompt")),
        model if isinstance(model, str) and model else None,
        "canvas-app",
    )
    return replace(restored, regions=regions)


def _from_infotext(text: str) -> RestoredSettings:
    info = parse_infotext(text)
    fields = info.fields
    checker = _Checker()
    for label, key, kind in (
        ("Steps", "steps", int),
        ("CFG scale", "guidance", float),
        ("Seed", "seed", int),
        ("Denoising strength", "strength", float),
        ("Batch size", "batch", int),
    ):
        if label in fields:
            try:
                checker.take(key, kind(fields[label]))
            except ValueError:
                checker.notices.append(f"{label} {fields[label][:40]!r} is not a number")
    if "Masked content" in fields:
        checker.take("masked_content", fields["Masked content"].strip().lower())
    if "Color correction" in fields:
        value = fields["Color correction"].strip().lower()
        checker.take("color_correction", {"on": True, "off": False}.get(value, value))
    if "Sampler" in fields:
        ours, notice = sampler_from_a1111(fields["Sampler"][:80], fields.get("Schedule type"))
        if ours is not None:
            checker.values["scheduler"] = ours
        if notice:
            checker.notices.append(notice)
    if "Size" in fields:
        match = _SIZE.match(fields["Size"])
        if match:
            checker.size(int(match.group(1)), int(match.group(2)))
        else:
            checker.notices.append(f"size {fields['Size'][:40]!r} is not WxH")
    model = fields.get("Model", "").strip() or None
    return checker.result(info.prompt, info.negative_prompt, model, "A1111")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class _Checker:
    """Collects values that pass the engine's bounds and a notice for each that does not."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.notices: list[str] = []
        self.size_wh: tuple[int, int] | None = None
        self.origin = (0, 0)

    def take(self, key: str, value: object) -> None:
        if key == "scheduler":
            canonical = next(
                (n for n in SAMPLER_NAMES if isinstance(value, str) and n.lower() == value.lower()), None
            )
            value = canonical or value
        problem = self._problem(key, value)
        if problem:
            self.notices.append(f"{problem}; not restored")
        else:
            self.values[key] = value

    def _problem(self, key: str, value: object) -> str | None:
        if key == "scheduler":
            return (
                None if value in SAMPLER_NAMES else f"the sampler {str(value)[:80]!r} is not available here"
            )
        if key == "color_correction":
            return (
                None if isinstance(value, bool) else f"color correction {str(value)[:40]!r} is not on or off"
            )
        if key == "masked_content":
            if value in MASKED_CONTENT_MODES:
                return None
            # A1111 also has "latent noise" and "latent nothing", which we do not run.
            return f"masked content {str(value)[:40]!r} is not available here (only {', '.join(MASKED_CONTENT_MODES)})"
        if key in ("guidance", "strength"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"{key} is not a number"
            return (limits.guidance_problem if key == "guidance" else limits.strength_problem)(float(value))
        if not _is_int(value):
            return f"{key} is not a whole number"
        assert isinstance(value, int)
        if key == "seed" and value == -1:  # A1111's and our "random"
            return None
        return {"seed": limits.seed_problem, "steps": limits.steps_problem, "batch": limits.batch_problem}[
            key
        ](value)

    def size(self, width: int, height: int) -> None:
        problem = limits.size_problem(width, height)
        if problem:
            self.notices.append(f"{problem}; the frame covers the image instead")
        else:
            self.size_wh = (width, height)

    def result(self, prompt: str, negative: str, model: str | None, source: str) -> RestoredSettings:
        texts = []
        for label, text in (("prompt", prompt), ("negative prompt", negative)):
            capped, cut = limits.cap_prompt(text)
            if cut:
                self.notices.append(
                    f"the {label} was {len(text):,} characters long; cut to {limits.MAX_PROMPT_CHARS:,}"
                )
            texts.append(capped)
        if model is not None and len(model) > 4096:
            self.notices.append("the model name is too long; not restored")
            model = None
        values = {k: (float(v) if k in ("guidance", "strength") else v) for k, v in self.values.items()}
        return RestoredSettings(
            texts[0], texts[1], values, self.size_wh, self.origin, model, tuple(self.notices), source
        )

"""Prompt frames (rectangles on the canvas with generation settings) and accepted patches."""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from canvas_app.core.limits import MAX_FRAME_SIDE, check_settings
from canvas_app.core.regions import Region, regions_from_json
from canvas_app.core.request import (
    BUILTIN_MODEL,
    DEFAULT_COLOR_CORRECTION,
    DEFAULT_GUIDANCE,
    DEFAULT_LARGE_FRAME,
    DEFAULT_MASKED_CONTENT,
    DEFAULT_REFINE_STRENGTH,
    DEFAULT_SCHEDULER,
    DEFAULT_STEPS,
    DEFAULT_STRENGTH,
    LARGE_FRAME_MODES,
    check_masked_content,
)

SNAP = 8


def snap(value: float) -> int:
    """Round to the nearest multiple of 8 (the latent grid of every model we run)."""
    return int(round(value / SNAP)) * SNAP


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class PromptFrame:
    """A rectangle on the canvas plus the settings of the generations made for it.

    Position and size are snapped to multiples of 8 on construction; the size is at least 8.
    ``seed`` -1 means "a new random seed for every generation".
    """

    x: int = 0
    y: int = 0
    w: int = 512
    h: int = 512
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    strength: float = DEFAULT_STRENGTH
    scheduler: str = DEFAULT_SCHEDULER
    model: str = BUILTIN_MODEL
    batch: int = 1
    # Larger than the model's native area: "two-pass" (compose, then refine at refine_strength) or
    # "tiled" (one pass in blended tiles; see core.request).
    large_frame: str = DEFAULT_LARGE_FRAME
    refine_strength: float = DEFAULT_REFINE_STRENGTH
    id: str = field(default_factory=new_id)
    # Parts of the frame with their own prompt (coordinates relative to the frame), in order: a
    # later region wins where two overlap equally. The frame's prompt is the background.
    regions: tuple[Region, ...] = ()
    # Inpaint only: what the masked pixels are before they are noised (core.request); projects saved
    # before the setting existed load as "original", what they ran with.
    masked_content: str = DEFAULT_MASKED_CONTENT
    # Inpaint only: keep the photo's low-frequency colours in the regenerated area (core.request).
    color_correction: bool = DEFAULT_COLOR_CORRECTION

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", regions_from_json(self.regions))
        check_masked_content(self.masked_content)
        if not isinstance(self.color_correction, bool):
            raise ValueError(f"color_correction must be true or false, not {self.color_correction!r}")
        object.__setattr__(self, "guidance", float(self.guidance))
        object.__setattr__(self, "strength", float(self.strength))
        object.__setattr__(self, "refine_strength", float(self.refine_strength))
        if self.large_frame not in LARGE_FRAME_MODES:
            raise ValueError(
                f"large_frame must be one of {', '.join(LARGE_FRAME_MODES)}, not {self.large_frame!r}"
            )
        if not (0.0 < self.refine_strength <= 1.0):
            raise ValueError(f"refine strength must be in (0, 1], not {self.refine_strength}")
        object.__setattr__(self, "x", snap(self.x))
        object.__setattr__(self, "y", snap(self.y))
        object.__setattr__(self, "w", max(SNAP, snap(self.w)))
        object.__setattr__(self, "h", max(SNAP, snap(self.h)))
        if not self.id or not isinstance(self.id, str):
            raise ValueError(f"frame id must be a non-empty string, got {self.id!r}")
        check_settings(self.steps, self.guidance, self.strength, self.batch)
        if max(self.w, self.h) > MAX_FRAME_SIDE:
            raise ValueError(f"a frame side is at most {MAX_FRAME_SIDE} px, got {self.w}x{self.h}")

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def with_changes(self, **changes: Any) -> PromptFrame:
        return replace(self, **changes)

    def moved_to(self, x: float, y: float) -> PromptFrame:
        return replace(self, x=int(round(x)), y=int(round(y)))

    def resized(self, x: float, y: float, w: float, h: float) -> PromptFrame:
        return replace(self, x=int(round(x)), y=int(round(y)), w=int(round(w)), h=int(round(h)))

    def visible_regions(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.visible)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["regions"] = [r.to_dict() for r in self.regions]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptFrame:
        _check_keys(cls, data)
        return cls(**data)


@dataclass(frozen=True)
class Patch:
    """An accepted generation written into the image: where, from which frame, with which request.

    ``request_json`` is ``GenerationRequest.to_json(include_pixels=False)`` with the candidate's
    actual seed, so a patch can be re-rolled from its frame with the same settings.
    """

    frame_id: str
    x: int
    y: int
    w: int
    h: int
    seed: int
    request_json: str
    created: float = 0.0
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if self.w < 1 or self.h < 1:
            raise ValueError(f"a patch needs a positive size, got {self.w}x{self.h}")

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Patch:
        _check_keys(cls, data)
        return cls(**data)


@dataclass
class ViewState:
    """Where the artist was looking: canvas point at the centre of the view and zoom factor."""

    center_x: float = 0.0
    center_y: float = 0.0
    zoom: float = 1.0
    active_frame: str | None = None

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.center_x, self.center_y, self.zoom)) or self.zoom <= 0:
            raise ValueError(f"view needs a finite centre and a positive zoom, got {self.to_dict()}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViewState:
        _check_keys(cls, data)
        return cls(**data)


# JSON types accepted for each annotation of the dataclasses above (bool is not an int here).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "str | None": (str, type(None)),
    "bool": (bool,),
}


def _check_keys(cls: type, data: dict[str, Any]) -> None:
    """Refuse unknown fields and values of the wrong JSON type (data read from files)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    types = {f.name: str(f.type) for f in fields(cls)}
    unknown = set(data) - set(types)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {', '.join(sorted(unknown))}")
    for key, value in data.items():
        allowed = _JSON_TYPES.get(types[key])
        wrong_bool = isinstance(value, bool) != (bool in (allowed or ()))
        if allowed is not None and (wrong_bool or not isinstance(value, allowed)):
            raise ValueError(f"{cls.__name__}: {key} must be {types[key]}, got {value!r}")

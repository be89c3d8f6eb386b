"""Regions: parts of a frame with their own prompt, composed into one generation.

A region is a box (x, y, w, h) relative to its frame's top-left corner, or a painted soft mask inside
that box, with a prompt (and optional negative). The frame's own prompt is the background. The engine
blends each region's noise prediction by the region's soft weight (``region_weights``, decided here
once for the engine, the tests and the bench alike).

In a ``PromptFrame`` the coordinates are relative to the frame; in a ``GenerationRequest`` they are
relative to the request's crop (the frame plus its context), see ``shifted``.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from PIL import Image

from canvas_app.core import limits

# Width (px) of the soft edge of a region box: predictions cross-fade over it so no seam forms.
DEFAULT_REGION_FEATHER = 8


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Region:
    """One region of a frame. ``mask_png``: base64 PNG (8-bit grey, 255 = fully this region) of a
    painted mask stretched over the box; empty for a plain box."""

    x: int = 0
    y: int = 0
    w: int = 64
    h: int = 64
    prompt: str = ""
    negative_prompt: str = ""
    visible: bool = True
    mask_png: str = ""
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"region: {name} must be an integer, got {value!r}")
            if not -limits.MAX_COORD <= value <= limits.MAX_COORD:
                raise ValueError(f"region: {name} {value} is outside the canvas")
        if self.w < 1 or self.h < 1:
            raise ValueError(f"a region needs a positive size, got {self.w}x{self.h}")
        for name in ("prompt", "negative_prompt"):
            text = getattr(self, name)
            if not isinstance(text, str):
                raise ValueError(f"region: {name} must be text")
            if len(text) > limits.MAX_REGION_PROMPT_CHARS:
                raise ValueError(
                    f"region: {name} is {len(text):,} characters long, more than the "
                    f"{limits.MAX_REGION_PROMPT_CHARS:,} allowed"
                )
        if not isinstance(self.visible, bool):
            raise ValueError("region: visible must be true or false")
        if not isinstance(self.mask_png, str) or len(self.mask_png) > limits.MAX_REGION_MASK_CHARS:
            raise ValueError(f"region: the mask is larger than {limits.MAX_REGION_MASK_CHARS:,} characters")
        if not isinstance(self.id, str) or not 0 < len(self.id) <= limits.MAX_ID_CHARS:
            raise ValueError(f"region: id must be 1 to {limits.MAX_ID_CHARS} characters")

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def with_changes(self, **changes: Any) -> Region:
        return replace(self, **changes)

    def shifted(self, dx: int, dy: int) -> Region:
        return replace(self, x=self.x + dx, y=self.y + dy)

    def mask(self) -> np.ndarray | None:
        """The painted mask (h x w of the stored image, uint8), or None for a plain box."""
        if not self.mask_png:
            return None
        try:
            data = base64.b64decode(self.mask_png, validate=True)
            with Image.open(io.BytesIO(data)) as img:
                if max(img.size) > limits.MAX_REGION_MASK_SIDE:
                    raise ValueError("too large")
                return np.asarray(img.convert("L")).copy()
        except (ValueError, OSError, binascii.Error) as exc:
            raise ValueError(f"region {self.prompt[:30]!r}: its mask is damaged ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Region:
        if isinstance(data, Region):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"a region must be an object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"region: unknown fields {', '.join(sorted(unknown))}")
        return cls(**data)


def encode_mask(mask: np.ndarray) -> str:
    """A painted mask (HxW uint8) as stored in a region: shrunk to at most MAX_REGION_MASK_SIDE a
    side (a soft mask loses nothing a person sees) and PNG-compressed."""
    if mask.ndim != 2:
        raise ValueError("a region mask is a single-channel image")
    h, w = mask.shape
    side = limits.MAX_REGION_MASK_SIDE
    if max(h, w) > side:
        scale = side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask.astype(np.uint8))).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def regions_from_json(items: Any) -> tuple[Region, ...]:
    """Regions from a JSON list (a project, a request, an image), counted before any is built."""
    if items is None:
        return ()
    if not isinstance(items, (list, tuple)):
        raise ValueError("regions must be a list")
    if len(items) > limits.MAX_REGIONS:
        raise ValueError(f"{len(items):,} regions, more than the {limits.MAX_REGIONS} a frame may hold")
    regions = tuple(Region.from_dict(item) for item in items)
    ids = [r.id for r in regions]
    if len(set(ids)) != len(ids):
        raise ValueError("two regions share an id")
    return regions


def region_weights(
    regions: tuple[Region, ...], width: int, height: int, feather: int = DEFAULT_REGION_FEATHER
) -> list[np.ndarray]:
    """One soft weight (height x width float32 in 0..1) per region, over a width x height area whose
    top-left is the regions' origin: the box (or the painted mask stretched over it), clipped to the
    area, with edges softened over about ``feather`` px. A region wholly outside gets all zeros."""
    out = []
    for region in regions:
        weight = np.zeros((height, width), np.float32)
        x0, y0 = max(region.x, 0), max(region.y, 0)
        x1, y1 = min(region.x + region.w, width), min(region.y + region.h, height)
        if x0 < x1 and y0 < y1:
            painted = region.mask()
            if painted is None:
                weight[y0:y1, x0:x1] = 1.0
            else:
                # Sample the stored mask over the visible part of the box only (the box may reach far
                # outside the area); nearest is enough, the blur below smooths it.
                mh, mw = painted.shape
                rows = ((np.arange(y0, y1) - region.y + 0.5) * mh / region.h).astype(np.int64)
                cols = ((np.arange(x0, x1) - region.x + 0.5) * mw / region.w).astype(np.int64)
                picked = painted[np.clip(rows, 0, mh - 1)][:, np.clip(cols, 0, mw - 1)]
                weight[y0:y1, x0:x1] = picked.astype(np.float32) / 255.0
            if feather > 0:
                # A box blur twice (kernel ~feather/2): a smooth ramp ~feather px wide centred on the edge.
                k = max(1, feather // 4) * 2 + 1
                for _ in range(2):
                    weight = np.asarray(cv2.blur(weight, (k, k), borderType=cv2.BORDER_REPLICATE), np.float32)
        out.append(weight)
    return out


def blend_weights(weights: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Normalised blend weights: (background, [one per region]) summing to 1 at every cell. A region
    at full weight owns its cells; the background fills what the regions leave (1 - the largest
    region weight); overlapping regions share."""
    if not weights:
        raise ValueError("no region weights to blend")
    stack = np.stack(weights)
    background = np.clip(1.0 - stack.max(axis=0), 0.0, 1.0)
    total = background + stack.sum(axis=0)
    total = np.maximum(total, 1e-6)
    return background / total, [w / total for w in stack]

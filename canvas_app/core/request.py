"""The frozen description of one generation: everything needed to reproduce it.

It lives in ``core`` (numpy only) so that the document can build requests without importing the
engine; ``canvas_app.engine.api`` re-exports it as part of the engine contract.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

import numpy as np
from PIL import Image

from canvas_app.core.regions import Region, regions_from_json

BUILTIN_MODEL = "builtin"
# Generation defaults shared by requests and prompt frames. Guidance 7.5: the built-in model follows
# its prompts visibly better than at 5 (see its model card).
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 7.5
DEFAULT_STRENGTH = 0.75
DEFAULT_SCHEDULER = "Euler a"
# A frame larger than the model's native area: "two-pass" composes it at about the native area, then
# refines it at full size (one picture); "tiled" denoises it in blended tiles at full size in one pass
# (each tile draws its own picture: wanted for textures and repeating panoramas).
LARGE_FRAME_MODES = ("two-pass", "tiled")
DEFAULT_LARGE_FRAME = "two-pass"
# Strength of the refining pass of "two-pass"; chosen by measurement (docs/benchmarks.md, coherence).
DEFAULT_REFINE_STRENGTH = 0.4
# What an inpaint starts from under the mask (A1111's "Masked content"): "original" noises the pixels
# that are there (to change them: the object stays recognisable at low strength); "fill" first fills
# the masked pixels from their surroundings (engine/infill.py, as outpainting fills empty pixels),
# then noises that (to remove something: the model starts from the background, not the object).
MASKED_CONTENT_MODES = ("original", "fill")
DEFAULT_MASKED_CONTENT = "original"
# Inpaint/outpaint: bring the regenerated area's low-frequency colour back to what the run started
# from (engine/images.correct_colours; A1111's "color correction"). Off by default: it also undoes a
# colour the prompt asks for ("a red ball"); on, it keeps a photo's colours where something is removed.
DEFAULT_COLOR_CORRECTION = False
# How regions' prompts are combined (engine/regions.py): "multidiffusion" blends each prompt's whole
# noise prediction by its region's weight (one UNet row per prompt); "attention" masks each prompt's
# text tokens to its region inside the cross-attention layers (two rows whatever the regions). The
# default is chosen by measurement (docs/benchmarks.md, regions): as good here, a third cheaper.
REGIONS_METHODS = ("multidiffusion", "attention")
DEFAULT_REGIONS_METHOD = "attention"
# Requests saved before the choice existed were made by blending predictions: read back, they still are.
LEGACY_REGIONS_METHOD = "multidiffusion"


# The generation settings a prompt frame carries into its requests, and a patch's lineage back into a
# frame on re-roll: one list, so a new setting reaches the frame plan, re-roll and upscale alike.
FRAME_SETTINGS = (
    "prompt",
    "negative_prompt",
    "steps",
    "guidance",
    "strength",
    "scheduler",
    "model",
    "batch",
    "large_frame",
    "refine_strength",
    "masked_content",
    "color_correction",
)


def frame_settings(source: Any, names: tuple[str, ...] = FRAME_SETTINGS) -> dict[str, Any]:
    """The named generation settings of a frame or a request, by name."""
    return {name: getattr(source, name) for name in names}


def check_masked_content(value: object) -> None:
    """Raise ValueError unless ``value`` is one of MASKED_CONTENT_MODES."""
    if value not in MASKED_CONTENT_MODES:
        raise ValueError(
            f"masked content must be one of {', '.join(MASKED_CONTENT_MODES)}, not {str(value)[:40]!r}"
        )


class Mode(str, Enum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"
    OUTPAINT = "outpaint"


@dataclass(frozen=True)
class TilePlan:
    """How a region larger than the model's native size is split: tile edge and overlap in pixels.

    ``tile_size`` 0 means "the model's native size" (resolved by the engine).
    """

    tile_size: int = 0
    overlap: int = 32


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """One generation. Pixel inputs are numpy arrays (init: HxWx3 or HxWx4 uint8, mask: HxW uint8,
    255 = regenerate). ``width``/``height`` are the output size in pixels (multiples of 8)."""

    prompt: str = ""
    negative_prompt: str = ""
    mode: Mode = Mode.TXT2IMG
    width: int = 128
    height: int = 128
    seed: int = 0
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    strength: float = DEFAULT_STRENGTH
    scheduler: str = DEFAULT_SCHEDULER
    model: str = BUILTIN_MODEL
    batch: int = 1
    tile_plan: TilePlan = field(default_factory=TilePlan)
    init_image: np.ndarray | None = None
    mask: np.ndarray | None = None
    # Where the crop sits on the canvas (x, y): core composites the result there at accept.
    origin: tuple[int, int] = (0, 0)
    # Feather radius (px) of the composite and whether to match colours at the seam (core, at accept).
    feather: int = 8
    color_match: bool = True
    loras: tuple[tuple[str, float], ...] = ()
    large_frame: str = DEFAULT_LARGE_FRAME
    refine_strength: float = DEFAULT_REFINE_STRENGTH
    # Regions with their own prompts, in the crop's coordinates (see core/regions.py); the prompt
    # above is the background.
    regions: tuple[Region, ...] = ()
    regions_method: str = DEFAULT_REGIONS_METHOD
    masked_content: str = DEFAULT_MASKED_CONTENT
    color_correction: bool = DEFAULT_COLOR_CORRECTION

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))
        check_masked_content(self.masked_content)
        if not isinstance(self.color_correction, bool):
            raise ValueError(f"color_correction must be true or false, not {self.color_correction!r}")
        if self.regions_method not in REGIONS_METHODS:
            raise ValueError(
                f"regions_method must be one of {', '.join(REGIONS_METHODS)}, not {self.regions_method!r}"
            )
        if self.large_frame not in LARGE_FRAME_MODES:
            raise ValueError(
                f"large_frame must be one of {', '.join(LARGE_FRAME_MODES)}, not {self.large_frame!r}"
            )
        object.__setattr__(self, "refine_strength", float(self.refine_strength))
        if isinstance(self.tile_plan, dict):
            object.__setattr__(self, "tile_plan", TilePlan(**self.tile_plan))
        object.__setattr__(self, "origin", tuple(self.origin))
        object.__setattr__(self, "loras", tuple((str(p), float(w)) for p, w in self.loras))
        object.__setattr__(self, "regions", regions_from_json(self.regions))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationRequest):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def with_changes(self, **changes: Any) -> GenerationRequest:
        return replace(self, **changes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self, include_pixels: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("init_image", "mask"):
                out[f.name] = _array_to_png_b64(value) if (include_pixels and value is not None) else None
            elif isinstance(value, Enum):
                out[f.name] = value.value
            elif isinstance(value, TilePlan):
                out[f.name] = asdict(value)
            elif f.name == "regions":
                out[f.name] = [r.to_dict() for r in value]
            elif isinstance(value, tuple):
                out[f.name] = [list(v) if isinstance(v, tuple) else v for v in value]
            else:
                out[f.name] = value
        return out

    def to_json(self, include_pixels: bool = True) -> str:
        return json.dumps(self.to_dict(include_pixels), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown request fields: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        if kwargs.get("regions") and "regions_method" not in kwargs:
            kwargs["regions_method"] = LEGACY_REGIONS_METHOD
        for key in ("init_image", "mask"):
            if kwargs.get(key) is not None:
                kwargs[key] = _png_b64_to_array(kwargs[key])
        if "loras" in kwargs:
            kwargs["loras"] = tuple(tuple(x) for x in kwargs["loras"])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        return cls.from_dict(json.loads(text))


def _array_to_png_b64(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png_b64_to_array(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text))) as img:
        return np.asarray(img).copy()

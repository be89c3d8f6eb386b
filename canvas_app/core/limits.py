"""Bounds on what a file, an import or a request may ask of us: one place for every count and range.

Everything read from disk (projects, OpenRaster files, PNG metadata) is checked against these before
objects are built, so that a small hostile file cannot make us allocate or loop for long. The
generation ranges are also the engine's (``engine.local.validate``) and the frame panel's, so a value
that was restored is one the engine will run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

# A prompt far longer than any model reads (CLIP sees 77 tokens; long-prompt chunking a few hundred
# words), yet short enough that a text box shows it at once. Longer text is cut, with a notice.
MAX_PROMPT_CHARS = 20_000
# Regions of one frame (each adds one prompt to every UNet batch, so a few dozen at most), their
# prompts (the text encoder reads 77 tokens; longer text is cut) and a painted soft mask, kept at
# most MAX_REGION_MASK_SIDE a side (it is blurred anyway) as a base64 PNG.
MAX_REGIONS = 16
MAX_REGION_PROMPT_CHARS = 2_000
MAX_REGION_MASK_SIDE = 128
MAX_REGION_MASK_CHARS = 32 * 1024
# Everything the regions of one request add to its JSON.
MAX_REGIONS_JSON_CHARS = MAX_REGIONS * (2 * MAX_REGION_PROMPT_CHARS + MAX_REGION_MASK_CHARS + 512)
# The most text of an image's generation metadata we look at: two full prompts, the regions and the
# settings.
MAX_METADATA_CHARS = 2 * MAX_PROMPT_CHARS + MAX_REGIONS_JSON_CHARS + 8_192

# The largest frame side: far beyond any model's reach, small enough that the crop of a frame
# read from a (possibly hostile) file still fits in memory.
MAX_FRAME_SIDE = 16384
MIN_STEPS, MAX_STEPS = 1, 1000
MIN_BATCH, MAX_BATCH = 1, 64
# Guidance (CFG scale) above this only burns the image; A1111's own slider stops at 30.
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 100.0
# Strength 0 would redraw nothing: the engine needs at least one step of noise.
MAX_STRENGTH = 1.0
# Seeds are unsigned 32-bit, as in A1111; the frame panel's field and the random seeds agree.
MAX_SEED = 2**32 - 1

# Scheduler and model names (a model may be a file path).
MAX_NAME_CHARS = 4096

# -- project file contents -----------------------------------------------------------------------
MAX_FRAMES = 10_000
MAX_PATCHES = 100_000
MAX_ID_CHARS = 64
# A patch's request JSON holds the prompts and settings, never pixels.
MAX_REQUEST_JSON_CHARS = 4 * MAX_PROMPT_CHARS + MAX_REGIONS_JSON_CHARS + 64 * 1024
# Regions in a whole project (each is one more object in its document.json).
MAX_PROJECT_REGIONS = 50_000
MAX_METADATA_ENTRIES = 1000
MAX_PROJECT_METADATA_CHARS = 64 * 1024
# Canvas coordinates: +-2**31 px is 50 km at 1 px = 0.1 mm, and keeps every product in int64.
MAX_COORD = 2**31

# -- memory --------------------------------------------------------------------------------------
# Used where the machine's memory cannot be read.
FALLBACK_PHYSICAL_BYTES = 8 * 2**30


def physical_memory_bytes() -> int:
    """Installed memory of this machine (a fixed 8 GiB where it cannot be read)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and page_size > 0:
            return int(pages) * int(page_size)
    except (AttributeError, ValueError, OSError):
        pass
    if os.name == "nt":  # pragma: no cover - Windows only
        return _windows_physical_memory() or FALLBACK_PHYSICAL_BYTES
    return FALLBACK_PHYSICAL_BYTES


def _windows_physical_memory() -> int:  # pragma: no cover - Windows only
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return int(status.ullTotalPhys)
    return 0


def default_pixel_memory_bytes() -> int:
    """How much decoded pixel data one file may bring in: half the installed memory, so the app,
    the model and the undo history still fit beside it."""
    return physical_memory_bytes() // 2


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def cap_prompt(text: str) -> tuple[str, bool]:
    """``text`` cut to MAX_PROMPT_CHARS, and whether it was cut."""
    if len(text) <= MAX_PROMPT_CHARS:
        return text, False
    return text[:MAX_PROMPT_CHARS], True


def steps_problem(steps: int) -> str | None:
    if not MIN_STEPS <= steps <= MAX_STEPS:
        return f"steps must be between {MIN_STEPS} and {MAX_STEPS}, not {steps}"
    return None


def batch_problem(batch: int) -> str | None:
    if not MIN_BATCH <= batch <= MAX_BATCH:
        return f"batch must be between {MIN_BATCH} and {MAX_BATCH}, not {batch}"
    return None


def guidance_problem(guidance: float) -> str | None:
    if not (math.isfinite(guidance) and MIN_GUIDANCE <= guidance <= MAX_GUIDANCE):
        return f"guidance must be between 0 and {MAX_GUIDANCE:g}, not {guidance}"
    return None


def strength_problem(strength: float) -> str | None:
    if not (math.isfinite(strength) and 0.0 < strength <= MAX_STRENGTH):
        return f"strength must be in (0, 1], not {strength}"
    return None


def seed_problem(seed: int) -> str | None:
    if not 0 <= seed <= MAX_SEED:
        return f"seed must be between 0 and {MAX_SEED}, not {seed}"
    return None


def size_problem(width: int, height: int) -> str | None:
    """A generation size: positive multiples of 8, at most MAX_FRAME_SIDE a side."""
    if width <= 0 or height <= 0 or width % 8 or height % 8:
        return f"size {width}x{height} is not a positive multiple of 8"
    if max(width, height) > MAX_FRAME_SIDE:
        return f"size {width}x{height} is too large: at most {MAX_FRAME_SIDE} pixels a side"
    return None


def check_settings(steps: int, guidance: float, strength: float, batch: int) -> None:
    """Raise ValueError naming the first setting outside the range a generation accepts."""
    problem = (
        steps_problem(steps)
        or batch_problem(batch)
        or guidance_problem(guidance)
        or strength_problem(strength)
    )
    if problem:
        raise ValueError(problem)


# -- checks --------------------------------------------------------------------------------------
_INT_RANGES: dict[str, tuple[int, int]] = {
    "steps": (MIN_STEPS, MAX_STEPS),
    "batch": (MIN_BATCH, MAX_BATCH),
    "seed": (-1, MAX_SEED),  # -1: a new random seed for every generation
    "x": (-MAX_COORD, MAX_COORD),
    "y": (-MAX_COORD, MAX_COORD),
    "w": (1, MAX_COORD),
    "h": (1, MAX_COORD),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "guidance": (MIN_GUIDANCE, MAX_GUIDANCE),
    "strength": (0.0, MAX_STRENGTH),  # 0 is refused by PromptFrame itself
    "refine_strength": (0.0, MAX_STRENGTH),
}
_TEXT_LIMITS: dict[str, int] = {
    "prompt": MAX_PROMPT_CHARS,
    "negative_prompt": MAX_PROMPT_CHARS,
    "scheduler": MAX_NAME_CHARS,
    "model": MAX_NAME_CHARS,
    "large_frame": MAX_NAME_CHARS,
    "masked_content": MAX_NAME_CHARS,
    "id": MAX_ID_CHARS,
    "frame_id": MAX_ID_CHARS,
    "request_json": MAX_REQUEST_JSON_CHARS,
}


def check_fields(values: Mapping[str, Any], what: str = "settings") -> None:
    """Raise ``ValueError`` naming the first value outside its range or too long.

    Covers the generation settings of a frame (steps, batch, seed, guidance, strength, size,
    position, prompts) and the text fields of a patch; keys it does not know are left to the
    caller. Values of the wrong type are left to the dataclasses' own checks.
    """
    for key, value in values.items():
        if isinstance(value, bool):
            continue
        if key in _INT_RANGES and isinstance(value, int):
            lo, hi = _INT_RANGES[key]
            if not lo <= value <= hi:
                raise ValueError(f"{what}: {key} {_short(value)} is outside {lo}..{hi}")
        elif key in _FLOAT_RANGES and isinstance(value, (int, float)):
            lo_f, hi_f = _FLOAT_RANGES[key]
            if not (math.isfinite(value) and lo_f <= value <= hi_f):
                raise ValueError(f"{what}: {key} {_short(value)} is outside {lo_f:g}..{hi_f:g}")
        elif key in _TEXT_LIMITS and isinstance(value, str) and len(value) > _TEXT_LIMITS[key]:
            raise ValueError(
                f"{what}: {key} is {len(value):,} characters long, more than the "
                f"{_TEXT_LIMITS[key]:,} allowed"
            )


def _short(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 128:
        return f"(a {value.bit_length()}-bit number)"
    text = repr(value)
    return text if len(text) <= 40 else text[:20] + "…" + text[-8:]

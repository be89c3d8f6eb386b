"""Bounds on what a file, an import or a request may ask of us: one place for every count and range.

Everything read from disk (projects, OpenRaster files, PNG metadata) is checked against these
before objects are built, so that a small hostile file cannot make us allocate or loop for long.
The generation ranges are also the engine's (``engine/local.py`` validates requests with them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

# -- generation settings (frames, requests, restored metadata) -----------------------------------
MAX_STEPS = 1000
MAX_BATCH = 64
MAX_GUIDANCE = 100.0
MAX_SEED = 2**32 - 1
# Far beyond what a text encoder reads (77 tokens); large enough for any prompt a person writes.
MAX_PROMPT_CHARS = 10_000
# Scheduler and model names (a model may be a file path).
MAX_NAME_CHARS = 4096

# -- project file contents -----------------------------------------------------------------------
MAX_FRAMES = 10_000
MAX_PATCHES = 100_000
MAX_ID_CHARS = 64
# A patch's request JSON holds the prompts and settings, never pixels.
MAX_REQUEST_JSON_CHARS = 4 * MAX_PROMPT_CHARS + 64 * 1024
MAX_METADATA_ENTRIES = 1000
MAX_METADATA_CHARS = 64 * 1024
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


# -- checks --------------------------------------------------------------------------------------
_INT_RANGES: dict[str, tuple[int, int]] = {
    "steps": (1, MAX_STEPS),
    "batch": (1, MAX_BATCH),
    "seed": (-1, MAX_SEED),  # -1: a new random seed for every generation
    "x": (-MAX_COORD, MAX_COORD),
    "y": (-MAX_COORD, MAX_COORD),
    "w": (1, MAX_COORD),
    "h": (1, MAX_COORD),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "guidance": (0.0, MAX_GUIDANCE),
    "strength": (0.0, 1.0),
}
_TEXT_LIMITS: dict[str, int] = {
    "prompt": MAX_PROMPT_CHARS,
    "negative_prompt": MAX_PROMPT_CHARS,
    "scheduler": MAX_NAME_CHARS,
    "model": MAX_NAME_CHARS,
    "id": MAX_ID_CHARS,
    "frame_id": MAX_ID_CHARS,
    "request_json": MAX_REQUEST_JSON_CHARS,
}


def check_settings(values: Mapping[str, Any], what: str = "settings") -> None:
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

"""Checks on the contents of a project file, run before anything is built from it.

Every count (objects, lists, frames, patches, tiles, entries) and every restored value is bounded
here (bounds in ``core/limits.py``), so a small hostile file fails in milliseconds.
"""

from __future__ import annotations

import json
import re
import zipfile
from typing import Any

import numpy as np

from canvas_app.core import limits
from canvas_app.core.frames import Patch, PromptFrame, ViewState
from canvas_app.core.raster import TILE_SIZE, TileKey

FORMAT_NAME = "canvas-app-project"
FORMAT_VERSION = 1
DOCUMENT_JSON = "canvas/document.json"
MAX_ENTRIES = 500_000
# Objects in document.json: the root, the view, the metadata, one per frame, region and patch.
MAX_JSON_OBJECTS = limits.MAX_FRAMES + limits.MAX_PROJECT_REGIONS + limits.MAX_PATCHES + 16
MAX_TILE_INDEX = limits.MAX_COORD // TILE_SIZE
# A JSON string literal (unrolled loop: linear time on any input).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


class ProjectError(ValueError):
    """A project file that cannot be read; the message says what is wrong with it."""


class OpenRasterNotProjectError(ProjectError):
    """The file is a plain OpenRaster image (Krita, GIMP, MyPaint), not a canvas project: import it."""


def parse_document_json(raw: bytes, entries: int, name: str) -> dict[str, Any]:
    """Parse document.json after bounding what it may build: objects and lists are counted on
    the raw bytes first (strings excluded), so a small file that lists millions of things fails
    in milliseconds instead of building them."""
    # Lists: the four top-level ones and one [tx, ty] per tile, and every tile is a zip entry.
    max_lists = entries + 16
    objects, lists = raw.count(b"{"), raw.count(b"[")
    if objects > MAX_JSON_OBJECTS or lists > max_lists:
        bare = _JSON_STRING.sub(b'""', raw)  # brackets inside prompts do not count
        objects, lists = bare.count(b"{"), bare.count(b"[")
    if objects > MAX_JSON_OBJECTS:
        raise ProjectError(
            f"{name} is damaged or hostile: {DOCUMENT_JSON} holds {objects:,} objects; a project holds "
            f"at most {limits.MAX_FRAMES:,} frames and {limits.MAX_PATCHES:,} patches"
        )
    if lists > max_lists:
        raise ProjectError(
            f"{name} is damaged or hostile: {DOCUMENT_JSON} holds {lists:,} lists for "
            f"{entries:,} archive entries (one per tile)"
        )
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers json.JSONDecodeError and integers of more than 4300 digits.
        raise ProjectError(f"{name} is damaged: {DOCUMENT_JSON} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ProjectError(f"{name} is damaged: {DOCUMENT_JSON} is not a JSON object")
    return meta


def document_parts(
    meta: dict[str, Any], name: str, notices: list[str]
) -> tuple[list[PromptFrame], list[Patch], ViewState, dict[str, str]]:
    """Frames, patches, view and metadata, each counted and range-checked before it is built.

    Values an older version could write but this one refuses are repaired instead, each with a
    line in ``notices``: a prompt past the cap is cut, a strength of 0 becomes the smallest step."""
    raw_frames = json_list(meta, "frames", name, limits.MAX_FRAMES)
    raw_patches = json_list(meta, "patches", name, limits.MAX_PATCHES)
    try:
        frames = []
        region_count = 0
        for i, item in enumerate(raw_frames):
            if isinstance(item, dict):
                repair_frame_fields(item, f"frame {i + 1}", notices)
                limits.check_fields(item, f"frame {i + 1}")
                regions = item.get("regions", [])
                # Counted before any is built; each region checks its own fields and bounds.
                region_count += len(regions) if isinstance(regions, list) else 0
                if region_count > limits.MAX_PROJECT_REGIONS:
                    raise ValueError(f"more than {limits.MAX_PROJECT_REGIONS:,} regions in all")
            try:
                frames.append(PromptFrame.from_dict(item))
            except ValueError as exc:
                raise ValueError(f"frame {i + 1}: {exc}") from None
        patches = []
        for i, item in enumerate(raw_patches):
            if isinstance(item, dict):
                repair_frame_fields(item, f"patch {i + 1}", notices)
                limits.check_fields(item, f"patch {i + 1}")
                if isinstance(item.get("created"), float) and not np.isfinite(item["created"]):
                    raise ValueError(f"patch {i + 1}: created is not a finite time")
            patches.append(Patch.from_dict(item))
        view_raw = meta.get("view", {})
        if isinstance(view_raw, dict):
            for key in ("center_x", "center_y"):
                value = view_raw.get(key, 0.0)
                if isinstance(value, (int, float)) and not abs(value) <= limits.MAX_COORD:
                    raise ValueError(f"view: {key} {value!r} is outside the canvas")
            limits.check_fields({"id": view_raw.get("active_frame") or ""}, "view")
        view = ViewState.from_dict(view_raw)
        metadata = meta.get("metadata", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("metadata must map names to strings")
        if len(metadata) > limits.MAX_METADATA_ENTRIES:
            raise ValueError(
                f"metadata has {len(metadata):,} entries, more than {limits.MAX_METADATA_ENTRIES}"
            )
        for key, value in metadata.items():
            if len(key) + len(value) > limits.MAX_PROJECT_METADATA_CHARS:
                raise ValueError(
                    f"metadata {key[:40]!r} is longer than {limits.MAX_PROJECT_METADATA_CHARS:,} characters"
                )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProjectError(f"{name} is damaged: {exc}") from None
    ids = [f.id for f in frames]
    if len(set(ids)) != len(ids):
        raise ProjectError(f"{name} is damaged: two frames share an id")
    return frames, patches, view, dict(metadata)


def check_entries(infos: list[zipfile.ZipInfo], name: str) -> None:
    if len(infos) > MAX_ENTRIES:
        raise ProjectError(f"{name} has {len(infos)} entries, more than the {MAX_ENTRIES} allowed")
    seen: set[str] = set()
    for info in infos:
        entry = info.filename
        parts = entry.split("/")
        if entry.startswith("/") or "\\" in entry or ":" in entry or ".." in parts or "\0" in entry:
            raise ProjectError(f"{name} is unsafe: entry {entry!r} points outside the archive")
        if entry in seen:
            raise ProjectError(f"{name} is damaged: entry {entry!r} appears twice")
        seen.add(entry)


def check_header(meta: dict[str, Any], name: str) -> None:
    if meta.get("format") != FORMAT_NAME:
        raise ProjectError(f"{name} is not a canvas project (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ProjectError(f"{name} is damaged: format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"{name} was saved by a newer canvas-app (project format {version}; this version reads up to "
            f"{FORMAT_VERSION}). Update canvas-app to open it."
        )
    if meta.get("tile_size") != TILE_SIZE:
        raise ProjectError(f"{name} uses tile size {meta.get('tile_size')!r}; this version reads {TILE_SIZE}")


def json_list(meta: dict[str, Any], key: str, name: str, limit: int | None = None) -> list[Any]:
    value = meta.get(key, [])
    if not isinstance(value, list):
        raise ProjectError(f"{name} is damaged: {key} is not a list")
    if limit is not None and len(value) > limit:
        raise ProjectError(
            f"{name} is damaged or hostile: it lists {len(value):,} {key}, more than {limit:,}"
        )
    return value


def tile_keys(meta: dict[str, Any], key: str, name: str) -> list[TileKey]:
    out: list[TileKey] = []
    for item in json_list(meta, key, name):
        if not (
            isinstance(item, list)
            and len(item) == 2
            and all(type(v) is int and abs(v) <= MAX_TILE_INDEX for v in item)
        ):
            raise ProjectError(f"{name} is damaged: {key} holds {str(item)[:60]}, not a [tx, ty] pair")
        out.append((item[0], item[1]))
    if len(set(out)) != len(out):
        raise ProjectError(f"{name} is damaged: {key} lists a tile twice")
    return out


# The smallest strength the frame panel offers; older versions accepted 0, which no engine runs.
MIN_REPAIRED_STRENGTH = 0.01


def repair_frame_fields(item: dict[str, Any], what: str, notices: list[str]) -> None:
    """Cut over-long prompts and lift a strength of 0, in place, saying what changed."""
    for key in ("prompt", "negative_prompt"):
        text = item.get(key)
        if isinstance(text, str):
            capped, cut = limits.cap_prompt(text)
            if cut:
                item[key] = capped
                label = key.replace("_", " ")
                notices.append(
                    f"{what}: the {label} was {len(text):,} characters long; cut to {limits.MAX_PROMPT_CHARS:,}"
                )
    strength = item.get("strength")
    if isinstance(strength, (int, float)) and not isinstance(strength, bool) and strength == 0:
        item["strength"] = MIN_REPAIRED_STRENGTH
        notices.append(f"{what}: strength 0 redraws nothing; set to {MIN_REPAIRED_STRENGTH}")

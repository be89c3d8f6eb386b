"""The ``.canvas`` project file: a zip that stays OpenRaster-shaped where it can.

Layout (format version 1)::

    mimetype                    "application/x-canvas-app-project", first entry, stored
    stack.xml                   OpenRaster stack with one layer showing mergedimage.png
    mergedimage.png             the content bounds, scaled down to at most 1024 px a side
    Thumbnails/thumbnail.png    at most 256 px a side
    canvas/document.json        format version, tile lists, frames, patches, view, metadata
    canvas/image/<tx>_<ty>.png  RGBA tiles of the image (256x256), only painted ones
    canvas/mask/<tx>_<ty>.png   L tiles of the mask

Saving writes the whole archive aside and renames it over the old file (see ``write_atomically``).
Loading trusts nothing: it checks names, sizes, versions and shapes before it decodes, and raises
``ProjectError`` with a message a person can act on.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import weakref
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from canvas_app.core.document import Document, DocumentSnapshot
from canvas_app.core.export import (
    encode_png,
    export_image_ora,
    export_image_png,
    render_overview,
    tiles_bounds,
    write_atomically,
)
from canvas_app.core.frames import Patch, PromptFrame, ViewState
from canvas_app.core.raster import TILE_SIZE, MaskRaster, Rect, TiledRaster, TileKey

MIMETYPE = "application/x-canvas-app-project"
FORMAT_NAME = "canvas-app-project"
FORMAT_VERSION = 1
EXTENSION = ".canvas"
DOCUMENT_JSON = "canvas/document.json"
MERGED_MAX_SIDE = 1024
THUMB_MAX_SIDE = 256

# Limits applied while loading, so a hostile or broken file cannot exhaust memory.
MAX_ENTRIES = 500_000
MAX_JSON_BYTES = 64 * 2**20
DEFAULT_MAX_LOAD_BYTES = 8 * 2**30
_TILE_NAME = re.compile(r"^canvas/(image|mask)/(-?\d+)_(-?\d+)\.png$")


class ProjectError(ValueError):
    """A project file that cannot be read; the message says what is wrong with it."""


# -- saving ---------------------------------------------------------------------------------------
def save_project(doc: Document, path: str | os.PathLike[str], compress_level: int = 1) -> None:
    """Save atomically and mark the document saved (call on the thread that owns ``doc``)."""
    state = doc.history.state
    save_snapshot(doc.snapshot(), path, compress_level)
    doc.mark_saved(Path(path), state)


def save_snapshot(snap: DocumentSnapshot, path: str | os.PathLike[str], compress_level: int = 1) -> None:
    """Save a ``Document.snapshot()``; safe to call from a background thread (autosave)."""
    write_atomically(path, lambda fh: _write_archive(snap, fh, compress_level))


def _tile_name(layer: str, key: TileKey) -> str:
    return f"canvas/{layer}/{key[0]}_{key[1]}.png"


class _EncodedTileCache:
    """PNG bytes of tiles saved before, keyed by the identity of the tile array.

    Stored tiles are copy-on-write (``raster.py``): an array that is still alive still holds the
    same pixels, so a save after a small edit encodes only the tiles that edit replaced. Entries
    die with their arrays; the cache is also capped in bytes.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        # Reentrant: a weakref callback (``_drop``) can run inside ``put`` when a garbage collection
        # happens while the lock is held.
        self._lock = threading.RLock()
        self._entries: dict[tuple[int, int], tuple[weakref.ref[np.ndarray], bytes]] = {}
        self._bytes = 0

    def get(self, array: np.ndarray, level: int) -> bytes | None:
        with self._lock:
            entry = self._entries.get((id(array), level))
        if entry is None or entry[0]() is not array:
            return None
        return entry[1]

    def put(self, array: np.ndarray, level: int, data: bytes) -> None:
        key = (id(array), level)

        def forget(_ref: weakref.ref[np.ndarray]) -> None:
            self._drop(key)

        ref = weakref.ref(array, forget)
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += len(data) - (len(old[1]) if old else 0)
            self._entries[key] = (ref, data)
            while self._bytes > self.max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem()  # newest-first keeps the loop short
                self._bytes -= len(dropped)

    def _drop(self, key: tuple[int, int]) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])


_TILE_CACHE = _EncodedTileCache()


def _encode_tiles(tiles: list[np.ndarray], level: int) -> list[bytes]:
    """PNG-encode tiles, reusing earlier encodings and spreading new ones over threads (zlib and
    Pillow's encoder release the GIL)."""
    out: list[bytes | None] = [_TILE_CACHE.get(t, level) for t in tiles]
    missing = [i for i, data in enumerate(out) if data is None]
    workers = min(4, os.cpu_count() or 1, max(1, len(missing)))
    with ThreadPoolExecutor(workers) as pool:
        for i, data in zip(missing, pool.map(lambda i: encode_png(tiles[i], level), missing), strict=True):
            _TILE_CACHE.put(tiles[i], level, data)
            out[i] = data
    return [d for d in out if d is not None]


def _write_archive(snap: DocumentSnapshot, fh: IO[bytes], compress_level: int) -> None:
    image_keys = sorted(snap.image_tiles)
    mask_keys = sorted(snap.mask_tiles)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "tile_size": TILE_SIZE,
        "image_tiles": [list(k) for k in image_keys],
        "mask_tiles": [list(k) for k in mask_keys],
        "frames": [f.to_dict() for f in snap.frames],
        "patches": [p.to_dict() for p in snap.patches],
        "view": snap.view.to_dict(),
        "metadata": dict(snap.metadata),
    }
    bounds = tiles_bounds(snap.image_tiles)
    with zipfile.ZipFile(fh, "w") as zf:
        # OpenRaster readers sniff the first entry: it must be "mimetype", uncompressed.
        zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        merged, thumb = _previews(snap.image_tiles, bounds)
        zf.writestr(
            "stack.xml", _stack_xml(merged.shape[1], merged.shape[0]), compress_type=zipfile.ZIP_DEFLATED
        )
        zf.writestr("mergedimage.png", encode_png(merged, compress_level), compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            "Thumbnails/thumbnail.png", encode_png(thumb, compress_level), compress_type=zipfile.ZIP_STORED
        )
        zf.writestr(
            DOCUMENT_JSON, json.dumps(meta, indent=1, sort_keys=True), compress_type=zipfile.ZIP_DEFLATED
        )
        for layer, keys, tiles in (
            ("image", image_keys, snap.image_tiles),
            ("mask", mask_keys, snap.mask_tiles),
        ):
            # In chunks, so that encoded bytes do not pile up in memory for huge canvases.
            for start in range(0, len(keys), 256):
                chunk = keys[start : start + 256]
                for key, data in zip(
                    chunk, _encode_tiles([tiles[k] for k in chunk], compress_level), strict=True
                ):
                    zf.writestr(_tile_name(layer, key), data, compress_type=zipfile.ZIP_STORED)


def _previews(tiles: Mapping[TileKey, np.ndarray], bounds: Rect | None) -> tuple[np.ndarray, np.ndarray]:
    if bounds is None:
        empty = np.zeros((1, 1, 4), np.uint8)
        return empty, empty
    merged = render_overview(tiles, bounds, MERGED_MAX_SIDE)
    thumb = Image.fromarray(merged, "RGBA")
    thumb.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
    return merged, np.asarray(thumb)


def _stack_xml(w: int, h: int) -> str:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="0.0.3" w="{w}" h="{h}" xres="72" yres="72">\n'
        ' <stack composite-op="svg:src-over" opacity="1" name="root" visibility="visible">\n'
        f'  <layer composite-op="svg:src-over" opacity="1" name={quoteattr("Canvas")} '
        'src="mergedimage.png" visibility="visible" x="0" y="0"/>\n'
        " </stack>\n</image>\n"
    )


# -- loading --------------------------------------------------------------------------------------
def load_project(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_LOAD_BYTES) -> Document:
    """Read a ``.canvas`` file into a new, unmodified Document. ``max_bytes`` bounds the memory
    the decoded tiles may take. Raises ``ProjectError`` for anything malformed; never writes."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            doc = _read_archive(fh, path.name, max_bytes)
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ProjectError(f"{path}: is a folder, not a project file") from None
    doc.mark_saved(path)
    return doc


def _read_archive(fh: IO[bytes], name: str, max_bytes: int) -> Document:
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ProjectError(f"{name} is not a canvas project (not a zip archive: {exc})") from None
    with zf:
        infos = zf.infolist()
        _check_entries(infos, name)
        if not infos or infos[0].filename != "mimetype":
            raise ProjectError(f"{name} is not a canvas project (its first entry is not 'mimetype')")
        mimetype = _read_entry(zf, infos[0], 256, name).decode("ascii", "replace").strip()
        if mimetype != MIMETYPE:
            hint = " (an OpenRaster image: import it instead)" if mimetype == "image/openraster" else ""
            raise ProjectError(f"{name} has mimetype {mimetype!r}, expected {MIMETYPE!r}{hint}")
        by_name = {i.filename: i for i in infos}
        if DOCUMENT_JSON not in by_name:
            raise ProjectError(f"{name} is damaged: {DOCUMENT_JSON} is missing")
        raw = _read_entry(zf, by_name[DOCUMENT_JSON], MAX_JSON_BYTES, name)
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ProjectError(f"{name} is damaged: {DOCUMENT_JSON} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise ProjectError(f"{name} is damaged: {DOCUMENT_JSON} is not a JSON object")
        _check_header(meta, name)
        doc = Document()
        image_keys = _keys(meta, "image_tiles", name)
        mask_keys = _keys(meta, "mask_tiles", name)
        need = len(image_keys) * TILE_SIZE * TILE_SIZE * 4 + len(mask_keys) * TILE_SIZE * TILE_SIZE
        if need > max_bytes:
            raise ProjectError(
                f"{name} holds {len(image_keys) + len(mask_keys)} tiles ({need / 2**30:.1f} GiB decoded), "
                f"more than the {max_bytes / 2**30:.1f} GiB allowed"
            )
        _load_tiles(zf, by_name, "image", image_keys, doc.image, name)
        _load_tiles(zf, by_name, "mask", mask_keys, doc.mask, name)
        listed = {_tile_name("image", k) for k in image_keys} | {_tile_name("mask", k) for k in mask_keys}
        extra = [n for n in by_name if _TILE_NAME.match(n) and n not in listed]
        if extra:
            raise ProjectError(f"{name} is damaged: tile {extra[0]} is not listed in {DOCUMENT_JSON}")
        try:
            frames = [PromptFrame.from_dict(f) for f in _list(meta, "frames", name)]
            patches = [Patch.from_dict(p) for p in _list(meta, "patches", name)]
            view = ViewState.from_dict(meta.get("view", {}))
            metadata = meta.get("metadata", {})
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise ValueError("metadata must map names to strings")
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"{name} is damaged: {exc}") from None
        ids = [f.id for f in frames]
        if len(set(ids)) != len(ids):
            raise ProjectError(f"{name} is damaged: two frames share an id")
        doc.frames = {f.id: f for f in frames}
        doc.patches = patches
        doc.view = view
        doc.metadata = dict(metadata)
        return doc


def _check_entries(infos: list[zipfile.ZipInfo], name: str) -> None:
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


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str) -> bytes:
    """Read an entry, refusing anything that declares or inflates to more than ``limit`` bytes."""
    if info.file_size > limit:
        raise ProjectError(
            f"{name}: entry {info.filename!r} would inflate to {info.file_size} bytes (limit {limit})"
        )
    try:
        with zf.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ProjectError(f"{name} is damaged: cannot read {info.filename!r} ({exc})") from None
    if len(data) > limit:
        raise ProjectError(f"{name}: entry {info.filename!r} inflates past {limit} bytes")
    return data


def _check_header(meta: dict[str, Any], name: str) -> None:
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


def _list(meta: dict[str, Any], key: str, name: str) -> list[Any]:
    value = meta.get(key, [])
    if not isinstance(value, list):
        raise ProjectError(f"{name} is damaged: {key} is not a list")
    return value


def _keys(meta: dict[str, Any], key: str, name: str) -> list[TileKey]:
    out: list[TileKey] = []
    for item in _list(meta, key, name):
        if not (isinstance(item, list) and len(item) == 2 and all(type(v) is int for v in item)):
            raise ProjectError(f"{name} is damaged: {key} holds {item!r}, not a [tx, ty] pair")
        out.append((item[0], item[1]))
    if len(set(out)) != len(out):
        raise ProjectError(f"{name} is damaged: {key} lists a tile twice")
    return out


def _load_tiles(
    zf: zipfile.ZipFile,
    by_name: dict[str, zipfile.ZipInfo],
    layer: str,
    keys: list[TileKey],
    raster: TiledRaster,
    name: str,
) -> None:
    mode = "L" if isinstance(raster, MaskRaster) else "RGBA"
    raw_size = int(np.prod(raster.tile_shape))
    # PNG can be slightly larger than raw pixels for noise; anything beyond this is not a tile.
    limit = raw_size * 2 + 65536
    for key in keys:
        entry = _tile_name(layer, key)
        info = by_name.get(entry)
        if info is None:
            raise ProjectError(f"{name} is damaged: tile {entry} is missing")
        data = _read_entry(zf, info, limit, name)
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
                # Check the declared size before decoding: this is what stops pixel bombs.
                if img.size != (TILE_SIZE, TILE_SIZE) or img.mode != mode:
                    raise ProjectError(
                        f"{name} is damaged: tile {entry} is {img.size[0]}x{img.size[1]} {img.mode}, "
                        f"expected {TILE_SIZE}x{TILE_SIZE} {mode}"
                    )
                pixels = np.array(img)
        except ProjectError:
            raise
        except Image.DecompressionBombError as exc:
            raise ProjectError(f"{name} is unsafe: tile {entry} is a decompression bomb ({exc})") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ProjectError(f"{name} is damaged: tile {entry} is not a readable PNG ({exc})") from None
        if pixels.shape != raster.tile_shape or pixels.dtype != np.uint8:
            raise ProjectError(f"{name} is damaged: tile {entry} has shape {pixels.shape}")
        raster.set_tile(key[0], key[1], pixels)


# -- export ---------------------------------------------------------------------------------------
def export_png(
    doc: Document,
    path: str | os.PathLike[str],
    rect: Rect | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Rect:
    """Write ``rect`` (default: the content bounds) of the image as a PNG; ``metadata`` goes into
    tEXt chunks (e.g. {"parameters": request_json}). Returns the exported rectangle."""
    return export_image_png(doc.image, path, rect, metadata)


def export_ora(doc: Document, path: str | os.PathLike[str]) -> Rect:
    """Write the content bounds as a plain OpenRaster file that Krita or GIMP can open."""
    return export_image_ora(doc.image, path)

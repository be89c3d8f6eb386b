"""The ``.canvas`` project file: an OpenRaster image that carries our sparse canvas inside.

Layout (format version 1, container 2)::

    mimetype                    "image/openraster", first entry, stored (as OpenRaster requires)
    canvas/mimetype             "application/x-canvas-app-project", second entry, stored: what
                                tells our projects from other OpenRaster files (and lets file
                                managers sniff it at a fixed offset)
    mergedimage.png             the content bounds at full size, streamed from the tiles; also the
                                one layer of stack.xml, so Krita and GIMP open the canvas at full
                                resolution (beyond FULL_VIEW_MAX_SIDE it is a scaled-down view)
    stack.xml                   OpenRaster stack with that layer
    Thumbnails/thumbnail.png    at most 256 px a side
    canvas/document.json        format version, tile lists, frames, patches, view, metadata
    canvas/image/<tx>_<ty>.png  RGBA tiles of the image (256x256), only painted ones
    canvas/mask/<tx>_<ty>.png   L tiles of the mask

Container 1 (canvas-app 0.1) had "application/x-canvas-app-project" as its first entry and a
preview of at most 1024 px; it still loads.

Saving writes the whole archive aside and renames it over the old file (see ``write_atomically``).
Loading trusts nothing: it checks names, sizes, counts, ranges and versions before it builds
anything (bounds in ``core/limits.py``), and raises ``ProjectError`` with a message a person can
act on.
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
from typing import IO

import numpy as np
from PIL import Image

from canvas_app.core import limits
from canvas_app.core.document import Document, DocumentSnapshot
from canvas_app.core.export import (
    encode_png,
    export_image_ora,
    export_image_png,
    render_overview,
    tiles_bounds,
    write_atomically,
)
from canvas_app.core.openraster import (
    MERGED_PNG,
    ORA_MIMETYPE,
    STACK_XML,
    THUMBNAIL_PNG,
    stack_xml,
    write_png_stream,
)
from canvas_app.core.project_checks import (
    DOCUMENT_JSON,
    FORMAT_NAME,
    FORMAT_VERSION,
    OpenRasterNotProjectError,
    ProjectError,
    check_entries,
    check_header,
    document_parts,
    parse_document_json,
    tile_keys,
)
from canvas_app.core.raster import TILE_SIZE, MaskRaster, Rect, TiledRaster, TileKey

MIMETYPE = "application/x-canvas-app-project"
MANIFEST = "canvas/mimetype"
EXTENSION = ".canvas"
# Beyond this the OpenRaster view of the canvas is scaled down to MERGED_MAX_SIDE (a sparse canvas
# can span millions of pixels); the tiles always keep every pixel.
FULL_VIEW_MAX_SIDE = 32768
FULL_VIEW_MAX_PIXELS = 2**28
MERGED_MAX_SIDE = 4096
THUMB_MAX_SIDE = 256

# Limits applied while loading, so a hostile or broken file cannot exhaust memory or time.
MAX_JSON_BYTES = 64 * 2**20
_TILE_NAME = re.compile(r"^canvas/(image|mask)/(-?\d+)_(-?\d+)\.png$")


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
        # OpenRaster readers sniff the first entry: it must be "mimetype", uncompressed. Our own
        # type follows as the second stored entry, at a fixed offset too.
        zf.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        zf.writestr(zipfile.ZipInfo(MANIFEST), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        w, h = _write_view(zf, snap.image_tiles, bounds, compress_level)
        zf.writestr(STACK_XML, stack_xml(w, h, [("Canvas", MERGED_PNG, 0, 0)]), zipfile.ZIP_DEFLATED)
        thumb = render_overview(snap.image_tiles, bounds, THUMB_MAX_SIDE) if bounds else _EMPTY
        zf.writestr(THUMBNAIL_PNG, encode_png(thumb, compress_level), compress_type=zipfile.ZIP_STORED)
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


_EMPTY = np.zeros((1, 1, 4), np.uint8)


def full_view_fits(bounds: Rect) -> bool:
    """Whether the OpenRaster view of content with these bounds is written at full size."""
    w, h = bounds[2], bounds[3]
    return max(w, h) <= FULL_VIEW_MAX_SIDE and w * h <= FULL_VIEW_MAX_PIXELS


def _write_view(
    zf: zipfile.ZipFile, tiles: Mapping[TileKey, np.ndarray], bounds: Rect | None, compress_level: int
) -> tuple[int, int]:
    """Write mergedimage.png, the image other programs show; returns its size."""
    if bounds is None:
        zf.writestr(MERGED_PNG, encode_png(_EMPTY, compress_level), compress_type=zipfile.ZIP_STORED)
        return 1, 1
    if not full_view_fits(bounds):
        merged = render_overview(tiles, bounds, MERGED_MAX_SIDE)
        zf.writestr(MERGED_PNG, encode_png(merged, compress_level), compress_type=zipfile.ZIP_STORED)
        return merged.shape[1], merged.shape[0]
    w, h = bounds[2], bounds[3]
    info = zipfile.ZipInfo(MERGED_PNG, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    # Streamed: the PNG never sits in memory whole. Zip64 only where it could pass 2 GiB.
    with zf.open(info, "w", force_zip64=w * h * 4 > 2**31 - 2**26) as member:
        write_png_stream(member, tiles, bounds, compress_level)
    return w, h


# -- loading --------------------------------------------------------------------------------------
def load_project(path: str | os.PathLike[str], max_bytes: int | None = None) -> Document:
    """Read a ``.canvas`` file into a new, unmodified Document. ``max_bytes`` bounds the memory
    the decoded tiles may take (default: half of this machine's memory). Raises ``ProjectError``
    for anything malformed or too large; never writes."""
    path = Path(path)
    budget = limits.default_pixel_memory_bytes() if max_bytes is None else max_bytes
    try:
        with open(path, "rb") as fh:
            doc = _read_archive(fh, path, budget)
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ProjectError(f"{path}: is a folder, not a project file") from None
    except MemoryError:
        # Every bound above is checked first; this is the last line for what they cannot foresee.
        raise ProjectError(
            f"{path.name} needs more memory than is free on this machine; close other programs "
            "or open it on a machine with more memory"
        ) from None
    doc.mark_saved(path)
    return doc


def damaged_hint(path: Path) -> str:
    """What a person can do about a damaged project: the autosaved copies canvas-app keeps."""
    from canvas_app.core.recovery import RecoveryStore  # recovery loads projects: import late

    store = RecoveryStore()
    try:
        resolved = path.resolve()
        copies = [i for i in store.entries() if i.source is not None and i.source.resolve() == resolved]
    except OSError:
        copies = []
    if copies:
        newest = copies[0]
        return (
            f"An autosaved copy of it ({newest.describe()}) is at {newest.path}: open that file, "
            "then save it under a new name."
        )
    return (
        "canvas-app saves by writing a complete copy and renaming it over the old file, so a file "
        "it saved is never half-written: this one was cut short elsewhere (an unfinished copy, "
        "download or sync). Open an earlier copy (a backup or the original you copied it from). "
        f"Autosaved copies of unsaved work are kept in {store.folder}, and offered at the next start "
        "after a crash."
    )


def _open_zip(fh: IO[bytes], path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        fh.seek(0)
        if fh.read(4) != b"PK\x03\x04":
            raise ProjectError(f"{path.name} is not a canvas project (not a zip archive: {exc})") from None
        # It starts like our archive but its table of contents (at the end) is missing.
        size = os.fstat(fh.fileno()).st_size if hasattr(fh, "fileno") else 0
        raise ProjectError(
            f"{path.name} is damaged or incomplete: it ends after {size:,} bytes, before the end of "
            f"its zip archive. {damaged_hint(path)}"
        ) from None


def _read_archive(fh: IO[bytes], path: Path, max_bytes: int) -> Document:
    name = path.name
    zf = _open_zip(fh, path)
    with zf:
        infos = zf.infolist()
        check_entries(infos, name)
        if not infos or infos[0].filename != "mimetype":
            raise ProjectError(f"{name} is not a canvas project (its first entry is not 'mimetype')")
        by_name = {i.filename: i for i in infos}
        _check_mimetype(zf, infos[0], by_name, name)
        if DOCUMENT_JSON not in by_name:
            raise ProjectError(f"{name} is damaged: {DOCUMENT_JSON} is missing")
        raw = _read_entry(zf, by_name[DOCUMENT_JSON], MAX_JSON_BYTES, name)
        meta = parse_document_json(raw, len(infos), name)
        check_header(meta, name)
        image_keys = tile_keys(meta, "image_tiles", name)
        mask_keys = tile_keys(meta, "mask_tiles", name)
        need = len(image_keys) * TILE_SIZE * TILE_SIZE * 4 + len(mask_keys) * TILE_SIZE * TILE_SIZE
        if need > max_bytes:
            raise ProjectError(
                f"{name} holds {len(image_keys) + len(mask_keys):,} tiles ({limits.format_bytes(need)} "
                f"decoded), more than the {limits.format_bytes(max_bytes)} allowed on this machine "
                f"(half of its {limits.format_bytes(limits.physical_memory_bytes())} memory); open it "
                "on a machine with more memory"
            )
        notices: list[str] = []
        frames, patches, view, metadata = document_parts(meta, name, notices)
        doc = Document()
        _load_tiles(zf, by_name, "image", image_keys, doc.image, name)
        _load_tiles(zf, by_name, "mask", mask_keys, doc.mask, name)
        listed = {_tile_name("image", k) for k in image_keys} | {_tile_name("mask", k) for k in mask_keys}
        extra = [n for n in by_name if _TILE_NAME.match(n) and n not in listed]
        if extra:
            raise ProjectError(f"{name} is damaged: tile {extra[0]} is not listed in {DOCUMENT_JSON}")
        doc.frames = {f.id: f for f in frames}
        doc.patches = patches
        doc.view = view
        doc.metadata = metadata
        doc.load_notices = notices
        return doc


def _check_mimetype(
    zf: zipfile.ZipFile, first: zipfile.ZipInfo, by_name: dict[str, zipfile.ZipInfo], name: str
) -> None:
    """Ours: OpenRaster with our manifest, or the first entry of container 1."""
    mimetype = _read_entry(zf, first, 256, name).decode("ascii", "replace").strip()
    if mimetype == MIMETYPE:
        return
    if mimetype == ORA_MIMETYPE:
        manifest = by_name.get(MANIFEST)
        if manifest is not None and _read_entry(zf, manifest, 256, name).strip() == MIMETYPE.encode():
            return
        raise OpenRasterNotProjectError(
            f"{name} is an OpenRaster image, not a canvas project: open or drop it to import its layers"
        )
    raise ProjectError(f"{name} has mimetype {mimetype!r}, expected {MIMETYPE!r}")


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

"""Rendering tiles to flat images and exporting PNG and plain OpenRaster files."""

from __future__ import annotations

import io
import math
import os
import uuid
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from canvas_app.core.raster import TILE_SIZE, Rect, TiledRaster, TileKey

# The biggest flat image we build in memory for an export (RGBA: 4 bytes per pixel).
MAX_EXPORT_PIXELS = 32768 * 32768 // 2
ORA_MIMETYPE = "image/openraster"


def tiles_bounds(tiles: Mapping[TileKey, np.ndarray]) -> Rect | None:
    """Tight bounds of the non-empty pixels of a tile mapping (as ``TiledRaster.bounds``)."""
    raster = TiledRaster(4)
    for key, tile in tiles.items():
        raster.adopt_tile(key, tile)
    return raster.bounds()


def render_overview(tiles: Mapping[TileKey, np.ndarray], rect: Rect, max_side: int) -> np.ndarray:
    """An RGBA image of ``rect`` scaled down (never up) to fit ``max_side``.

    Works tile by tile, so a sparse canvas whose bounds are millions of pixels wide still renders
    in memory proportional to the output.
    """
    x, y, w, h = rect
    scale = min(1.0, max_side / max(w, h, 1))
    out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((out_h, out_w, 4), np.uint8)
    t = TILE_SIZE
    for (tx, ty), tile in tiles.items():
        ox, oy = tx * t - x, ty * t - y
        if ox + t <= 0 or oy + t <= 0 or ox >= w or oy >= h:
            continue
        if scale == 1.0:
            x0, y0 = max(ox, 0), max(oy, 0)
            x1, y1 = min(ox + t, w), min(oy + t, h)
            out[y0:y1, x0:x1] = tile[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
            continue
        # Scale the tile to the output cells it covers; the last writer wins on shared edges.
        dx0, dy0 = math.floor(ox * scale), math.floor(oy * scale)
        dx1, dy1 = max(dx0 + 1, math.ceil((ox + t) * scale)), max(dy0 + 1, math.ceil((oy + t) * scale))
        small = np.asarray(Image.fromarray(tile, "RGBA").resize((dx1 - dx0, dy1 - dy0), Image.Resampling.BOX))
        cx0, cy0 = max(dx0, 0), max(dy0, 0)
        cx1, cy1 = min(dx1, out_w), min(dy1, out_h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        region = small[cy0 - dy0 : cy1 - dy0, cx0 - dx0 : cx1 - dx0]
        dst = out[cy0:cy1, cx0:cx1]
        opaque = region[..., 3] > 0
        dst[opaque] = region[opaque]
    return out


def encode_png(
    array: np.ndarray, compress_level: int = 1, metadata: Mapping[str, str] | None = None
) -> bytes:
    buf = io.BytesIO()
    info = None
    if metadata:
        info = PngInfo()
        for key, value in metadata.items():
            info.add_text(str(key), str(value))
    Image.fromarray(np.ascontiguousarray(array)).save(
        buf, format="PNG", compress_level=compress_level, pnginfo=info
    )
    return buf.getvalue()


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Write a file aside, flush and fsync it, then rename it over ``path``.

    A crash or a full disk at any point leaves the previous file at ``path`` untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_bytes(fh: IO[bytes], data: bytes) -> None:
    fh.write(data)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), so best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _flat_image(raster: TiledRaster, rect: Rect | None) -> tuple[Rect, np.ndarray]:
    rect = rect if rect is not None else raster.bounds()
    if rect is None:
        raise ValueError("the canvas is empty: nothing to export")
    x, y, w, h = rect
    if w <= 0 or h <= 0:
        raise ValueError(f"cannot export an empty rectangle {w}x{h}")
    if w * h > MAX_EXPORT_PIXELS:
        raise ValueError(
            f"the export would be {w}x{h} pixels, more than {MAX_EXPORT_PIXELS} pixels; export a smaller rectangle"
        )
    return rect, raster.read(x, y, w, h)


def export_image_png(
    raster: TiledRaster,
    path: str | os.PathLike[str],
    rect: Rect | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Rect:
    """Write ``rect`` (default: the content bounds) of an RGBA raster as a PNG; returns the rect."""
    rect, pixels = _flat_image(raster, rect)
    data = encode_png(pixels, compress_level=6, metadata=metadata)
    write_atomically(path, lambda fh: _write_bytes(fh, data))
    return rect


def save_png(
    path: str | os.PathLike[str], array: np.ndarray, metadata: Mapping[str, str] | None = None
) -> None:
    """Write one image (e.g. a generated candidate) as a PNG with text chunks, atomically."""
    data = encode_png(array, compress_level=6, metadata=metadata)
    write_atomically(path, lambda fh: _write_bytes(fh, data))


def export_image_ora(
    raster: TiledRaster, path: str | os.PathLike[str], layer_name: str = "Canvas", rect: Rect | None = None
) -> Rect:
    """Write the content bounds as a plain one-layer OpenRaster file (Krita, GIMP, MyPaint)."""
    rect, pixels = _flat_image(raster, rect)
    h, w = pixels.shape[:2]
    layer = encode_png(pixels, compress_level=6)
    thumb = Image.fromarray(pixels, "RGBA")
    thumb.thumbnail((256, 256))
    thumb_png = encode_png(np.asarray(thumb))
    stack = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="0.0.3" w="{w}" h="{h}" xres="72" yres="72">\n'
        ' <stack composite-op="svg:src-over" opacity="1" name="root" visibility="visible">\n'
        f'  <layer composite-op="svg:src-over" opacity="1" name={quoteattr(layer_name)} '
        'src="data/layer0.png" visibility="visible" x="0" y="0"/>\n'
        " </stack>\n</image>\n"
    )

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w") as zf:
            zf.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
            zf.writestr("stack.xml", stack, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr("data/layer0.png", layer, compress_type=zipfile.ZIP_STORED)
            zf.writestr("mergedimage.png", layer, compress_type=zipfile.ZIP_STORED)
            zf.writestr("Thumbnails/thumbnail.png", thumb_png, compress_type=zipfile.ZIP_STORED)

    write_atomically(path, write)
    return rect

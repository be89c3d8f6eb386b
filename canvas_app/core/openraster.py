"""OpenRaster (``.ora``, the layered format of Krita, GIMP and MyPaint): reading and writing.

Reading composites the layer stack the way those programs show it: layers at their ``x``/``y``
offsets, hidden ones left out, each at its opacity, nested stacks as isolated groups. Every count
and size the file declares is checked before anything is decoded (see ``core/limits.py``).

Writing streams the full-size ``mergedimage.png`` band by band from the sparse tiles, so a large
canvas is written in memory proportional to its width, not its area.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from canvas_app.core.image_io import MAX_IMAGE_PIXELS
from canvas_app.core.limits import default_pixel_memory_bytes, format_bytes
from canvas_app.core.raster import TILE_SIZE, Rect, TiledRaster, TileKey

ORA_MIMETYPE = "image/openraster"
STACK_XML = "stack.xml"
MERGED_PNG = "mergedimage.png"
THUMBNAIL_PNG = "Thumbnails/thumbnail.png"

# Bounds on what an OpenRaster file may declare.
MAX_ORA_LAYERS = 1000
MAX_ORA_DEPTH = 32
MAX_ORA_PIXELS = MAX_IMAGE_PIXELS  # of the image and of each layer, as for any imported image
MAX_STACK_XML_BYTES = 4 * 2**20
MAX_ORA_ENTRIES = 10_000


class OpenRasterError(ValueError):
    """An OpenRaster file that cannot be read; the message names the file and says why."""


# -- reading ---------------------------------------------------------------------------------------
@dataclass
class OpenRasterImage:
    """The composited picture (straight RGBA, the image's full size) and what was left out."""

    pixels: np.ndarray
    layers: int
    notes: list[str] = field(default_factory=list)


@dataclass
class _Layer:
    src: str
    x: int
    y: int
    opacity: float
    name: str


@dataclass
class _Stack:
    x: int
    y: int
    opacity: float
    children: list[_Layer | _Stack]


def is_openraster(zf: zipfile.ZipFile) -> bool:
    infos = zf.infolist()
    if not infos or infos[0].filename != "mimetype" or infos[0].file_size > 256:
        return False
    return zf.read(infos[0]).strip() == ORA_MIMETYPE.encode()


def read_openraster(source: str | IO[bytes], name: str, max_bytes: int | None = None) -> OpenRasterImage:
    """Composite an OpenRaster file. ``max_bytes`` bounds the decoded pixels of all layers
    together (default: ``limits.default_pixel_memory_bytes``). Raises ``OpenRasterError`` for
    anything malformed or too large."""
    max_bytes = default_pixel_memory_bytes() if max_bytes is None else max_bytes
    try:
        zf = zipfile.ZipFile(source)
    except FileNotFoundError:
        raise OpenRasterError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise OpenRasterError(f"{name} is a folder, not an OpenRaster image") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        if _starts_like_zip(source):
            raise OpenRasterError(
                f"{name} is damaged or incomplete: it ends before the end of its zip archive ({exc})"
            ) from None
        raise OpenRasterError(f"{name} is not an OpenRaster image (not a zip archive)") from None
    try:
        with zf:
            return _read(zf, name, max_bytes)
    except MemoryError:
        raise OpenRasterError(f"{name} needs more memory than is free to open it") from None


def _starts_like_zip(source: str | IO[bytes]) -> bool:
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                return fh.read(4) == b"PK\x03\x04"
        source.seek(0)
        return source.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _read(zf: zipfile.ZipFile, name: str, max_bytes: int) -> OpenRasterImage:
    infos = zf.infolist()
    if len(infos) > MAX_ORA_ENTRIES:
        raise OpenRasterError(f"{name} has {len(infos):,} entries, more than the {MAX_ORA_ENTRIES:,} allowed")
    by_name = {i.filename: i for i in infos}
    if STACK_XML not in by_name:
        raise OpenRasterError(f"{name} is not an OpenRaster image: it has no {STACK_XML}")
    raw = _entry(zf, by_name[STACK_XML], MAX_STACK_XML_BYTES, name)
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise OpenRasterError(f"{name}: {STACK_XML} declares entities, which OpenRaster never needs")
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as exc:
        raise OpenRasterError(f"{name} is damaged: {STACK_XML} is not valid XML ({exc})") from None
    if root.tag != "image":
        raise OpenRasterError(f"{name} is damaged: {STACK_XML} has no <image> root")
    w, h = _int(root, "w", name, 0), _int(root, "h", name, 0)
    if w <= 0 or h <= 0 or w * h > MAX_ORA_PIXELS:
        raise OpenRasterError(
            f"{name} declares a {w}x{h} image; this app opens images from 1x1 up to {MAX_ORA_PIXELS:,} pixels"
        )
    top = root.find("stack")
    if top is None:
        raise OpenRasterError(f"{name} is damaged: {STACK_XML} has no root <stack>")
    counter = [0]
    notes: list[str] = []
    stack = _parse_stack(top, name, 0, counter, notes)
    # Compositing works in premultiplied float32 (16 bytes a pixel) over the whole image.
    budget = [max_bytes - w * h * 16]
    if budget[0] < 0:
        raise OpenRasterError(
            f"{name} is {w}x{h}: compositing it needs {format_bytes(w * h * 16)}, "
            f"more than the {format_bytes(max_bytes)} allowed on this machine"
        )
    out = np.zeros((h, w, 4), np.float32)
    _composite(zf, by_name, stack, out, 0, 0, name, budget)
    pixels = np.clip(np.rint(unpremultiply(out) * 255.0), 0, 255).astype(np.uint8)
    return OpenRasterImage(pixels, counter[0], notes)


def _int(el: ElementTree.Element, key: str, name: str, default: int) -> int:
    value = el.get(key)
    if value is None:
        return default
    try:
        number = int(float(value)) if len(value) < 32 else None
    except ValueError:
        number = None
    if number is None or abs(number) > 2**31:
        raise OpenRasterError(f"{name} is damaged: {key}={value[:32]!r} is not a pixel coordinate")
    return number


def _opacity(el: ElementTree.Element, name: str) -> float:
    try:
        value = float(el.get("opacity", "1"))
    except ValueError:
        raise OpenRasterError(f"{name} is damaged: opacity {el.get('opacity')!r} is not a number") from None
    return min(1.0, max(0.0, value)) if value == value else 1.0


def _parse_stack(
    el: ElementTree.Element, name: str, depth: int, counter: list[int], notes: list[str]
) -> _Stack:
    if depth > MAX_ORA_DEPTH:
        raise OpenRasterError(f"{name} nests layer groups more than {MAX_ORA_DEPTH} deep")
    children: list[_Layer | _Stack] = []
    for child in el:
        if child.get("visibility", "visible") == "hidden":
            if child.tag in ("layer", "stack"):
                notes.append(f"hidden {child.tag} {child.get('name', '')!r} left out")
            continue
        if child.tag == "stack":
            children.append(_parse_stack(child, name, depth + 1, counter, notes))
        elif child.tag == "layer":
            counter[0] += 1
            if counter[0] > MAX_ORA_LAYERS:
                raise OpenRasterError(f"{name} has more than {MAX_ORA_LAYERS} layers")
            src = child.get("src", "")
            op = child.get("composite-op", "svg:src-over")
            if op != "svg:src-over":
                notes.append(f"layer {child.get('name', '')!r} blends with {op}; composited as normal")
            children.append(
                _Layer(
                    src,
                    _int(child, "x", name, 0),
                    _int(child, "y", name, 0),
                    _opacity(child, name),
                    child.get("name", ""),
                )
            )
        # Other elements (text, filters of newer drafts) carry no pixels we can show.
    return _Stack(_int(el, "x", name, 0), _int(el, "y", name, 0), _opacity(el, name), children)


def _composite(
    zf: zipfile.ZipFile,
    by_name: Mapping[str, zipfile.ZipInfo],
    stack: _Stack,
    out: np.ndarray,
    ox: int,
    oy: int,
    name: str,
    budget: list[int],
) -> None:
    """Composite ``stack`` into ``out`` (premultiplied float RGBA); children are listed top first."""
    h, w = out.shape[:2]
    for child in reversed(stack.children):
        if isinstance(child, _Stack):
            if child.opacity <= 0:
                continue
            budget[0] -= w * h * 16
            if budget[0] < 0:
                raise OpenRasterError(f"{name}: its layer groups need more memory than allowed")
            group = np.zeros_like(out)
            _composite(zf, by_name, child, group, ox + child.x, oy + child.y, name, budget)
            group *= child.opacity
            _over(out, group, 0, 0)
            budget[0] += w * h * 16
            continue
        if child.opacity <= 0:
            continue
        layer = _layer_pixels(zf, by_name, child, name, budget)
        premul = layer.astype(np.float32) / 255.0
        premul[..., :3] *= premul[..., 3:4]
        _over(out, premul * child.opacity, ox + child.x, oy + child.y)


def _layer_pixels(
    zf: zipfile.ZipFile, by_name: Mapping[str, zipfile.ZipInfo], layer: _Layer, name: str, budget: list[int]
) -> np.ndarray:
    info = by_name.get(layer.src)
    if info is None:
        raise OpenRasterError(f"{name} is damaged: layer {layer.name!r} points to missing {layer.src!r}")
    data = _entry(zf, info, 8 * MAX_ORA_PIXELS, name)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            lw, lh = img.size
            # Decoded as RGBA (4 bytes) and then as float (16 bytes) while compositing.
            if lw * lh > MAX_ORA_PIXELS or lw * lh * 20 > budget[0]:
                raise OpenRasterError(
                    f"{name}: layer {layer.name!r} is {lw}x{lh}; its layers need more memory than allowed"
                )
            pixels = np.asarray(img.convert("RGBA"))
    except OpenRasterError:
        raise
    except Image.DecompressionBombError as exc:
        raise OpenRasterError(
            f"{name} is unsafe: layer {layer.name!r} is a decompression bomb ({exc})"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise OpenRasterError(
            f"{name} is damaged: layer {layer.name!r} is not a readable PNG ({exc})"
        ) from None
    return pixels


def _over(dst: np.ndarray, src: np.ndarray, x: int, y: int) -> None:
    """Premultiplied source-over of ``src`` placed at (x, y) onto ``dst``, clipped to ``dst``."""
    h, w = dst.shape[:2]
    sh, sw = src.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sw, w), min(y + sh, h)
    if x1 <= x0 or y1 <= y0:
        return
    s = src[y0 - y : y1 - y, x0 - x : x1 - x]
    d = dst[y0:y1, x0:x1]
    d *= 1.0 - s[..., 3:4]
    d += s


def unpremultiply(premul: np.ndarray) -> np.ndarray:
    alpha = premul[..., 3:4]
    rgb = np.divide(premul[..., :3], alpha, out=np.zeros_like(premul[..., :3]), where=alpha > 0)
    return np.concatenate([rgb, alpha], axis=-1)


def _entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str) -> bytes:
    if info.file_size > limit:
        raise OpenRasterError(f"{name}: entry {info.filename!r} would inflate to {info.file_size:,} bytes")
    try:
        with zf.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise OpenRasterError(f"{name} is damaged: cannot read {info.filename!r} ({exc})") from None
    if len(data) > limit:
        raise OpenRasterError(f"{name}: entry {info.filename!r} inflates past {limit:,} bytes")
    return data


# -- writing ---------------------------------------------------------------------------------------
def stack_xml(w: int, h: int, layers: list[tuple[str, str, int, int]]) -> str:
    """A baseline stack.xml: ``layers`` are (name, src, x, y), top first, all visible."""
    rows = "".join(
        f'  <layer composite-op="svg:src-over" opacity="1" name={quoteattr(n)} src={quoteattr(src)} '
        f'visibility="visible" x="{x}" y="{y}"/>\n'
        for n, src, x, y in layers
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="0.0.5" w="{w}" h="{h}" xres="72" yres="72">\n'
        ' <stack composite-op="svg:src-over" opacity="1" name="root" visibility="visible">\n'
        f"{rows} </stack>\n</image>\n"
    )


def write_png_stream(
    fh: IO[bytes], tiles: Mapping[TileKey, np.ndarray], rect: Rect, compress_level: int = 1
) -> None:
    """Write the RGBA pixels of ``rect`` as a PNG, rendered one tile row at a time.

    Memory stays at one band of ``rect``'s width; rows use PNG's "Sub" filter (cheap in numpy and
    close to Pillow's adaptive choice on painted images).
    """
    x, y, w, h = rect
    raster = TiledRaster(4)
    for key, tile in tiles.items():
        raster.adopt_tile(key, tile)
    fh.write(b"\x89PNG\r\n\x1a\n")
    _chunk(fh, b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
    compressor = zlib.compressobj(compress_level)
    pending = bytearray()
    band_top = y
    while band_top < y + h:
        # Bands follow the tile grid, so each reads whole tile rows.
        band_end = min(y + h, (band_top // TILE_SIZE + 1) * TILE_SIZE)
        band = raster.read(x, band_top, w, band_end - band_top).reshape(band_end - band_top, w * 4)
        rows = np.empty((band.shape[0], w * 4 + 1), np.uint8)
        rows[:, 0] = 1  # filter type Sub: each byte minus the same channel of the pixel to its left
        rows[:, 1:5] = band[:, :4]
        np.subtract(band[:, 4:], band[:, :-4], out=rows[:, 5:])
        pending += compressor.compress(rows.tobytes())
        if len(pending) >= 2**20:
            _chunk(fh, b"IDAT", bytes(pending))
            pending.clear()
        band_top = band_end
    pending += compressor.flush()
    _chunk(fh, b"IDAT", bytes(pending))
    _chunk(fh, b"IEND", b"")


def _chunk(fh: IO[bytes], kind: bytes, data: bytes) -> None:
    fh.write(struct.pack(">I", len(data)) + kind + data)
    fh.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

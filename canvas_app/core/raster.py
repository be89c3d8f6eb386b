"""Sparse tiled rasters over unbounded integer coordinates.

Pixels live in fixed-size square tiles keyed by tile coordinates ``(tx, ty)``; tile ``(tx, ty)``
covers canvas pixels ``[tx*T, tx*T+T) x [ty*T, ty*T+T)``. Tiles whose every value is zero are not
stored, so memory grows with painted tiles and not with the bounding box.

RGBA rasters keep a canonical form: a pixel with alpha 0 is stored as (0, 0, 0, 0). "Fully
transparent" and "all zero" are then the same thing, which makes dropping empty tiles lossless.

Stored tiles are copy-on-write: ``get_tile`` and ``snapshot`` hand out read-only references and the
raster copies such a tile before its next in-place change. Undo history and background saving
therefore keep tiles without copying them up front.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

import numpy as np

TILE_SIZE = 256

Rect = tuple[int, int, int, int]
TileKey = tuple[int, int]
Blend = Literal["replace", "over"]


def tile_range(x: int, y: int, w: int, h: int) -> Iterator[TileKey]:
    """Keys of all tiles that intersect the rectangle (none for an empty rectangle)."""
    if w <= 0 or h <= 0:
        return
    t = TILE_SIZE
    for ty in range(y // t, (y + h - 1) // t + 1):
        for tx in range(x // t, (x + w - 1) // t + 1):
            yield (tx, ty)


def intersect(a: Rect, b: Rect) -> Rect | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def union(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


class TiledRaster:
    """A sparse raster of ``channels`` values per pixel (``channels == 1`` gives 2-D arrays).

    ``write`` replaces pixels by default; ``blend="over"`` alpha-composites (Porter-Duff over,
    straight alpha) for RGBA rasters. A ``mask`` (HxW, 0..255) blends the new pixels into the old
    ones by that weight (premultiplied interpolation for RGBA).
    """

    def __init__(self, channels: int = 4, dtype: np.typing.DTypeLike = np.uint8) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self._tiles: dict[TileKey, np.ndarray] = {}
        # Keys whose stored array is referenced from outside (copy before changing in place).
        self._shared: set[TileKey] = set()

    # -- shape helpers ---------------------------------------------------------------------------
    @property
    def tile_shape(self) -> tuple[int, ...]:
        t = TILE_SIZE
        return (t, t) if self.channels == 1 else (t, t, self.channels)

    def pixel_shape(self, w: int, h: int) -> tuple[int, ...]:
        return (h, w) if self.channels == 1 else (h, w, self.channels)

    def empty(self, w: int, h: int) -> np.ndarray:
        """A zero (transparent) array for a ``w`` x ``h`` region."""
        return np.zeros(self.pixel_shape(w, h), self.dtype)

    def _check_array(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        if self.channels == 1:
            if array.ndim == 3 and array.shape[2] == 1:
                array = array[:, :, 0]
            if array.ndim != 2:
                raise ValueError(f"expected an HxW array, got shape {array.shape}")
        elif array.ndim != 3 or array.shape[2] != self.channels:
            raise ValueError(f"expected an HxWx{self.channels} array, got shape {array.shape}")
        if array.dtype != self.dtype:
            raise ValueError(f"expected dtype {self.dtype}, got {array.dtype}")
        return array

    # -- tiles -----------------------------------------------------------------------------------
    def tile_keys(self) -> list[TileKey]:
        return list(self._tiles)

    def __len__(self) -> int:
        return len(self._tiles)

    @property
    def nbytes(self) -> int:
        """Bytes held by stored tiles."""
        return sum(t.nbytes for t in self._tiles.values())

    def get_tile(self, tx: int, ty: int) -> np.ndarray | None:
        """A read-only view of the stored tile, or None where the tile is empty."""
        tile = self._tiles.get((tx, ty))
        if tile is None:
            return None
        self._shared.add((tx, ty))
        view = tile.view()
        view.flags.writeable = False
        return view

    def set_tile(self, tx: int, ty: int, tile: np.ndarray | None) -> None:
        """Store ``tile`` (not copied; it must not be changed afterwards) or drop it with None."""
        key = (tx, ty)
        if tile is None:
            self._tiles.pop(key, None)
            self._shared.discard(key)
            return
        if tile.shape != self.tile_shape or tile.dtype != self.dtype:
            raise ValueError(
                f"tile must have shape {self.tile_shape} and dtype {self.dtype}, got {tile.shape} {tile.dtype}"
            )
        if self.channels == 4 and not np.all(tile[..., :3][tile[..., 3] == 0] == 0):
            tile = tile.copy()
            tile[tile[..., 3] == 0] = 0
        if not tile.any():
            self._tiles.pop(key, None)
            self._shared.discard(key)
            return
        self._tiles[key] = tile
        self._shared.add(key)

    def adopt_tile(self, key: TileKey, tile: np.ndarray) -> None:
        """Store a tile taken from another raster's ``snapshot`` as is (already canonical)."""
        self._tiles[key] = tile
        self._shared.add(key)

    def snapshot(
        self, keys: Iterator[TileKey] | list[TileKey] | None = None
    ) -> dict[TileKey, np.ndarray | None]:
        """References to the current tiles (all, or those of ``keys``, None for empty ones).

        No pixels are copied; the raster copies a referenced tile before changing it.
        """
        chosen = list(self._tiles) if keys is None else list(keys)
        out: dict[TileKey, np.ndarray | None] = {}
        for key in chosen:
            tile = self._tiles.get(key)
            if tile is not None:
                self._shared.add(key)
            out[key] = tile
        return out

    def restore(self, tiles: Mapping[TileKey, np.ndarray | None]) -> None:
        """Put back tiles from a ``snapshot`` (None drops the tile)."""
        for (tx, ty), tile in tiles.items():
            self.set_tile(tx, ty, tile)

    def _writable(self, key: TileKey) -> np.ndarray:
        tile = self._tiles.get(key)
        if tile is None:
            tile = np.zeros(self.tile_shape, self.dtype)
            self._tiles[key] = tile
        elif key in self._shared:
            tile = tile.copy()
            self._tiles[key] = tile
            self._shared.discard(key)
        return tile

    def _settle(self, key: TileKey, region: tuple[slice, slice]) -> None:
        """Canonicalise a just-written region and drop the tile if it became empty."""
        tile = self._tiles[key]
        sub = tile[region]
        if self.channels == 4:
            sub[sub[..., 3] == 0] = 0
        if sub.any():
            return
        if not tile.any():
            del self._tiles[key]

    def clear(self) -> None:
        self._tiles.clear()
        self._shared.clear()

    def copy(self) -> TiledRaster:
        other = type(self).__new__(type(self))
        other.channels = self.channels
        other.dtype = self.dtype
        other._tiles = dict(self._tiles)
        other._shared = set(self._tiles)
        self._shared.update(self._tiles)
        return other

    # -- pixels ----------------------------------------------------------------------------------
    def read(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """A new array with the pixels of the rectangle (zero where nothing is stored)."""
        if w < 0 or h < 0:
            raise ValueError(f"negative size {w}x{h}")
        out = self.empty(w, h)
        t = TILE_SIZE
        for tx, ty in tile_range(x, y, w, h):
            tile = self._tiles.get((tx, ty))
            if tile is None:
                continue
            ox, oy = tx * t, ty * t
            x0, y0 = max(x, ox), max(y, oy)
            x1, y1 = min(x + w, ox + t), min(y + h, oy + t)
            out[y0 - y : y1 - y, x0 - x : x1 - x] = tile[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        return out

    def write(
        self,
        x: int,
        y: int,
        array: np.ndarray,
        mask: np.ndarray | None = None,
        blend: Blend = "replace",
    ) -> Rect | None:
        """Write ``array`` with its top-left corner at (x, y); returns the written rectangle."""
        array = self._check_array(array)
        h, w = array.shape[:2]
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (h, w):
                raise ValueError(f"mask shape {mask.shape} does not match array {(h, w)}")
        if blend not in ("replace", "over"):
            raise ValueError(f"unknown blend {blend!r}")
        if blend == "over" and self.channels != 4:
            raise ValueError("blend='over' needs an RGBA raster")
        if w == 0 or h == 0:
            return None
        t = TILE_SIZE
        for tx, ty in tile_range(x, y, w, h):
            ox, oy = tx * t, ty * t
            x0, y0 = max(x, ox), max(y, oy)
            x1, y1 = min(x + w, ox + t), min(y + h, oy + t)
            src = array[y0 - y : y1 - y, x0 - x : x1 - x]
            m = None if mask is None else mask[y0 - y : y1 - y, x0 - x : x1 - x]
            key = (tx, ty)
            region = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
            if blend == "replace" and m is None and not src.any() and key not in self._tiles:
                continue
            tile = self._writable(key)
            dst = tile[region]
            dst[...] = self._blend(dst, src, m, blend)
            self._settle(key, region)
        return (x, y, w, h)

    def _blend(self, dst: np.ndarray, src: np.ndarray, mask: np.ndarray | None, blend: Blend) -> np.ndarray:
        if blend == "replace" and mask is None:
            return src
        weight = np.ones(src.shape[:2], np.float32) if mask is None else mask.astype(np.float32) / 255.0
        if self.channels != 4:
            w = weight if self.channels == 1 else weight[..., None]
            out = src.astype(np.float32) * w + dst.astype(np.float32) * (1.0 - w)
            return _round_to(out, self.dtype)
        sa = src[..., 3].astype(np.float32) / 255.0
        da = dst[..., 3].astype(np.float32) / 255.0
        if blend == "over":
            ws, wd = sa * weight, da * (1.0 - sa * weight)
        else:
            ws, wd = sa * weight, da * (1.0 - weight)
        out_a = ws + wd
        safe = np.where(out_a > 0, out_a, 1.0)
        rgb = (
            src[..., :3].astype(np.float32) * ws[..., None] + dst[..., :3].astype(np.float32) * wd[..., None]
        ) / safe[..., None]
        result = np.empty(src.shape, np.float32)
        result[..., :3] = rgb
        result[..., 3] = out_a * 255.0
        return _round_to(result, self.dtype)

    def clear_rect(self, x: int, y: int, w: int, h: int) -> Rect | None:
        """Make the rectangle empty; whole tiles inside it are dropped without touching pixels."""
        if w <= 0 or h <= 0:
            return None
        t = TILE_SIZE
        for tx, ty in tile_range(x, y, w, h):
            key = (tx, ty)
            if key not in self._tiles:
                continue
            ox, oy = tx * t, ty * t
            x0, y0 = max(x, ox), max(y, oy)
            x1, y1 = min(x + w, ox + t), min(y + h, oy + t)
            if x0 == ox and y0 == oy and x1 == ox + t and y1 == oy + t:
                del self._tiles[key]
                self._shared.discard(key)
                continue
            tile = self._writable(key)
            region = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
            tile[region] = 0
            self._settle(key, region)
        return (x, y, w, h)

    # -- extents ---------------------------------------------------------------------------------
    def tile_bounds(self) -> Rect | None:
        """Bounds of the stored tiles (a multiple of the tile size)."""
        if not self._tiles:
            return None
        xs = [k[0] for k in self._tiles]
        ys = [k[1] for k in self._tiles]
        t = TILE_SIZE
        return (min(xs) * t, min(ys) * t, (max(xs) - min(xs) + 1) * t, (max(ys) - min(ys) + 1) * t)

    def bounds(self) -> Rect | None:
        """The tight bounds of the non-empty pixels, or None for an empty raster."""
        if not self._tiles:
            return None
        xs = [k[0] for k in self._tiles]
        ys = [k[1] for k in self._tiles]
        t = TILE_SIZE
        min_tx, max_tx, min_ty, max_ty = min(xs), max(xs), min(ys), max(ys)
        x0, y0 = (max_tx + 1) * t, (max_ty + 1) * t
        x1, y1 = min_tx * t, min_ty * t
        # Only the tiles on the extreme rows and columns can hold the extreme pixels.
        for (tx, ty), tile in self._tiles.items():
            if tx not in (min_tx, max_tx) and ty not in (min_ty, max_ty):
                continue
            occupied: np.ndarray = tile != 0 if self.channels == 1 else np.any(tile, axis=2)
            cols = np.flatnonzero(np.any(occupied, axis=0))
            rows = np.flatnonzero(np.any(occupied, axis=1))
            x0, x1 = min(x0, tx * t + int(cols[0])), max(x1, tx * t + int(cols[-1]) + 1)
            y0, y1 = min(y0, ty * t + int(rows[0])), max(y1, ty * t + int(rows[-1]) + 1)
        return (x0, y0, x1 - x0, y1 - y0)


class MaskRaster(TiledRaster):
    """A single-channel uint8 raster (0..255, 255 = fully selected) with the same addressing."""

    def __init__(self) -> None:
        super().__init__(channels=1, dtype=np.uint8)

    def copy(self) -> MaskRaster:
        other = super().copy()
        assert isinstance(other, MaskRaster)
        return other


def _round_to(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)

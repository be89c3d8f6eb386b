"""Overlapping tiles over a latent, the weights that blend them, and tiled VAE encode/decode.

A frame larger than the model's native size is denoised tile by tile; every step the tiles' noise
predictions are blended with weights that ramp down across the overlaps (MultiDiffusion / Mixture of
Diffusers), and one scheduler step runs on the whole latent, so seams never form. Only one tile is
in the UNet at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A window (x, y, w, h) on a grid (latent cells or pixels)."""

    x: int
    y: int
    w: int
    h: int

    def scaled(self, factor: int) -> tuple[int, int, int, int]:
        return (self.x * factor, self.y * factor, self.w * factor, self.h * factor)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    count = math.ceil((size - tile) / stride) + 1
    # Spread the tiles evenly so the overlaps are all about the same width.
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def plan_tiles(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles of edge ``tile`` (clipped to the area) covering width x height, overlapping by at least
    ``overlap``, row by row."""
    if width <= 0 or height <= 0 or tile <= 0:
        raise ValueError("tile plan needs a positive area and tile size")
    overlap = max(0, min(overlap, tile - 1))
    tw, th = min(tile, width), min(tile, height)
    return [Tile(x, y, tw, th) for y in _starts(height, th, overlap) for x in _starts(width, tw, overlap)]


def tile_weight(tile: Tile, width: int, height: int, ramp: int) -> np.ndarray:
    """h x w float32 weights: 1 inside, ramping linearly towards edges that face another tile (edges on
    the border of the area stay at 1). Never 0, so every cell has some weight."""

    def axis(start: int, length: int, total: int) -> np.ndarray:
        w = np.ones(length, dtype=np.float32)
        if ramp <= 0:
            return w
        r = np.minimum(ramp, length // 2)
        if r <= 0:
            return w
        edge = (np.arange(r, dtype=np.float32) + 1.0) / (r + 1.0)
        if start > 0:
            w[:r] = np.minimum(w[:r], edge)
        if start + length < total:
            w[length - r :] = np.minimum(w[length - r :], edge[::-1])
        return w

    return np.outer(axis(tile.y, tile.h, height), axis(tile.x, tile.w, width))


class TileBlender:
    """Accumulates per-tile tensors (B, C, h, w) into a full-size weighted average."""

    def __init__(self, tiles: list[Tile], width: int, height: int, ramp: int, like: Any) -> None:
        import torch

        self.tiles = tiles
        self._weights = [
            torch.from_numpy(tile_weight(t, width, height, ramp)).to(like.device, like.dtype) for t in tiles
        ]
        self._shape = (like.shape[0], like.shape[1], height, width)
        self._like = like
        self.reset()

    def reset(self) -> None:
        import torch

        self.total = torch.zeros(self._shape, device=self._like.device, dtype=self._like.dtype)
        self.weight = torch.zeros(self._shape[2:], device=self._like.device, dtype=self._like.dtype)

    def add(self, index: int, value: Any) -> None:
        t, w = self.tiles[index], self._weights[index]
        self.total[:, :, t.y : t.y + t.h, t.x : t.x + t.w] += value * w
        self.weight[t.y : t.y + t.h, t.x : t.x + t.w] += w

    def result(self) -> Any:
        if len(self.tiles) == 1:
            return self.total  # weight is exactly 1 everywhere
        return self.total / self.weight


def tiled_map(x: Any, fn: Callable[[Any], Any], tile: int, overlap: int, factor: int, decode: bool) -> Any:
    """Apply a VAE encoder (``decode=False``: pixels -> latents, ``factor`` times smaller) or decoder
    (``decode=True``: latents -> pixels) to overlapping tiles of ``x`` and blend the outputs. ``tile``
    and ``overlap`` are in latent cells, so every tile starts on the latent grid. One call when x fits
    a single tile."""
    _, _, h, w = x.shape
    in_scale, out_scale = (1, factor) if decode else (factor, 1)
    lat_w, lat_h = w // in_scale, h // in_scale
    if lat_w <= tile and lat_h <= tile:
        return fn(x)
    tiles = plan_tiles(lat_w, lat_h, tile, overlap)
    out_tiles = [Tile(*t.scaled(out_scale)) for t in tiles]
    blender = None
    for i, t in enumerate(tiles):
        x0, y0, tw, th = t.scaled(in_scale)
        out = fn(x[:, :, y0 : y0 + th, x0 : x0 + tw])
        if blender is None:
            blender = TileBlender(out_tiles, lat_w * out_scale, lat_h * out_scale, overlap * out_scale, out)
        blender.add(i, out)
    assert blender is not None
    return blender.result()


def tiled_decode(
    z: Any,
    fn: Callable[[Any], Any],
    tile: int,
    overlap: int,
    factor: int,
    finish: Callable[[Any], np.ndarray],
) -> np.ndarray:
    """Decode latents ``z`` (1, C, h, w) in overlapping tiles of ``tile`` latent cells, blended as
    ``tiled_map`` does, into an H x W x channels array made by ``finish`` (a float band -> its
    pixels, e.g. uint8). Unlike ``tiled_map`` it never holds the whole image in floats: tiles come
    row by row, so the blend is kept for one row of tiles (a band) and every pixel row that no later
    tile reaches is finished and written out. An x4 upscale to 2048 px keeps a 2048 x 256 band of
    floats, not 2048 x 2048 of them."""
    import torch

    _, _, lat_h, lat_w = z.shape
    if lat_w <= tile and lat_h <= tile:
        return finish(fn(z))
    tiles = plan_tiles(lat_w, lat_h, tile, overlap)
    width, height, ramp = lat_w * factor, lat_h * factor, overlap * factor
    out: np.ndarray | None = None
    band: Any = None  # weighted sum over pixel rows [top, top + rows) of every tile added so far
    weight: Any = None
    top = 0
    for t in tiles:  # row by row (plan_tiles' order)
        x0, y0, tw, th = t.scaled(factor)
        if band is None or y0 != top:  # a new row of tiles: rows above it are done
            if band is not None:
                done = y0 - top
                pixels = finish(band[:, :, :done] / weight[:done])
                out = out if out is not None else np.empty((height, width) + pixels.shape[2:], pixels.dtype)
                out[top:y0] = pixels
                band, weight = band[:, :, done:], weight[done:]
            value = fn(z[:, :, t.y : t.y + t.h, t.x : t.x + t.w])
            grown = torch.zeros(value.shape[:2] + (th, width), device=value.device, dtype=value.dtype)
            grown_w = torch.zeros((th, width), device=value.device, dtype=value.dtype)
            if band is not None:
                grown[:, :, : band.shape[2]] = band
                grown_w[: weight.shape[0]] = weight
            band, weight, top = grown, grown_w, y0
        else:
            value = fn(z[:, :, t.y : t.y + t.h, t.x : t.x + t.w])
        w = torch.from_numpy(tile_weight(Tile(x0, y0, tw, th), width, height, ramp)).to(
            value.device, value.dtype
        )
        band[:, :, :th, x0 : x0 + tw] += value * w
        weight[:th, x0 : x0 + tw] += w
        del value
    pixels = finish(band / weight)
    out = out if out is not None else np.empty((height, width) + pixels.shape[2:], pixels.dtype)
    out[top:] = pixels
    return out

"""Tile plans, blending weights and tiled VAE passes (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_app.engine.tiling import Tile, TileBlender, plan_tiles, tile_weight, tiled_decode, tiled_map


@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    tile=st.integers(4, 128),
    overlap=st.integers(0, 64),
)
@settings(max_examples=100, deadline=None)
def test_plan_covers_area_with_tiles_inside_it(width: int, height: int, tile: int, overlap: int) -> None:
    tiles = plan_tiles(width, height, tile, overlap)
    covered = np.zeros((height, width), bool)
    for t in tiles:
        assert 0 <= t.x and t.x + t.w <= width and 0 <= t.y and t.y + t.h <= height
        assert t.w == min(tile, width) and t.h == min(tile, height)
        covered[t.y : t.y + t.h, t.x : t.x + t.w] = True
    assert covered.all()


def test_single_tile_when_area_fits() -> None:
    assert plan_tiles(64, 48, 64, 8) == [Tile(0, 0, 64, 48)]


def test_neighbours_overlap_at_least_as_asked() -> None:
    tiles = plan_tiles(256, 64, 64, 16)
    xs = sorted(t.x for t in tiles)
    assert all(b - a <= 64 - 16 for a, b in zip(xs, xs[1:], strict=False))


def test_weights_ramp_only_towards_neighbours() -> None:
    w = tile_weight(Tile(0, 0, 16, 16), 32, 16, ramp=4)
    assert w[:, 0].min() == 1.0  # the area's border
    assert w[:, -1].max() < 1.0  # facing the next tile
    assert (w > 0).all()


def test_blender_averages_constant_predictions_exactly() -> None:
    tiles = plan_tiles(40, 24, 16, 6)
    like = torch.zeros(1, 4, 24, 40)
    blender = TileBlender(tiles, 40, 24, 6, like)
    for i, t in enumerate(tiles):
        blender.add(i, torch.full((1, 4, t.h, t.w), 2.5))
    assert torch.allclose(blender.result(), torch.full((1, 4, 24, 40), 2.5))


@pytest.mark.parametrize("decode", [False, True])
def test_tiled_map_equals_direct_map_for_local_fn(decode: bool) -> None:
    factor = 4
    x = torch.randn(1, 3, 100, 164) if not decode else torch.randn(1, 3, 25, 41)

    def fn(t: torch.Tensor) -> torch.Tensor:
        if decode:
            return torch.nn.functional.interpolate(t, scale_factor=factor, mode="nearest") * 2
        return torch.nn.functional.avg_pool2d(t, factor) * 2

    tiled = tiled_map(x, fn, 8, 3, factor, decode)
    assert tiled.shape == fn(x).shape
    assert torch.allclose(tiled, fn(x), atol=1e-5)


@pytest.mark.parametrize("shape", [(25, 41), (8, 8), (6, 30), (33, 7)])
def test_tiled_decode_is_tiled_map_finished_band_by_band(shape: tuple[int, int]) -> None:
    # The upscale's memory (issue 15): the blend of a large decode is never held whole in floats.
    factor, tile, overlap = 4, 8, 3
    z = torch.randn(1, 3, *shape)

    def fn(t: torch.Tensor) -> torch.Tensor:  # not local: tiles disagree, so the blend matters
        up = torch.nn.functional.interpolate(t, scale_factor=factor, mode="nearest")
        return up * 2 + t.mean()

    bands: list[int] = []

    def finish(band: torch.Tensor) -> np.ndarray:
        bands.append(band.shape[2])
        return band[0].permute(1, 2, 0).numpy().copy()

    out = tiled_decode(z, fn, tile, overlap, factor, finish)
    whole = tiled_map(z, fn, tile, overlap, factor, True)[0].permute(1, 2, 0).numpy()
    assert out.shape == whole.shape and (out == whole).all()  # bit for bit
    assert sum(bands) == shape[0] * factor
    assert max(bands) <= min(tile, shape[0]) * factor

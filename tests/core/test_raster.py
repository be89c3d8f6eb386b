"""The sparse tiled raster against a dense numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_app.core.raster import TILE_SIZE, MaskRaster, TiledRaster

# The dense reference covers this window; every operation below stays inside it.
ORIGIN = -600
SIDE = 1200


def canonical(rgba: np.ndarray) -> np.ndarray:
    out = rgba.copy()
    out[out[..., 3] == 0] = 0
    return out


def rect_strategy(max_side: int = 300) -> st.SearchStrategy[tuple[int, int, int, int]]:
    return st.tuples(
        st.integers(ORIGIN, ORIGIN + SIDE - max_side),
        st.integers(ORIGIN, ORIGIN + SIDE - max_side),
        st.integers(1, max_side),
        st.integers(1, max_side),
    )


@st.composite
def operations(draw: st.DrawFn) -> list[tuple]:
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["write", "write", "masked", "over", "clear"]))
        x, y, w, h = draw(rect_strategy())
        seed = draw(st.integers(0, 2**16))
        ops.append((kind, x, y, w, h, seed))
    return ops


def random_rgba(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    arr = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    # Make sure some pixels are transparent and some are opaque, the cases with special handling.
    arr[..., 3] = rng.choice(np.array([0, 0, 255, 128, 7], np.uint8), (h, w))
    return arr


@settings(max_examples=40, deadline=None)
@given(operations(), rect_strategy(400))
def test_random_writes_agree_with_dense_reference(
    ops: list[tuple], read_rect: tuple[int, int, int, int]
) -> None:
    raster = TiledRaster()
    dense = np.zeros((SIDE, SIDE, 4), np.uint8)
    for kind, x, y, w, h, seed in ops:
        rng = np.random.default_rng(seed)
        region = (slice(y - ORIGIN, y - ORIGIN + h), slice(x - ORIGIN, x - ORIGIN + w))
        if kind == "clear":
            raster.clear_rect(x, y, w, h)
            dense[region] = 0
            continue
        src = random_rgba(rng, w, h)
        mask = rng.integers(0, 256, (h, w), dtype=np.uint8) if kind == "masked" else None
        blend = "over" if kind == "over" else "replace"
        raster.write(x, y, src, mask=mask, blend=blend)
        dense[region] = canonical(raster._blend(dense[region], src, mask, blend))
    rx, ry, rw, rh = read_rect
    expected = dense[ry - ORIGIN : ry - ORIGIN + rh, rx - ORIGIN : rx - ORIGIN + rw]
    np.testing.assert_array_equal(raster.read(rx, ry, rw, rh), expected)
    np.testing.assert_array_equal(raster.read(ORIGIN, ORIGIN, SIDE, SIDE), dense)
    # Stored tiles are exactly the non-empty ones, and bounds are tight.
    for tx, ty in raster.tile_keys():
        tile = raster.get_tile(tx, ty)
        assert tile is not None and tile.any()
    ys, xs = np.nonzero(dense[..., 3])
    if len(xs) == 0:
        assert raster.bounds() is None and len(raster) == 0
    else:
        expected_bounds = (
            int(xs.min()) + ORIGIN,
            int(ys.min()) + ORIGIN,
            int(xs.max() - xs.min()) + 1,
            int(ys.max() - ys.min()) + 1,
        )
        assert raster.bounds() == expected_bounds


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(rect_strategy(200), st.integers(0, 255)), min_size=1, max_size=5))
def test_mask_raster_agrees_with_dense_reference(writes: list) -> None:
    mask = MaskRaster()
    dense = np.zeros((SIDE, SIDE), np.uint8)
    for (x, y, w, h), value in writes:
        mask.write(x, y, np.full((h, w), value, np.uint8))
        dense[y - ORIGIN : y - ORIGIN + h, x - ORIGIN : x - ORIGIN + w] = value
    out = mask.read(ORIGIN, ORIGIN, SIDE, SIDE)
    assert out.shape == (SIDE, SIDE)
    np.testing.assert_array_equal(out, dense)
    expected_tiles = {
        (tx, ty)
        for tx in range(ORIGIN // TILE_SIZE, (ORIGIN + SIDE) // TILE_SIZE + 1)
        for ty in range(ORIGIN // TILE_SIZE, (ORIGIN + SIDE) // TILE_SIZE + 1)
        if mask.read(tx * TILE_SIZE, ty * TILE_SIZE, TILE_SIZE, TILE_SIZE).any()
    }
    assert set(mask.tile_keys()) == expected_tiles


def test_far_apart_pastes_cost_like_adjacent_ones() -> None:
    patch = np.full((512, 512, 4), 200, np.uint8)
    near, far = TiledRaster(), TiledRaster()
    near.write(0, 0, patch)
    near.write(512, 0, patch)
    far.write(0, 0, patch)
    far_x = 39_062 * TILE_SIZE  # about ten million pixels away, on the tile grid like the near one
    far.write(far_x, -far_x, patch)
    assert len(far) == len(near) == 8
    assert far.nbytes == near.nbytes
    np.testing.assert_array_equal(far.read(far_x, -far_x, 512, 512), patch)
    assert far.bounds() == (0, -far_x, far_x + 512, far_x + 512)
    # Off the grid the far paste touches at most 9 tiles instead of 4.
    far.write(10_000_001, 3, patch)
    assert len(far) == 8 + 9


def test_transparent_pixels_are_canonical_and_empty_tiles_dropped() -> None:
    raster = TiledRaster()
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., :3] = 99  # colour under alpha 0 carries no information
    raster.write(-2, -2, arr)
    assert len(raster) == 0
    arr[0, 0, 3] = 255
    raster.write(-2, -2, arr)
    assert raster.tile_keys() == [(-1, -1)]
    out = raster.read(-2, -2, 4, 4)
    assert out[0, 0].tolist() == [99, 99, 99, 255]
    assert not out[1:, 1:].any()
    raster.clear_rect(-2, -2, 1, 1)
    assert len(raster) == 0 and raster.bounds() is None


def test_clear_rect_drops_whole_tiles_and_trims_partial_ones() -> None:
    raster = TiledRaster()
    raster.write(0, 0, np.full((600, 600, 4), 255, np.uint8))
    assert len(raster) == 9
    raster.clear_rect(-10, -10, 266, 266)
    assert (0, 0) not in raster.tile_keys()
    assert raster.read(256, 0, 1, 1)[0, 0, 3] == 255
    raster.clear_rect(256, 0, 10, 600)
    assert raster.read(256, 0, 10, 600).sum() == 0
    assert raster.bounds() == (0, 0, 600, 600)


def test_over_blend_composites_straight_alpha() -> None:
    raster = TiledRaster()
    raster.write(0, 0, np.array([[[0, 0, 255, 255]]], np.uint8))
    raster.write(0, 0, np.array([[[255, 0, 0, 128]]], np.uint8), blend="over")
    r, g, b, a = raster.read(0, 0, 1, 1)[0, 0].tolist()
    assert a == 255
    assert abs(r - 128) <= 1 and g == 0 and abs(b - 127) <= 1
    # Over an empty pixel the source comes through unchanged.
    raster.write(5, 5, np.array([[[10, 20, 30, 40]]], np.uint8), blend="over")
    assert raster.read(5, 5, 1, 1)[0, 0].tolist() == [10, 20, 30, 40]


def test_masked_write_interpolates_and_keeps_unmasked_pixels() -> None:
    raster = TiledRaster()
    base = np.full((2, 2, 4), 255, np.uint8)
    base[..., :3] = 0
    raster.write(0, 0, base)
    mask = np.array([[0, 255], [128, 0]], np.uint8)
    raster.write(0, 0, np.full((2, 2, 4), 255, np.uint8), mask=mask)
    out = raster.read(0, 0, 2, 2)
    assert out[0, 0].tolist() == [0, 0, 0, 255]
    assert out[0, 1].tolist() == [255, 255, 255, 255]
    assert out[1, 0, 0] == 128 and out[1, 0, 3] == 255
    assert out[1, 1].tolist() == [0, 0, 0, 255]


def test_copy_on_write_keeps_references_stable() -> None:
    raster = TiledRaster()
    raster.write(0, 0, np.full((10, 10, 4), 50, np.uint8))
    tile = raster.get_tile(0, 0)
    snap = raster.snapshot()
    assert tile is not None and not tile.flags.writeable
    raster.write(0, 0, np.full((10, 10, 4), 90, np.uint8))
    assert tile[0, 0, 0] == 50 and snap[(0, 0)] is not None and snap[(0, 0)][0, 0, 0] == 50
    assert raster.read(0, 0, 1, 1)[0, 0, 0] == 90
    raster.restore(snap)
    assert raster.read(0, 0, 1, 1)[0, 0, 0] == 50
    clone = raster.copy()
    raster.clear_rect(0, 0, 5, 5)
    assert clone.read(0, 0, 1, 1)[0, 0, 0] == 50


def test_input_validation() -> None:
    raster = TiledRaster()
    with pytest.raises(ValueError, match="HxWx4"):
        raster.write(0, 0, np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        raster.write(0, 0, np.zeros((3, 3, 4), np.float32))
    with pytest.raises(ValueError, match="mask shape"):
        raster.write(0, 0, np.zeros((3, 3, 4), np.uint8), mask=np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="tile must have shape"):
        raster.set_tile(0, 0, np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="RGBA"):
        MaskRaster().write(0, 0, np.zeros((3, 3), np.uint8), blend="over")
    assert raster.read(5, 5, 0, 0).shape == (0, 0, 4)


def test_set_tile_round_trip_and_empty_tile_dropped() -> None:
    raster = TiledRaster()
    tile = np.zeros((TILE_SIZE, TILE_SIZE, 4), np.uint8)
    raster.set_tile(3, -4, tile)
    assert len(raster) == 0
    tile[7, 9] = [1, 2, 3, 4]
    raster.set_tile(3, -4, tile)
    assert raster.read(3 * TILE_SIZE + 9, -4 * TILE_SIZE + 7, 1, 1)[0, 0].tolist() == [1, 2, 3, 4]
    raster.set_tile(3, -4, None)
    assert len(raster) == 0

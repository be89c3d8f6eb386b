"""Brush dabs and strokes into image and mask rasters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_app.core.brush import BrushSettings, Stroke, dab_coverage, paint_stroke
from canvas_app.core.raster import MaskRaster, TiledRaster


def test_fast_stroke_leaves_no_gaps() -> None:
    # One pointer event per 300 px: the stroke must still be continuous along the line.
    raster = TiledRaster()
    settings = BrushSettings(size=10, hardness=1.0, color=(255, 0, 0))
    rect = paint_stroke(raster, [(-250.0, 20.0), (50.0, 20.0), (350.0, 20.0)], settings)
    assert rect is not None
    row = raster.read(-250, 20, 601, 1)[0]
    assert (row[:, 3] == 255).all()
    assert (row[:, 0] == 255).all() and not row[:, 1:3].any()
    x, y, w, h = rect
    assert x <= -255 and x + w >= 355 and y <= 15 and y + h >= 25


def test_dirty_rect_covers_every_changed_pixel() -> None:
    raster = TiledRaster()
    stroke = Stroke(raster, BrushSettings(size=33, hardness=0.3))
    for p in [(3.3, 4.4), (40.0, 90.0), (120.5, -30.25)]:
        stroke.move_to(*p)
    assert stroke.dirty is not None
    x, y, w, h = stroke.dirty
    everything = raster.read(x - 50, y - 50, w + 100, h + 100)
    inside = everything[50 : 50 + h, 50 : 50 + w]
    assert everything[..., 3].sum() == inside[..., 3].sum() > 0
    assert stroke.dabs > 10


def test_opacity_is_a_ceiling_per_stroke() -> None:
    raster = TiledRaster()
    settings = BrushSettings(size=20, hardness=1.0, opacity=0.5, spacing=0.05)
    # Many overlapping dabs, and the stroke doubles back on itself.
    paint_stroke(raster, [(0, 0), (100, 0), (0, 0)], settings)
    assert raster.read(50, 0, 1, 1)[0, 0, 3] == 128
    # A second stroke builds on top of the first.
    paint_stroke(raster, [(0, 0), (100, 0)], settings)
    assert abs(int(raster.read(50, 0, 1, 1)[0, 0, 3]) - 191) <= 1


def test_hardness_controls_the_edge() -> None:
    hard_rect, hard = dab_coverage(BrushSettings(size=40, hardness=1.0), 0.0, 0.0)
    _, soft = dab_coverage(BrushSettings(size=40, hardness=0.0), 0.0, 0.0)
    x, y, w, h = hard_rect
    centre = (-y, -x)
    assert hard[centre] == pytest.approx(1.0) and soft[centre] == pytest.approx(1.0, abs=0.1)
    # Halfway out, the hard brush is solid and the soft one already fading.
    half = (-y, -x + 10)
    assert hard[half] == pytest.approx(1.0)
    assert 0.2 < soft[half] < 0.9
    # Hard edges are antialiased over about one pixel, never wider.
    partial = ((hard > 0) & (hard < 1)).sum()
    assert 0 < partial < 2 * np.pi * 20 * 2
    assert hard.max() <= 1.0 and soft.min() >= 0.0


def test_eraser_removes_alpha() -> None:
    raster = TiledRaster()
    raster.write(0, 0, np.full((50, 50, 4), 255, np.uint8))
    paint_stroke(raster, [(25, 0), (25, 50)], BrushSettings(size=10, hardness=1.0, erase=True))
    assert raster.read(25, 10, 1, 1)[0, 0].tolist() == [0, 0, 0, 0]
    assert raster.read(5, 10, 1, 1)[0, 0, 3] == 255
    half = TiledRaster()
    half.write(0, 0, np.full((50, 50, 4), 255, np.uint8))
    paint_stroke(half, [(25, 25)], BrushSettings(size=10, hardness=1.0, erase=True, opacity=0.25))
    assert half.read(25, 25, 1, 1)[0, 0].tolist() == [255, 255, 255, 191]


def test_mask_painting_and_erasing() -> None:
    mask = MaskRaster()
    paint_stroke(mask, [(-300, -300), (-200, -300)], BrushSettings(size=16, hardness=0.5))
    assert mask.read(-250, -300, 1, 1)[0, 0] == 255
    assert mask.read(-250, -291, 1, 1)[0, 0] < 40
    assert mask.read(-250, -280, 1, 1)[0, 0] == 0
    paint_stroke(mask, [(-250, -320), (-250, -280)], BrushSettings(size=8, hardness=1.0, erase=True))
    assert mask.read(-250, -300, 1, 1)[0, 0] == 0
    assert mask.read(-220, -300, 1, 1)[0, 0] == 255


def test_stroke_remembers_tiles_before_it() -> None:
    raster = TiledRaster()
    raster.write(0, 0, np.full((10, 10, 4), 77, np.uint8))
    stroke = Stroke(raster, BrushSettings(size=30))
    stroke.move_to(5, 20)
    stroke.move_to(300, 20)
    # The dab at x=5 reaches x<0: tiles left of the origin are touched (and were empty).
    assert set(stroke.before) == {(-1, 0), (0, 0), (1, 0)}
    assert stroke.before[(-1, 0)] is None
    assert stroke.before[(1, 0)] is None
    before = stroke.before[(0, 0)]
    assert before is not None and before[0, 0, 0] == 77 and before[0, 0, 3] == 77
    assert raster.read(5, 9, 1, 1)[0, 0].tolist() == [0, 0, 0, 255]
    assert raster.read(0, 0, 1, 1)[0, 0].tolist() == [77, 77, 77, 77]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="size"):
        BrushSettings(size=0)
    with pytest.raises(ValueError, match="hardness"):
        BrushSettings(hardness=1.5)
    with pytest.raises(ValueError, match="opacity"):
        BrushSettings(opacity=-0.1)
    with pytest.raises(ValueError, match="color"):
        BrushSettings(color=(0, 0, 300))
    with pytest.raises(ValueError, match="RGBA uint8"):
        Stroke(TiledRaster(3), BrushSettings())


@settings(max_examples=15, deadline=None)
@given(
    # Points on a 1/8 px grid: shifting them by whole pixels is exact in floating point.
    st.lists(
        st.tuples(st.integers(0, 2400).map(lambda v: v / 8), st.integers(0, 2400).map(lambda v: v / 8)),
        min_size=1,
        max_size=4,
    ),
    st.integers(-5000, 5000),
    st.integers(-5000, 5000),
    st.floats(4, 40),
    st.floats(0, 1),
    st.booleans(),
)
def test_strokes_do_not_depend_on_where_tiles_start(
    points: list, dx: int, dy: int, size: float, hardness: float, on_mask: bool
) -> None:
    # The same stroke shifted by whole pixels gives the same pixels, wherever the tile seams fall.
    settings_ = BrushSettings(size=size, hardness=hardness, opacity=0.7, color=(10, 200, 30))
    a, b = (MaskRaster(), MaskRaster()) if on_mask else (TiledRaster(), TiledRaster())
    ra = paint_stroke(a, points, settings_)
    rb = paint_stroke(b, [(x + dx, y + dy) for x, y in points], settings_)
    assert ra is not None and rb is not None
    assert (rb[0] - ra[0], rb[1] - ra[1], rb[2:]) == (dx, dy, ra[2:])
    np.testing.assert_array_equal(a.read(*ra), b.read(*rb))
    assert a.bounds() is not None and (a.bounds()[2:] == b.bounds()[2:])  # type: ignore[index]

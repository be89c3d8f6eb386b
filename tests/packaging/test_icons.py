"""The committed icons exist in every hicolor size, are what make_icons.py draws, and look like an icon
(transparent corners, opaque middle)."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from canvas_app.resources import ICON_SIZES, icon_path

ROOT = Path(__file__).resolve().parents[2]
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
NAMES = (("apps", "canvas-app"), ("mimetypes", "application-x-canvas-app-project"))


def _make_icons():
    spec = importlib.util.spec_from_file_location("make_icons", ROOT / "packaging" / "make_icons.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class body runs.
    sys.modules["make_icons"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", ICON_SIZES)
@pytest.mark.parametrize(("context", "name"), NAMES)
def test_png_exists_in_every_size(size: int, context: str, name: str) -> None:
    path = HICOLOR / f"{size}x{size}" / context / f"{name}.png"
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (size, size) and img.mode == "RGBA"
        alpha = np.asarray(img)[..., 3]
    assert [alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]] == [0, 0, 0, 0]
    assert alpha[size // 2, size // 2] == 255
    assert (alpha > 0).mean() > 0.3


@pytest.mark.parametrize(("context", "name"), NAMES)
def test_svg_is_well_formed(context: str, name: str) -> None:
    root = ET.parse(HICOLOR / "scalable" / context / f"{name}.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(list(root)) > 5


def test_sizes_agree_between_generator_and_locator() -> None:
    assert tuple(_make_icons().SIZES) == ICON_SIZES


def test_committed_pngs_match_the_generator(tmp_path: Path) -> None:
    # Redraw at two sizes: a stale icon (generator changed, PNGs not regenerated) fails here.
    module = _make_icons()
    for size in (32, 128):
        fresh = np.asarray(module.render_png(module.app_icon_shapes(), size), dtype=np.int16)
        with Image.open(HICOLOR / f"{size}x{size}" / "apps" / "canvas-app.png") as img:
            committed = np.asarray(img, dtype=np.int16)
        # Small tolerance: a different Pillow build may anti-alias a little differently.
        assert np.abs(fresh - committed).mean() < 2.0


def test_icon_path_picks_the_smallest_size_that_fits() -> None:
    assert icon_path(48).name == "canvas-app.png" and icon_path(48).parent.parent.name == "48x48"
    assert icon_path(40).parent.parent.name == "48x48"
    assert icon_path(4096).parent.parent.name == "512x512"
    assert icon_path().suffix == ".svg"
    for size in (1, 16, 100, 1000):
        assert icon_path(size).is_file()
    with pytest.raises(ValueError):
        icon_path(0)

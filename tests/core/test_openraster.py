"""OpenRaster: files shaped like Krita's and GIMP's import with their layers at their offsets,
visibility and opacity; a .canvas project is itself an OpenRaster image at full resolution."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from canvas_app.core import project_file
from canvas_app.core.document import Document
from canvas_app.core.openraster import MAX_ORA_LAYERS, OpenRasterError, read_openraster
from canvas_app.core.project_file import (
    MANIFEST,
    MIMETYPE,
    OpenRasterNotProjectError,
    load_project,
    save_project,
)


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def solid(w: int, h: int, rgba: tuple[int, int, int, int]) -> np.ndarray:
    return np.tile(np.array(rgba, np.uint8), (h, w, 1))


def write_ora(path: Path, stack: str, layers: dict[str, bytes], merged: np.ndarray | None = None) -> Path:
    """An .ora as Krita and GIMP write it: stored mimetype first, stack.xml, data/*.png layers,
    mergedimage.png and a thumbnail."""
    merged = merged if merged is not None else np.zeros((4, 4, 4), np.uint8)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", zipfile.ZIP_STORED)
        zf.writestr("stack.xml", stack, zipfile.ZIP_DEFLATED)
        for name, data in layers.items():
            zf.writestr(name, data, zipfile.ZIP_STORED)
        zf.writestr("mergedimage.png", png(merged), zipfile.ZIP_STORED)
        thumb = Image.fromarray(merged)
        thumb.thumbnail((256, 256))
        zf.writestr("Thumbnails/thumbnail.png", png(np.asarray(thumb)), zipfile.ZIP_STORED)
    return path


# Krita 5: a root stack with a nested group (isolation, selected, its own opacity), layers at
# offsets, a hidden layer, a half-transparent layer; top of the list is top of the picture.
KRITA_STACK = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE-free>
<image w="200" h="120" xres="300" yres="300" version="0.0.5">
 <stack opacity="1" name="root" visibility="visible" isolation="isolate" composite-op="svg:src-over">
  <layer name="hidden sketch" src="data/layer4.png" x="0" y="0" opacity="1" visibility="hidden"
         composite-op="svg:src-over" selected="false"/>
  <stack name="Group 1" x="0" y="0" opacity="0.5" visibility="visible" isolation="isolate"
         composite-op="svg:src-over">
   <layer name="white square" src="data/layer3.png" x="100" y="80" opacity="1" visibility="visible"
          composite-op="svg:src-over"/>
  </stack>
  <layer name="blue glaze" src="data/layer2.png" x="40" y="30" opacity="0.5" visibility="visible"
         composite-op="svg:src-over" selected="true"/>
  <layer name="Background" src="data/layer1.png" x="10" y="5" opacity="1" visibility="visible"
         composite-op="svg:src-over"/>
 </stack>
</image>
""".replace("<!DOCTYPE-free>\n", "")

# GIMP 2.10 (file-openraster): minimal attributes, no composite-op on the stack.
GIMP_STACK = """<?xml version='1.0' encoding='UTF-8'?>
<image h="60" version="0.0.1" w="80">
 <stack>
  <layer composite-op="svg:src-over" name="dot" opacity="1.0" src="data/dot.png" visibility="visible"
         x="-5" y="50" />
  <layer composite-op="svg:multiply" name="paper" opacity="1.0" src="data/paper.png" visibility="visible"
         x="0" y="0" />
 </stack>
</image>
"""


def krita_file(tmp_path: Path) -> Path:
    return write_ora(
        tmp_path / "krita.ora",
        KRITA_STACK,
        {
            "data/layer1.png": png(solid(100, 80, (255, 0, 0, 255))),
            "data/layer2.png": png(solid(20, 20, (0, 0, 255, 255))),
            "data/layer3.png": png(solid(30, 30, (255, 255, 255, 255))),
            "data/layer4.png": png(solid(200, 120, (0, 255, 0, 255))),
        },
    )


def test_krita_layers_composite_at_offsets_with_opacity_and_visibility(tmp_path: Path) -> None:
    image = read_openraster(str(krita_file(tmp_path)), "krita.ora")
    px = image.pixels
    assert px.shape == (120, 200, 4) and image.layers == 3  # the visible ones
    assert tuple(px[0, 0]) == (0, 0, 0, 0)  # outside every visible layer; the hidden green is left out
    assert tuple(px[5, 10]) == (255, 0, 0, 255) and tuple(px[84, 60]) == (255, 0, 0, 255)
    assert tuple(px[85, 60]) == (0, 0, 0, 0) and tuple(px[50, 110]) == (
        0,
        0,
        0,
        0,
    )  # just past the red layer's 100x80 at (10, 5)
    assert tuple(px[35, 45]) == (128, 0, 128, 255)  # blue at 0.5 over red
    assert tuple(px[90, 120]) == (255, 255, 255, 128)  # the group's opacity 0.5 over nothing
    assert tuple(px[82, 105]) == (255, 128, 128, 255)  # white at 0.5 over red
    assert any("hidden" in n and "hidden sketch" in n for n in image.notes)


def test_gimp_file_with_negative_offset_and_blend_mode(tmp_path: Path) -> None:
    path = write_ora(
        tmp_path / "gimp.ora",
        GIMP_STACK,
        {
            "data/dot.png": png(solid(10, 20, (0, 200, 0, 255))),
            "data/paper.png": png(solid(80, 60, (250, 240, 230, 255))),
        },
    )
    px = read_openraster(str(path), "gimp.ora").pixels
    assert px.shape == (60, 80, 4)
    assert tuple(px[55, 0]) == (0, 200, 0, 255) and tuple(px[55, 5]) == (250, 240, 230, 255)
    assert any("svg:multiply" in n for n in read_openraster(str(path), "gimp.ora").notes)


@pytest.mark.parametrize(
    ("stack", "layers", "message"),
    [
        (
            '<image w="10" h="10"><stack>'
            + '<layer src="a.png"/>' * (MAX_ORA_LAYERS + 1)
            + "</stack></image>",
            {"a.png": png(solid(1, 1, (1, 2, 3, 4)))},
            "more than 1000 layers",
        ),
        ('<image w="100000" h="100000"><stack/></image>', {}, "declares a 100000x100000 image"),
        ('<image w="10" h="10"><stack><layer src="nope.png"/></stack></image>', {}, "missing 'nope.png'"),
        (
            '<image w="10" h="10"><stack>' + "<stack>" * 40 + "</stack>" * 40 + "</stack></image>",
            {},
            "nests layer groups more than 32 deep",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><image w="1" h="1"><stack/></image>',
            {},
            "declares entities",
        ),
        ('<image w="10" h="10"><stack><layer src="a.png" x="1e99"/></stack></image>', {}, "not a pixel"),
        ("<image w='10' h='10'><stack><layer", {}, "not valid XML"),
    ],
)
def test_hostile_openraster_fails_fast_and_clearly(
    tmp_path: Path, stack: str, layers: dict, message: str
) -> None:
    path = write_ora(tmp_path / "bad.ora", stack, layers)
    start = time.perf_counter()
    with pytest.raises(OpenRasterError, match=message):
        read_openraster(str(path), "bad.ora")
    assert time.perf_counter() - start < 2.0


def test_openraster_layers_are_bounded_by_memory(tmp_path: Path) -> None:
    path = write_ora(
        tmp_path / "big.ora",
        '<image w="1000" h="1000"><stack><layer src="a.png"/></stack></image>',
        {"a.png": png(solid(1000, 1000, (1, 2, 3, 255)))},
    )
    with pytest.raises(OpenRasterError, match="more than the .* allowed"):
        read_openraster(str(path), "big.ora", max_bytes=2**20)
    with pytest.raises(OpenRasterError, match="need more memory than allowed"):
        read_openraster(str(path), "big.ora", max_bytes=16 * 10**6 + 2**20)


def test_truncated_openraster_is_damaged_or_incomplete(tmp_path: Path) -> None:
    path = krita_file(tmp_path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(OpenRasterError, match="damaged or incomplete"):
        read_openraster(str(path), "krita.ora")


# -- a project is an OpenRaster image ---------------------------------------------------------------
def big_document() -> tuple[Document, np.ndarray]:
    """Content 2300x1400 at a negative offset, as in the issue (Krita showed a 1024x623 preview)."""
    rng = np.random.default_rng(11)
    pixels = rng.integers(0, 256, (1400, 2300, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[600:700, 1000:1200, 3] = 0  # a transparent hole stays transparent
    doc = Document()
    doc.paste(-500, 300, pixels)
    return doc, pixels


def test_canvas_opens_as_openraster_at_full_resolution(tmp_path: Path) -> None:
    doc, pixels = big_document()
    path = tmp_path / "art.canvas"
    save_project(doc, path)
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert zf.read(first) == b"image/openraster"
        stack = ElementTree.fromstring(zf.read("stack.xml"))
        assert (stack.get("w"), stack.get("h")) == ("2300", "1400")
        layer = stack.find("stack/layer")
        assert layer is not None and (layer.get("x"), layer.get("y")) == ("0", "0")
        with Image.open(io.BytesIO(zf.read(layer.get("src", "")))) as img:
            assert img.size == (2300, 1400) and img.mode == "RGBA"
            # Pillow (an independent PNG decoder) reads the streamed image bit for bit.
            layer_pixels = np.asarray(img)
        with Image.open(io.BytesIO(zf.read("mergedimage.png"))) as img:
            assert img.size == (2300, 1400)
        with Image.open(io.BytesIO(zf.read("Thumbnails/thumbnail.png"))) as img:
            assert max(img.size) == 256
    expected = pixels.copy()
    expected[600:700, 1000:1200] = 0  # fully transparent pixels are stored as zeros
    np.testing.assert_array_equal(layer_pixels, expected)
    # Our own OpenRaster reader (the import path) sees the same picture.
    np.testing.assert_array_equal(read_openraster(str(path), "art.canvas").pixels, expected)
    # And our loader still knows it as a project, with its tiles at their canvas offsets.
    loaded = load_project(path)
    assert loaded.image.bounds() == (-500, 300, 2300, 1400)
    np.testing.assert_array_equal(
        loaded.image.read(-500, 300, 2300, 1400), doc.image.read(-500, 300, 2300, 1400)
    )


def test_full_view_is_skipped_only_for_huge_sparse_canvases() -> None:
    assert project_file.full_view_fits((0, 0, 32768, 8192))
    assert not project_file.full_view_fits((0, 0, 10_000_000, 300))
    assert not project_file.full_view_fits((0, 0, 20000, 20000))


def test_projects_of_the_first_container_still_load(tmp_path: Path) -> None:
    doc, _ = big_document()
    path = tmp_path / "old.canvas"
    save_project(doc, path)
    # Rewrite as canvas-app 0.1 wrote it: our type as the first entry, no canvas/mimetype.
    with zipfile.ZipFile(path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    old = tmp_path / "really-old.canvas"
    with zipfile.ZipFile(old, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, zipfile.ZIP_STORED)
        for name, data in entries:
            if name not in ("mimetype", MANIFEST):
                zf.writestr(name, data)
    assert load_project(old).image.bounds() == (-500, 300, 2300, 1400)


def test_plain_openraster_is_told_apart_from_a_project(tmp_path: Path) -> None:
    path = krita_file(tmp_path)
    with pytest.raises(OpenRasterNotProjectError, match="OpenRaster image, not a canvas project"):
        load_project(path)

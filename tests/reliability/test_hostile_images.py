"""Hostile or unusual image files: a clear error and nothing changed, or a correct conversion.

Each case goes through ``core.image_io.read_image`` (shared by the GUI import and the CLI), the
GUI's ``load_image_file`` and the window's drop handler, and the CLI's ``read_image``."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from png_bombs import png_header_only

from canvas_app import cli
from canvas_app.core.image_io import ImageReadError, read_image
from canvas_app.ui.image_import import ImportError_, load_image_file


def photo(w: int = 48, h: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], axis=2).astype(np.uint8)


def encoded(array: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


# -- refused with a clear error -------------------------------------------------------------------
def bad_files() -> dict[str, tuple[str, bytes, str]]:
    png = encoded(photo(256, 256), "PNG")
    jpg = encoded(photo(256, 256), "JPEG", quality=90)
    return {
        "truncated png": ("cut.png", png[: len(png) // 2], "damaged"),
        "truncated jpeg": ("cut.jpg", jpg[: len(jpg) // 3], "damaged"),
        "png header only": ("head.png", png[:40], "damaged|not an image"),
        "text named .png": ("notes.png", b"these are my notes, not a picture\n" * 20, "not an image"),
        "empty .jpg": ("empty.jpg", b"", "not an image"),
        "zip named .webp": ("archive.webp", b"PK\x03\x04" + bytes(200), "not an image"),
        "pillow's bomb limit": ("bomb.png", png_header_only(40000, 40000), "too large"),
        "our pixel cap": ("big.png", png_header_only(17000, 17000), "too large"),
    }


@pytest.mark.parametrize("case", list(bad_files()))
def test_bad_images_are_refused_clearly(tmp_path: Path, case: str) -> None:
    name, data, message = bad_files()[case]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(path)
    assert name in str(info.value)
    with pytest.raises(ImportError_, match=name):
        load_image_file(path)
    with pytest.raises(cli.UsageError, match=f"cannot read init image .*{name}"):
        cli.read_image(str(path), "init")
    assert path.read_bytes() == data and [p.name for p in tmp_path.iterdir()] == [name]


def test_our_pixel_cap_holds_when_pillows_limit_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(20000, 20000))
    with pytest.raises(ImageReadError, match="20000x20000 pixels, more than"):
        read_image(path)
    with pytest.raises(ImageReadError, match="more than the 100 allowed"):
        read_image(path, max_pixels=100)


def test_dropping_a_bad_file_on_the_window_shows_an_error_and_changes_nothing(qtbot, tmp_path: Path) -> None:
    from helpers import make_window

    window = make_window(qtbot, tmp_path)
    path = tmp_path / "cut.png"
    path.write_bytes(encoded(photo(), "PNG")[:60])
    window.import_files([str(path)], 0.0, 0.0)
    assert "cut.png" in window.banner.text and window.place_tool.floating is None
    assert not window.ws.doc.modified and window.ws.doc.image.bounds() is None


# -- converted, not refused -----------------------------------------------------------------------
def test_16_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    pixels, _ = read_image(tmp_path / "g16.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (16, 64, 4)
    assert np.abs(pixels[..., 0].astype(int) - (ramp >> 8)).max() <= 1
    assert (pixels[..., 0] == pixels[..., 2]).all() and (pixels[..., 3] == 255).all()
    assert 100 < np.median(pixels[..., 0]) < 155  # a mid-grey ramp, not a white wall


def test_16_bit_rgb_png(tmp_path: Path) -> None:
    # Pillow has no 16-bit RGB mode: write the PNG by hand and check the colours survive.
    rgb16 = (photo(8, 4).astype(np.uint16) * 257).astype(">u2")
    raw = b"".join(b"\0" + row.tobytes() for row in rgb16)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 4, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    (tmp_path / "rgb16.png").write_bytes(data)
    pixels, _ = read_image(tmp_path / "rgb16.png", "RGB")
    assert np.abs(pixels.astype(int) - photo(8, 4)).max() <= 1


def test_palette_with_transparency_keeps_its_alpha(tmp_path: Path) -> None:
    img = Image.fromarray(photo(32, 16)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.info["transparency"] = 0
    img.save(tmp_path / "pal.png", transparency=0)
    pixels, _ = read_image(tmp_path / "pal.png")
    index = np.asarray(Image.open(tmp_path / "pal.png"))
    assert ((pixels[..., 3] == 0) == (index == 0)).all() and (pixels[..., 3] == 0).any()
    assert read_image(tmp_path / "pal.png", "auto")[0].shape[2] == 4
    Image.fromarray(photo(32, 16)).convert("P").save(tmp_path / "opaque.gif")
    assert read_image(tmp_path / "opaque.gif", "auto")[0].shape == (16, 32, 3)


def test_cmyk_jpeg_and_tiff_become_rgb(tmp_path: Path) -> None:
    rgb = photo()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=98)
    cmyk.save(tmp_path / "c.tif")
    for name, tolerance in (("c.tif", 1), ("c.jpg", 40)):
        pixels, _ = read_image(tmp_path / name, "RGB")
        assert pixels.shape == rgb.shape
        assert np.abs(pixels.astype(int) - rgb).mean() < tolerance / 4, name
        assert np.abs(pixels.astype(int) - rgb).max() <= tolerance * 4, name


@pytest.mark.parametrize("mode", ["LA", "RGBA", "L", "1", "I", "F"])
def test_other_modes_convert(tmp_path: Path, mode: str) -> None:
    grey = photo()[..., 0]
    alpha = np.where(photo()[..., 1] > 128, 255, 0).astype(np.uint8)
    if mode == "LA":
        img = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(alpha)])
    elif mode == "RGBA":
        img = Image.fromarray(np.dstack([photo(), alpha]), "RGBA")
    elif mode == "I":
        img = Image.fromarray(grey.astype(np.int32) * 257)  # 32-bit ints holding 16-bit values
    elif mode == "F":
        img = Image.fromarray(grey.astype(np.float32) / 255.0)  # floats in 0..1
    else:
        img = Image.fromarray(grey).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("I", "F") else "x.png")
    img.save(path)
    pixels, _ = read_image(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (32, 48, 4)
    if mode in ("LA", "RGBA"):
        assert (pixels[..., 3] == alpha).all()
    if mode in ("L", "LA", "I", "F"):
        assert np.abs(pixels[..., 0].astype(int) - grey).max() <= 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_jpeg_is_upright(tmp_path: Path, orientation: int) -> None:
    # Store the pixels as a camera would (sideways) with the EXIF tag that turns them upright.
    upright = np.zeros((40, 80, 3), np.uint8)
    upright[:, :20] = (250, 0, 0)  # a red band on the left of the upright image
    stored = Image.fromarray(upright)
    stored = {3: stored.rotate(180), 6: stored.rotate(90, expand=True), 8: stored.rotate(-90, expand=True)}[
        orientation
    ]
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "cam.jpg", exif=exif, quality=95)
    pixels, _ = read_image(tmp_path / "cam.jpg")
    assert pixels.shape[:2] == (40, 80)
    assert pixels[:, :15, 0].mean() > 200 and pixels[:, 25:, 0].mean() < 40
    assert load_image_file(tmp_path / "cam.jpg")[0].shape[:2] == (40, 80)
    assert cli.read_image(str(tmp_path / "cam.jpg"), "init").shape[:2] == (40, 80)


def test_png_text_metadata_survives(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat, ünïcødé")
    Image.fromarray(photo()).save(tmp_path / "m.png", pnginfo=info)
    assert read_image(tmp_path / "m.png")[1] == {"parameters": "a cat, ünïcødé"}

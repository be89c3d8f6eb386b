"""The .canvas project file: bit-exact round trip, atomic saves, refusal of malformed files, export."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from png_bombs import png_header_only

from canvas_app.core import export, project_file
from canvas_app.core.brush import BrushSettings
from canvas_app.core.document import Document
from canvas_app.core.frames import Patch, PromptFrame, ViewState
from canvas_app.core.project_file import (
    DOCUMENT_JSON,
    MIMETYPE,
    ProjectError,
    export_ora,
    export_png,
    load_project,
    save_project,
)
from canvas_app.core.raster import TILE_SIZE


def sample_document() -> Document:
    doc = Document()
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (300, 400, 4), dtype=np.uint8)
    doc.paste(-150, -100, pixels)
    doc.paste(39_062 * TILE_SIZE, 7, pixels[:50, :60])
    doc.stroke(BrushSettings(size=20, hardness=0.2), [(0, 0), (80, 40)], layer="mask")
    frame = doc.add_frame(x=16, y=-8, w=128, h=64, prompt="ünïcode ☀", seed=9, guidance=3.25)
    doc.add_patch(Patch(frame.id, 16, -8, 8, 8, seed=9, request_json='{"a": 1}', created=1.5), pixels[:8, :8])
    doc.view = ViewState(center_x=12.5, center_y=-3.0, zoom=0.25, active_frame=frame.id)
    doc.metadata = {"author": "test"}
    return doc


def assert_same_document(a: Document, b: Document) -> None:
    assert sorted(a.image.tile_keys()) == sorted(b.image.tile_keys())
    for key in a.image.tile_keys():
        np.testing.assert_array_equal(a.image.get_tile(*key), b.image.get_tile(*key))
    assert sorted(a.mask.tile_keys()) == sorted(b.mask.tile_keys())
    for key in a.mask.tile_keys():
        np.testing.assert_array_equal(a.mask.get_tile(*key), b.mask.get_tile(*key))
    assert list(a.frames.items()) == list(b.frames.items())
    assert a.patches == b.patches
    assert a.view == b.view
    assert a.metadata == b.metadata


def test_round_trip_is_exact(tmp_path: Path) -> None:
    doc = sample_document()
    path = tmp_path / "art.canvas"
    save_project(doc, path)
    assert not doc.modified and doc.path == path
    loaded = load_project(path)
    assert_same_document(doc, loaded)
    assert not loaded.modified and not loaded.can_undo and loaded.path == path
    # Saving the loaded document again gives the same tiles and JSON.
    path2 = tmp_path / "again.canvas"
    save_project(loaded, path2)
    with zipfile.ZipFile(path) as z1, zipfile.ZipFile(path2) as z2:
        assert z1.namelist() == z2.namelist()
        for name in z1.namelist():
            assert z1.read(name) == z2.read(name), name


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(-2000, 2000), st.integers(-2000, 2000), st.integers(1, 300)), max_size=4),
    st.lists(st.tuples(st.integers(-500, 500), st.integers(-500, 500), st.text(max_size=20)), max_size=3),
    st.integers(0, 2**16),
)
def test_random_documents_round_trip(tmp_path: Path, pastes: list, frames: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    doc = Document()
    for x, y, size in pastes:
        pixels = rng.integers(0, 256, (size, size + 3, 4), dtype=np.uint8)
        doc.paste(x, y, pixels)
        doc.set_mask(y, x, rng.integers(0, 256, (size, 5), dtype=np.uint8))
    for x, y, prompt in frames:
        doc.add_frame(x=x, y=y, prompt=prompt, seed=int(rng.integers(0, 1000)), strength=float(rng.random()))
    path = tmp_path / f"r{seed}.canvas"
    save_project(doc, path)
    assert_same_document(doc, load_project(path))


def test_archive_is_openraster_shaped(tmp_path: Path) -> None:
    path = tmp_path / "a.canvas"
    save_project(sample_document(), path)
    with zipfile.ZipFile(path) as zf:
        first, second = zf.infolist()[:2]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
        assert second.filename == project_file.MANIFEST and second.compress_type == zipfile.ZIP_STORED
        assert zf.read(second).decode() == MIMETYPE
        # Both types sit at fixed offsets for file-type sniffers (as in ODF/ORA).
        data = path.read_bytes()
        assert data[30:38] == b"mimetype" and data[38:54] == b"image/openraster"
        assert data[84:99] == b"canvas/mimetype" and data[99:131] == MIMETYPE.encode()
        stack = ElementTree.fromstring(zf.read("stack.xml"))
        merged = Image.open(io.BytesIO(zf.read("mergedimage.png")))
        assert (int(stack.get("w", 0)), int(stack.get("h", 0))) == merged.size
        # The sample spans 10 million px: too wide for a full-size view, so it is scaled down.
        assert max(merged.size) <= project_file.MERGED_MAX_SIDE
        assert max(Image.open(io.BytesIO(zf.read("Thumbnails/thumbnail.png"))).size) <= 256


def test_merged_image_is_exact_for_small_canvases(tmp_path: Path) -> None:
    doc = Document()
    pixels = np.random.default_rng(2).integers(0, 256, (70, 90, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc.paste(-300, 1000, pixels)
    path = tmp_path / "m.canvas"
    save_project(doc, path)
    with zipfile.ZipFile(path) as zf:
        merged = np.asarray(Image.open(io.BytesIO(zf.read("mergedimage.png"))))
    np.testing.assert_array_equal(merged, pixels)


def test_sparse_file_size_grows_with_tiles_not_bounds(tmp_path: Path) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (512, 512, 4), dtype=np.uint8)
    near, far = Document(), Document()
    near.paste(0, 0, pixels)
    near.paste(512, 0, pixels)
    far.paste(0, 0, pixels)
    far.paste(39_062 * TILE_SIZE, 39_062 * TILE_SIZE, pixels)
    save_project(near, tmp_path / "near.canvas")
    save_project(far, tmp_path / "far.canvas")
    near_size = (tmp_path / "near.canvas").stat().st_size
    far_size = (tmp_path / "far.canvas").stat().st_size
    assert far_size < near_size * 1.1


# -- atomic saves -------------------------------------------------------------------------------
def test_failure_mid_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keep.canvas"
    doc = sample_document()
    save_project(doc, path)
    original = path.read_bytes()
    doc.paste(0, 0, np.full((600, 600, 4), 255, np.uint8))
    calls = {"n": 0}
    real_encode = project_file.encode_png

    def failing_encode(array: np.ndarray, compress_level: int = 1) -> bytes:
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(28, "No space left on device")
        return real_encode(array, compress_level)

    monkeypatch.setattr(project_file, "encode_png", failing_encode)
    with pytest.raises(OSError, match="No space left"):
        save_project(doc, path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.canvas"]  # no temp file left behind
    assert doc.modified  # the failed save did not mark the document saved
    assert_same_document(load_project(path), sample_document_loaded(original, tmp_path))


def sample_document_loaded(data: bytes, tmp_path: Path) -> Document:
    copy = tmp_path / "copy.canvas"
    copy.write_bytes(data)
    try:
        return load_project(copy)
    finally:
        copy.unlink()


def test_full_disk_while_writing_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keep.canvas"
    save_project(sample_document(), path)
    original = path.read_bytes()
    real_open = open

    class FullDisk(io.RawIOBase):
        def __init__(self, inner: io.BufferedWriter) -> None:
            self.inner = inner
            self.written = 0

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.written += len(data)
            if self.written > 50_000:
                raise OSError(28, "No space left on device")
            return self.inner.write(data)

        def fileno(self) -> int:
            return self.inner.fileno()

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.inner.seek(offset, whence)

        def tell(self) -> int:
            return self.inner.tell()

        def flush(self) -> None:
            if not self.inner.closed:
                self.inner.flush()

        def close(self) -> None:
            self.inner.close()
            super().close()

    def fake_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(file, mode, *args, **kwargs)
        return FullDisk(handle) if "w" in mode else handle

    monkeypatch.setattr(export, "open", fake_open, raising=False)
    doc = sample_document()
    doc.paste(0, 0, np.random.default_rng(0).integers(0, 256, (400, 400, 4), dtype=np.uint8))
    with pytest.raises(OSError, match="No space left"):
        save_project(doc, path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["keep.canvas"]


# -- malformed files ----------------------------------------------------------------------------
def rewrite(path: Path, change: dict[str, bytes | None], first: str | None = None) -> None:
    """Rewrite a project archive replacing (bytes) or removing (None) entries."""
    with zipfile.ZipFile(path) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    for name, data in change.items():
        if data is None:
            entries.pop(name, None)
        else:
            entries[name] = data
    order = list(entries)
    if first is not None:
        order.remove(first)
        order.insert(0, first)
    with zipfile.ZipFile(path, "w") as zf:
        for name in order:
            # Big entries are deflated: 50 MB of zeros become a 50 kB zip bomb.
            big = len(entries[name]) > 2**20
            zf.writestr(name, entries[name], zipfile.ZIP_DEFLATED if big else zipfile.ZIP_STORED, 1)


def document_json(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read(DOCUMENT_JSON))


def tile_png(shape: tuple[int, ...], mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ones(shape, np.uint8), mode).save(buf, format="PNG")
    return buf.getvalue()


def malformed_cases(path: Path) -> dict[str, tuple]:
    meta = document_json(path)
    newer = dict(meta, format_version=project_file.FORMAT_VERSION + 1)
    first_tile = "canvas/image/{}_{}.png".format(*meta["image_tiles"][0])
    return {
        "not a zip": (lambda: path.write_bytes(b"just some text, not an archive" * 10), "not a zip"),
        "wrong mimetype": (
            lambda: rewrite(path, {"mimetype": b"application/zip"}, first="mimetype"),
            "mimetype",
        ),
        "plain openraster": (
            lambda: rewrite(path, {project_file.MANIFEST: None}, first="mimetype"),
            "OpenRaster image, not a canvas project",
        ),
        "mimetype not first": (lambda: rewrite(path, {}, first="stack.xml"), "first entry"),
        "newer version": (
            lambda: rewrite(path, {DOCUMENT_JSON: json.dumps(newer).encode()}),
            "newer canvas-app",
        ),
        "path traversal": (lambda: rewrite(path, {"../../evil.png": b"x"}), "outside the archive"),
        "absolute path": (lambda: rewrite(path, {"/etc/evil": b"x"}), "outside the archive"),
        "json bomb": (
            lambda: rewrite(path, {DOCUMENT_JSON: b" " * (project_file.MAX_JSON_BYTES + 1)}),
            "inflate",
        ),
        "zip bomb": (lambda: rewrite(path, {first_tile: bytes(50_000_000)}), "would inflate"),
        "pixel bomb": (
            lambda: rewrite(path, {first_tile: png_header_only(30000, 30000)}),
            "decompression bomb",
        ),
        "big tile": (lambda: rewrite(path, {first_tile: png_header_only(8000, 8000)}), "8000x8000"),
        "wrong tile shape": (
            lambda: rewrite(path, {first_tile: tile_png((100, 256, 4), "RGBA")}),
            "expected 256x256",
        ),
        "wrong tile mode": (
            lambda: rewrite(path, {first_tile: tile_png((256, 256), "L")}),
            "expected 256x256 RGBA",
        ),
        "tile not png": (lambda: rewrite(path, {first_tile: b"\x89PNG garbage"}), "not a readable PNG"),
        "missing tile": (lambda: rewrite(path, {first_tile: None}), "missing"),
        "broken json": (
            lambda: rewrite(path, {DOCUMENT_JSON: b'{"format": "canvas-app-proj'}),
            "not valid JSON",
        ),
        "deeply nested json": (
            lambda: rewrite(path, {DOCUMENT_JSON: b"[" * 100_000 + b"]" * 100_000}),
            "100,000 lists",
        ),
        "nan zoom": (
            lambda: rewrite(
                path, {DOCUMENT_JSON: json.dumps(dict(meta, view={"zoom": float("nan")})).encode()}
            ),
            "positive zoom",
        ),
        "huge frame": (
            lambda: rewrite(path, {DOCUMENT_JSON: json.dumps(dict(meta, frames=[{"w": 10**9}])).encode()}),
            "at most 16384",
        ),
        "json not object": (lambda: rewrite(path, {DOCUMENT_JSON: b"[1, 2]"}), "not a JSON object"),
        "bad frame": (
            lambda: rewrite(
                path, {DOCUMENT_JSON: json.dumps(dict(meta, frames=[{"x": 1, "color": 2}])).encode()}
            ),
            "unknown fields color",
        ),
        "wrong field type": (
            lambda: rewrite(path, {DOCUMENT_JSON: json.dumps(dict(meta, frames=[{"prompt": 5}])).encode()}),
            "prompt must be str",
        ),
        "bad tile key": (
            lambda: rewrite(path, {DOCUMENT_JSON: json.dumps(dict(meta, image_tiles=[[0, "a"]])).encode()}),
            "tx, ty",
        ),
        "too many tiles for memory": (
            # 9,000 listed tiles (each present as an entry) decode to 2.2 GiB: over the 2 GiB given.
            lambda: rewrite(
                path,
                {
                    DOCUMENT_JSON: json.dumps(dict(meta, image_tiles=[[i, 0] for i in range(9000)])).encode(),
                    **{f"canvas/image/{i}_0.png": b"" for i in range(9000)},
                },
            ),
            "GiB allowed",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not a zip",
        "wrong mimetype",
        "plain openraster",
        "mimetype not first",
        "newer version",
        "path traversal",
        "absolute path",
        "json bomb",
        "zip bomb",
        "pixel bomb",
        "big tile",
        "wrong tile shape",
        "wrong tile mode",
        "tile not png",
        "missing tile",
        "broken json",
        "deeply nested json",
        "nan zoom",
        "huge frame",
        "json not object",
        "bad frame",
        "wrong field type",
        "bad tile key",
        "too many tiles for memory",
    ],
)
def test_malformed_projects_are_refused_without_touching_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.canvas"
    save_project(sample_document(), path)
    damage, message = malformed_cases(path)[case]
    damage()
    before = path.read_bytes()
    stat = path.stat()
    with pytest.raises(ProjectError, match=message) as info:
        load_project(path, max_bytes=2 * 2**30)
    assert isinstance(info.value, ValueError) and "bad.canvas" in str(info.value)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == ["bad.canvas"]


def test_missing_file_and_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "nope.canvas")
    with pytest.raises(ProjectError, match="folder"):
        load_project(tmp_path)


# -- export -------------------------------------------------------------------------------------
def test_export_png_of_bounds_and_rect_with_metadata(tmp_path: Path) -> None:
    doc = Document()
    pixels = np.random.default_rng(4).integers(0, 256, (40, 30, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc.paste(-1000, 5000, pixels)
    rect = export_png(doc, tmp_path / "all.png", metadata={"parameters": '{"seed": 1}'})
    assert rect == (-1000, 5000, 30, 40)
    with Image.open(tmp_path / "all.png") as img:
        np.testing.assert_array_equal(np.asarray(img), pixels)
        assert img.text["parameters"] == '{"seed": 1}'  # type: ignore[attr-defined]
    export_png(doc, tmp_path / "part.png", rect=(-1010, 5000, 20, 10))
    with Image.open(tmp_path / "part.png") as img:
        part = np.asarray(img)
    assert part.shape == (10, 20, 4) and not part[:, :10].any()
    np.testing.assert_array_equal(part[:, 10:], pixels[:10, :10])
    with pytest.raises(ValueError, match="empty"):
        export_png(Document(), tmp_path / "none.png")


def test_export_ora_is_plain_openraster(tmp_path: Path) -> None:
    doc = Document()
    pixels = np.random.default_rng(6).integers(0, 256, (50, 60, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc.paste(-7, -9, pixels)
    assert export_ora(doc, tmp_path / "x.ora") == (-7, -9, 60, 50)
    with zipfile.ZipFile(tmp_path / "x.ora") as zf:
        assert zf.infolist()[0].filename == "mimetype"
        assert zf.infolist()[0].compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
        stack = ElementTree.fromstring(zf.read("stack.xml"))
        assert (stack.get("w"), stack.get("h")) == ("60", "50")
        layer = stack.find("stack/layer")
        assert layer is not None and layer.get("src") == "data/layer0.png"
        layer_pixels = np.asarray(Image.open(io.BytesIO(zf.read("data/layer0.png"))))
        np.testing.assert_array_equal(layer_pixels, pixels)
        assert "mergedimage.png" in zf.namelist() and "Thumbnails/thumbnail.png" in zf.namelist()


def test_frames_view_and_patches_survive_with_types(tmp_path: Path) -> None:
    doc = Document()
    frame = doc.add_frame(PromptFrame(x=8, y=8, w=64, h=64, guidance=7.0, strength=1.0, batch=4))
    doc.view = ViewState(1.0, 2.0, 3.0, None)
    path = tmp_path / "f.canvas"
    save_project(doc, path)
    loaded = load_project(path)
    got = loaded.frame(frame.id)
    assert got == frame and isinstance(got.guidance, float) and isinstance(got.batch, int)
    assert loaded.view == doc.view
    assert os.path.getsize(path) < 10_000


def test_resave_encodes_only_changed_tiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = Document()
    doc.paste(
        0, 0, np.random.default_rng(8).integers(1, 256, (2 * TILE_SIZE, 3 * TILE_SIZE, 4), dtype=np.uint8)
    )
    path = tmp_path / "inc.canvas"
    save_project(doc, path)
    encoded: list[tuple[int, ...]] = []
    real_encode = project_file.encode_png

    def counting_encode(array: np.ndarray, compress_level: int = 1) -> bytes:
        encoded.append(array.shape)
        return real_encode(array, compress_level)

    monkeypatch.setattr(project_file, "encode_png", counting_encode)
    doc.stroke(BrushSettings(size=10, color=(1, 2, 3)), [(20, 20), (40, 20)])  # inside tile (0, 0)
    save_project(doc, path)
    tiles = [s for s in encoded if s == (TILE_SIZE, TILE_SIZE, 4)]
    assert len(tiles) == 1  # the stroked tile; the other 5 reuse their earlier encoding
    assert_same_document(doc, load_project(path))

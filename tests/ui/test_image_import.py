"""Reading dropped images and their generation metadata."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from canvas_app.core.image_metadata import RestoredSettings
from canvas_app.ui.image_import import ImportError_, frame_rect_for_image, load_image_file, restore_frame


def test_load_image_file_reads_rgba_and_text(tmp_path):
    info = PngInfo()
    info.add_text("parameters", "hello")
    Image.fromarray(np.zeros((3, 5, 3), np.uint8)).save(tmp_path / "a.png", pnginfo=info)
    pixels, meta = load_image_file(tmp_path / "a.png")
    assert pixels.shape == (3, 5, 4) and pixels[..., 3].min() == 255
    assert meta == {"parameters": "hello"}
    Image.fromarray(np.zeros((3, 5, 3), np.uint8)).save(tmp_path / "b.jpg")
    assert load_image_file(tmp_path / "b.jpg")[0].shape == (3, 5, 4)


def test_load_image_file_refuses_garbage(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ImportError_, match="x.png"):
        load_image_file(tmp_path / "x.png")


def test_restore_frame_places_the_generation_over_the_image():
    settings = RestoredSettings(
        "a cat",
        "blur",
        {"seed": 9, "steps": 7},
        size=(64, 32),
        origin=(16, 8),
        model="/elsewhere/SD15.safetensors",
    )
    models = [("Built-in", "builtin"), ("sd15", "/m/sd15.safetensors")]
    frame, notices = restore_frame(settings, (100, 200), (300, 300), models, "builtin")
    assert (frame.x, frame.y, frame.w, frame.h) == (112, 208, 64, 32)
    assert (frame.prompt, frame.negative_prompt, frame.seed, frame.steps) == ("a cat", "blur", 9, 7)
    assert frame.model == "/m/sd15.safetensors" and notices == []


def test_restore_frame_without_size_covers_the_image_and_names_a_missing_model():
    settings = RestoredSettings("a cat", model="dreamy", notices=("steps 0 refused",))
    frame, notices = restore_frame(settings, (3, 5), (100, 50), [("Built-in", "builtin")], "/m/other")
    assert (frame.x, frame.y, frame.w, frame.h) == (0, 8, 104, 48)
    assert frame.model == "/m/other"
    assert notices[0] == "steps 0 refused" and "'dreamy'" in notices[1] and "'other'" in notices[1]


def test_frame_rect_for_image_snaps_to_grid():
    assert frame_rect_for_image(3, 5, 100, 50) == (0, 8, 104, 48)

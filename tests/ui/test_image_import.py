"""Reading dropped images and their generation metadata."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from canvas_app.core.request import GenerationRequest
from canvas_app.ui.image_import import (
    ImportError_,
    frame_rect_for_image,
    load_image_file,
    parse_generation_metadata,
)


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


def test_parse_our_request_json():
    req = GenerationRequest(prompt="a cat", negative_prompt="blur", seed=9, steps=7, guidance=3.5)
    settings = parse_generation_metadata({"parameters": req.to_json(include_pixels=False)})
    assert settings is not None
    assert (settings["prompt"], settings["negative_prompt"], settings["seed"], settings["steps"]) == (
        "a cat",
        "blur",
        9,
        7,
    )


def test_parse_a1111_parameters():
    text = "a castle on a hill\nNegative prompt: ugly, blurry\nSteps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 123, Size: 512x512"
    settings = parse_generation_metadata({"parameters": text})
    assert settings == {
        "prompt": "a castle on a hill",
        "negative_prompt": "ugly, blurry",
        "steps": 30,
        "scheduler": "Euler a",
        "guidance": 7.5,
        "seed": 123,
    }


def test_parse_nothing():
    assert parse_generation_metadata({}) is None
    assert parse_generation_metadata({"parameters": "{not json"}) is None
    assert parse_generation_metadata({"Software": "GIMP"}) is None


def test_frame_rect_for_image_snaps_to_grid():
    assert frame_rect_for_image(3, 5, 100, 50) == (0, 8, 104, 48)

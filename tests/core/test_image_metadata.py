"""Generation settings written into PNGs and read back: both chunks, range checks, hostile input."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from canvas_app.core import limits
from canvas_app.core.a1111 import parse_infotext
from canvas_app.core.document import Document
from canvas_app.core.frames import Patch
from canvas_app.core.image_metadata import (
    PARAMETERS_KEY,
    REQUEST_KEY,
    MetadataError,
    export_text,
    match_model,
    model_label,
    png_text,
    read_settings,
)
from canvas_app.core.request import GenerationRequest, Mode

REQUEST = GenerationRequest(
    prompt="a red house,\n  on a hill: at dusk",
    negative_prompt="blurry\nlow quality, jpeg",
    mode=Mode.IMG2IMG,
    width=192,
    height=128,
    steps=33,
    guidance=6.5,
    strength=0.6,
    scheduler="DPM++ 2M Karras",
    model="/models/dreamy, v2.safetensors",
    batch=4,
    seed=10,
)


def test_our_chunk_restores_exactly() -> None:
    chunks = png_text(REQUEST, seed=12)
    settings = read_settings(chunks)
    assert settings is not None and settings.source == "canvas-app" and not settings.notices
    assert (settings.prompt, settings.negative_prompt) == (REQUEST.prompt, REQUEST.negative_prompt)
    assert settings.values == {
        "seed": 12,
        "steps": 33,
        "guidance": 6.5,
        "strength": 0.6,
        "batch": 1,
        "scheduler": "DPM++ 2M Karras",
    }
    assert settings.size == (192, 128) and settings.model == REQUEST.model
    stored = GenerationRequest.from_json(chunks[REQUEST_KEY])
    assert stored == REQUEST.with_changes(seed=12, batch=1)


def test_a1111_text_alone_restores_the_same_settings() -> None:
    chunks = png_text(REQUEST, seed=12)
    text = chunks[PARAMETERS_KEY]
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in text
    assert 'Model: "dreamy, v2"' in text and "Denoising strength: 0.6" in text
    settings = read_settings({PARAMETERS_KEY: text})
    ours = read_settings(chunks)
    assert settings is not None and ours is not None and settings.source == "A1111"
    # A1111 strips prompt lines; everything else is the same.
    assert settings.prompt == "a red house,\non a hill: at dusk"
    assert settings.negative_prompt == ours.negative_prompt
    assert settings.values == {k: v for k, v in ours.values.items() if k != "batch"}
    assert settings.size == ours.size and settings.model == "dreamy, v2"


def test_txt2img_writes_no_strength() -> None:
    text = png_text(REQUEST.with_changes(mode=Mode.TXT2IMG), seed=1)[PARAMETERS_KEY]
    assert "Denoising strength" not in parse_infotext(text).fields


def test_real_a1111_text_restores() -> None:
    text = (
        "a castle on a hill\nNegative prompt: ugly,\nblurry\n"
        "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x768, "
        "Model hash: 45dee52b, Model: v1-5-pruned-emaonly, Batch size: 4, Version: v1.10.1"
    )
    settings = read_settings({PARAMETERS_KEY: text})
    assert settings is not None
    assert (settings.prompt, settings.negative_prompt) == ("a castle on a hill", "ugly,\nblurry")
    assert settings.values == {
        "steps": 30,
        "guidance": 7.0,
        "seed": 123,
        "batch": 4,
        "scheduler": "DPM++ 2M Karras",
    }
    assert settings.size == (512, 768) and settings.model == "v1-5-pruned-emaonly"


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("Steps", "0", "steps"),
        ("Steps", "100000", "steps"),
        ("Steps", "twenty", "steps"),
        ("CFG scale", "nan", "guidance"),
        ("CFG scale", "-3", "guidance"),
        ("CFG scale", "1e300", "guidance"),
        ("Seed", "99999999999999999999", "seed"),
        ("Seed", "-5", "seed"),
        ("Denoising strength", "0", "strength"),
        ("Denoising strength", "1.5", "strength"),
        ("Batch size", "1000", "batch"),
    ],
)
def test_out_of_range_values_are_not_restored_and_say_so(field: str, value: str, key: str) -> None:
    text = f"x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, {field}: {value}"
    settings = read_settings({PARAMETERS_KEY: text})
    assert settings is not None
    assert key not in settings.values
    assert settings.notices and (key in settings.notices[-1] or field in settings.notices[-1])


@pytest.mark.parametrize("size", ["0x512", "513x512", "40000x64", "huge"])
def test_bad_size_leaves_the_frame_covering_the_image(size: str) -> None:
    settings = read_settings({PARAMETERS_KEY: f"x\nSteps: 20, Sampler: Euler, Size: {size}"})
    assert settings is not None and settings.size is None and settings.notices


def test_out_of_range_values_in_our_chunk_are_refused_too() -> None:
    data = json.loads(png_text(REQUEST, 1)[REQUEST_KEY])
    data.update(steps=10**9, guidance=float("inf"), seed=True, width=7, scheduler="Heun 9000")
    settings = read_settings({REQUEST_KEY: json.dumps(data)})
    assert settings is not None
    assert set(settings.values) == {"strength", "batch"}
    assert settings.size is None and len(settings.notices) == 5


def test_random_seed_is_kept_as_random() -> None:
    settings = read_settings({PARAMETERS_KEY: "x\nSteps: 20, Sampler: Euler, Seed: -1"})
    assert settings is not None and settings.values["seed"] == -1


def test_long_prompts_are_cut_with_a_notice() -> None:
    long = "word " * (limits.MAX_PROMPT_CHARS // 4)
    settings = read_settings(png_text(REQUEST.with_changes(prompt=long), 1))
    assert settings is not None and len(settings.prompt) == limits.MAX_PROMPT_CHARS
    assert any("cut to" in n for n in settings.notices)


def test_a_megabyte_of_metadata_is_refused_at_once() -> None:
    huge = "a" * 1_000_000 + "\nSteps: 20, Sampler: Euler, Seed: 1"
    start = time.perf_counter()
    with pytest.raises(MetadataError, match="1,000,035 characters"):
        read_settings({PARAMETERS_KEY: huge, REQUEST_KEY: "{" * 1_000_000})
    assert time.perf_counter() - start < 0.5


def test_damaged_chunk_falls_back_to_the_a1111_text() -> None:
    chunks = png_text(REQUEST, 5)
    settings = read_settings({REQUEST_KEY: "{not json", PARAMETERS_KEY: chunks[PARAMETERS_KEY]})
    assert settings is not None and settings.source == "A1111" and settings.values["seed"] == 5
    with pytest.raises(MetadataError, match="damaged"):
        read_settings({REQUEST_KEY: "[1, 2]"})


def test_images_without_settings() -> None:
    assert read_settings({}) is None
    assert read_settings({"Software": "GIMP", PARAMETERS_KEY: "  "}) is None


def test_model_names() -> None:
    assert model_label("/a/b/sd15.safetensors") == "sd15" and model_label("org/name.v1.5") == "name.v1.5"
    assert model_label("C:\\models\\x.ckpt") == "x" and model_label("builtin") == "builtin"
    choices = [("Built-in", "builtin"), ("sd15", "/m/sd15.safetensors"), ("Dreamy", "/m/dreamy")]
    assert match_model("/m/sd15.safetensors", choices) == "/m/sd15.safetensors"
    assert match_model("/elsewhere/SD15.safetensors", choices) == "/m/sd15.safetensors"
    assert match_model("dreamy", choices) == "/m/dreamy"
    assert match_model("builtin", choices) == "builtin"
    assert match_model("unknown-model", choices) is None


def test_export_text_describes_the_latest_generation_in_the_area() -> None:
    doc = Document()
    pixels = np.full((64, 64, 4), 255, np.uint8)
    for i, (x, frame_id) in enumerate([(0, "f1"), (64, "f2"), (0, "f1")]):
        request = REQUEST.with_changes(seed=100 + i, width=96, height=96, origin=(x - 16, -16))
        doc.add_patch(Patch(frame_id, x, 0, 64, 64, 100 + i, request.to_json(include_pixels=False)), pixels)
    rect = doc.image.bounds()
    assert rect == (0, 0, 128, 64)
    whole = read_settings(export_text(doc, rect))
    assert whole is not None and whole.values["seed"] == 102
    # The frame's own size and place in the exported image, not the crop with its context.
    assert whole.size == (64, 64) and whole.origin == (0, 0)
    second = read_settings(export_text(doc, (64, 0, 64, 64), frame_id="f2"))
    assert second is not None and second.values["seed"] == 101 and second.origin == (0, 0)
    shifted = read_settings(export_text(doc, (32, 0, 96, 64), frame_id="f2"))
    assert shifted is not None and shifted.origin == (32, 0)
    assert export_text(doc, (500, 500, 8, 8)) == {}

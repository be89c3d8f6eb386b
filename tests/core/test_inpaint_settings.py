"""The inpaint settings masked content ("original" / "fill") and colour correction, from the frame
to the request, into PNG metadata and projects, and back."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from canvas_app.core.a1111 import parse_infotext
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import plan_frame
from canvas_app.core.frames import PromptFrame
from canvas_app.core.image_metadata import PARAMETERS_KEY, REQUEST_KEY, png_text, read_settings
from canvas_app.core.project_file import DOCUMENT_JSON, load_project, save_project
from canvas_app.core.request import FRAME_SETTINGS, GenerationRequest, Mode


def photo_with_mask(masked_content: str, color_correction: bool = False) -> tuple[Document, PromptFrame]:
    doc = Document()
    doc.paste(0, 0, np.full((128, 128, 3), 120, np.uint8))
    frame = doc.add_frame(
        x=32, y=32, w=64, h=64, prompt="", masked_content=masked_content, color_correction=color_correction
    )
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    doc.set_mask(32, 32, mask)
    return doc, frame


def test_frames_start_original_and_refuse_unknown_values() -> None:
    assert PromptFrame().masked_content == "original" and not PromptFrame().color_correction
    assert GenerationRequest().masked_content == "original" and not GenerationRequest().color_correction
    # Carried into requests and back into a frame on re-roll.
    assert {"masked_content", "color_correction"} <= set(FRAME_SETTINGS)
    for bad in (1, "yes", None):
        with pytest.raises(ValueError, match="color_correction must be true or false"):
            PromptFrame(color_correction=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="color_correction"):
            GenerationRequest(color_correction=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="color_correction must be bool"):
        PromptFrame.from_dict({"color_correction": 1})
    with pytest.raises(ValueError, match="masked content must be one of original, fill"):
        PromptFrame(masked_content="latent noise")
    with pytest.raises(ValueError, match="masked content"):
        GenerationRequest(masked_content="")
    with pytest.raises(ValueError, match="masked content"):
        GenerationRequest.from_dict({"masked_content": 3})


def test_the_plan_carries_the_frame_setting_into_the_request_and_its_json() -> None:
    doc, frame = photo_with_mask("fill", color_correction=True)
    request = plan_frame(doc, frame, seed=1).request(frame)
    assert request.mode is Mode.INPAINT and request.masked_content == "fill" and request.color_correction
    again = GenerationRequest.from_json(request.to_json())
    assert again.masked_content == "fill" and again.color_correction and again == request
    # A request saved before the settings existed (no keys) ran as "original", uncorrected.
    data = json.loads(request.to_json(include_pixels=False))
    del data["masked_content"], data["color_correction"]
    old = GenerationRequest.from_dict(data)
    assert old.masked_content == "original" and not old.color_correction


def test_png_metadata_uses_a1111s_key_and_reads_back() -> None:
    doc, frame = photo_with_mask("fill", color_correction=True)
    request = plan_frame(doc, frame, seed=1).request(frame)
    chunks = png_text(request, seed=5)
    fields = parse_infotext(chunks[PARAMETERS_KEY]).fields
    assert fields["Masked content"] == "fill" and fields["Color correction"] == "on"
    for only in (chunks, {PARAMETERS_KEY: chunks[PARAMETERS_KEY]}):  # ours, then A1111's text alone
        settings = read_settings(only)
        assert settings is not None and settings.values["masked_content"] == "fill", only.keys()
        assert settings.values["color_correction"] is True
    off = png_text(request.with_changes(color_correction=False), seed=5)
    assert "Color correction" not in parse_infotext(off[PARAMETERS_KEY]).fields
    restored_off = read_settings(off)
    assert restored_off is not None and restored_off.values["color_correction"] is False
    # A generation without a mask says nothing about either, and restores nothing.
    img2img = png_text(request.with_changes(mode=Mode.IMG2IMG, mask=None), seed=5)
    assert not {"Masked content", "Color correction"} & set(parse_infotext(img2img[PARAMETERS_KEY]).fields)
    restored = read_settings(img2img)
    assert restored is not None and not {"masked_content", "color_correction"} & set(restored.values)


def test_a1111_text_from_a1111_itself() -> None:
    text = (
        "a beach\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, "
        "Denoising strength: 0.75, Masked content: fill, Mask blur: 4"
    )
    settings = read_settings({PARAMETERS_KEY: text})
    assert settings is not None and settings.values["masked_content"] == "fill" and not settings.notices
    latent = read_settings(
        {PARAMETERS_KEY: text.replace("Masked content: fill", "Masked content: latent noise")}
    )
    assert latent is not None and "masked_content" not in latent.values
    assert any("latent noise" in n and "not available" in n for n in latent.notices)
    bad_ours = read_settings(
        {REQUEST_KEY: json.dumps({"mode": "inpaint", "masked_content": "x" * 5000, "color_correction": 1})}
    )
    assert bad_ours is not None and not {"masked_content", "color_correction"} & set(bad_ours.values)
    assert len(bad_ours.notices) == 2


def test_projects_keep_the_settings_and_old_projects_load_as_original(tmp_path: Path) -> None:
    doc, frame = photo_with_mask("fill", color_correction=True)
    path = tmp_path / "p.canvas"
    save_project(doc, path)
    loaded = load_project(path).frame(frame.id)
    assert loaded.masked_content == "fill" and loaded.color_correction
    # The same project as a version before the setting wrote it: no masked_content key.
    old = tmp_path / "old.canvas"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == DOCUMENT_JSON:
                meta = json.loads(data)
                for item in meta["frames"]:
                    del item["masked_content"], item["color_correction"]
                data = json.dumps(meta).encode()
            dst.writestr(info, data)
    old_frame = load_project(old).frame(frame.id)
    assert old_frame.masked_content == "original" and not old_frame.color_correction


def test_undo_restores_the_previous_setting() -> None:
    doc, frame = photo_with_mask("original")
    doc.update_frame(frame.id, masked_content="fill")
    assert doc.frame(frame.id).masked_content == "fill"
    doc.undo()
    assert doc.frame(frame.id).masked_content == "original"

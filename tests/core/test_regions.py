"""Regions of a frame: bounds, soft weights, undoable edits, and every place they are kept."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from canvas_app.core import limits
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import plan_frame
from canvas_app.core.frames import PromptFrame
from canvas_app.core.image_metadata import export_text, png_text, read_settings
from canvas_app.core.project_file import DOCUMENT_JSON, ProjectError, load_project, save_project
from canvas_app.core.regions import Region, blend_weights, encode_mask, region_weights
from canvas_app.core.request import GenerationRequest, Mode


def test_region_bounds() -> None:
    with pytest.raises(ValueError, match="positive size"):
        Region(0, 0, 0, 10, prompt="x")
    with pytest.raises(ValueError, match="characters long"):
        Region(prompt="a" * (limits.MAX_REGION_PROMPT_CHARS + 1))
    with pytest.raises(ValueError, match="more than the"):
        PromptFrame(regions=tuple(Region(prompt=str(i)) for i in range(limits.MAX_REGIONS + 1)))
    with pytest.raises(ValueError, match="damaged"):
        Region(mask_png="not base64!!").mask()


def test_box_weight_is_one_inside_zero_far_outside_and_soft_at_the_edge() -> None:
    (w,) = region_weights((Region(32, 0, 32, 64),), 128, 64, feather=8)
    assert w[:, 36:60].min() == pytest.approx(1.0)
    assert w[:, :24].max() == 0.0 and w[:, 72:].max() == 0.0
    edge = w[32, 26:38]
    assert np.all(np.diff(edge) >= 0) and 0.2 < w[32, 32] < 0.8
    # Touching the area's border the weight stays full (no fade into nothing).
    (left,) = region_weights((Region(-16, 0, 48, 64),), 128, 64, feather=8)
    assert left[:, 0].min() == pytest.approx(1.0)


def test_painted_mask_is_stretched_over_the_box() -> None:
    painted = np.zeros((8, 8), np.uint8)
    painted[:, :4] = 255
    (w,) = region_weights((Region(0, 0, 64, 64, mask_png=encode_mask(painted)),), 64, 64, feather=0)
    assert w[:, :32].min() == 1.0 and w[:, 32:].max() == 0.0


def test_blend_weights_sum_to_one_and_a_full_region_owns_its_cells() -> None:
    a, b = region_weights((Region(0, 0, 40, 64), Region(24, 0, 40, 64)), 96, 64, feather=8)
    bg, (wa, wb) = blend_weights([a, b])
    assert np.allclose(bg + wa + wb, 1.0)
    assert wa[:, 4].min() == pytest.approx(1.0) and bg[:, 90].min() == pytest.approx(1.0)
    assert np.allclose(wa[:, 32], wb[:, 32])  # overlap: shared


def test_region_edits_are_undoable_one_step_each() -> None:
    doc = Document()
    frame = doc.add_frame(x=0, y=0, w=128, h=64, prompt="sky")
    house = doc.add_region(frame.id, Region(0, 0, 40, 64, prompt="a house"))
    sun = doc.add_region(frame.id, Region(88, 0, 40, 64, prompt="a sun"))
    doc.update_region(frame.id, house.id, prompt="a red house")
    doc.move_region(frame.id, sun.id, 0)
    doc.update_region(frame.id, house.id, label="Hide region", visible=False)
    doc.remove_region(frame.id, sun.id)
    names = lambda: [(r.prompt, r.visible) for r in doc.frame(frame.id).regions]  # noqa: E731
    assert names() == [("a red house", False)]
    doc.undo()
    assert names() == [("a sun", True), ("a red house", False)]
    doc.undo()
    assert names() == [("a sun", True), ("a red house", True)]
    doc.undo()
    assert names() == [("a red house", True), ("a sun", True)]
    doc.undo()
    assert names() == [("a house", True), ("a sun", True)]
    doc.redo()
    assert names() == [("a red house", True), ("a sun", True)]


def test_the_request_takes_visible_regions_relative_to_the_crop() -> None:
    doc = Document()
    doc.paste(0, 0, np.full((64, 64, 4), 255, np.uint8))
    frame = doc.add_frame(x=32, y=0, w=64, h=64, prompt="sky")
    doc.add_region(frame.id, Region(0, 0, 32, 64, prompt="a house"))
    doc.add_region(frame.id, Region(32, 0, 32, 64, prompt="hidden", visible=False))
    plan = plan_frame(doc, doc.frame(frame.id))
    assert plan.mode is Mode.OUTPAINT
    request = plan.request(doc.frame(frame.id))
    assert [(r.rect, r.prompt) for r in request.regions] == [((32, 32, 32, 64), "a house")]
    again = GenerationRequest.from_json(request.to_json(include_pixels=False))
    assert again.regions == request.regions


def test_regions_survive_a_project_round_trip(tmp_path: Path) -> None:
    doc = Document()
    frame = doc.add_frame(x=0, y=0, w=128, h=64, prompt="sky")
    painted = np.zeros((16, 16), np.uint8)
    painted[4:12, 4:12] = 200
    doc.add_region(
        frame.id, Region(8, 8, 48, 48, prompt="a sun", negative_prompt="moon", mask_png=encode_mask(painted))
    )
    doc.add_region(frame.id, Region(64, 0, 64, 64, prompt="a tree", visible=False))
    path = tmp_path / "r.canvas"
    save_project(doc, path)
    loaded = load_project(path)
    assert loaded.frame(frame.id).regions == doc.frame(frame.id).regions
    assert np.array_equal(loaded.frame(frame.id).regions[0].mask(), painted)


def _hostile(path: Path, change) -> Path:
    with zipfile.ZipFile(path) as zf:
        entries = [(i, zf.read(i)) for i in zf.infolist()]
        meta = json.loads(zf.read(DOCUMENT_JSON))
    change(meta)
    out = path.with_name("hostile.canvas")
    with zipfile.ZipFile(out, "w") as zf:
        for info, data in entries:
            zf.writestr(info, json.dumps(meta).encode() if info.filename == DOCUMENT_JSON else data)
    return out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.__setitem__("regions", [{"prompt": str(i), "id": str(i)} for i in range(100)]),
            "more than the 16",
        ),
        (lambda f: f.__setitem__("regions", [{"prompt": "x" * 5000}]), "5,000 characters"),
        (lambda f: f.__setitem__("regions", [{"prompt": "x", "w": -3}]), "positive size"),
        (lambda f: f.__setitem__("regions", [{"prompt": "x", "colour": 1}]), "unknown fields"),
        (lambda f: f.__setitem__("regions", "many"), "must be a list"),
    ],
)
def test_hostile_regions_in_a_project_are_refused(tmp_path: Path, edit, message: str) -> None:
    doc = Document()
    doc.add_frame(x=0, y=0, w=64, h=64, prompt="sky")
    path = tmp_path / "p.canvas"
    save_project(doc, path)
    bad = _hostile(path, lambda meta: edit(meta["frames"][0]))
    with pytest.raises(ProjectError, match=message):
        load_project(bad)


def test_regions_are_in_the_png_json_relative_to_the_frame() -> None:
    doc = Document()
    frame = doc.add_frame(x=32, y=0, w=64, h=64, prompt="sky")
    region = Region(0, 0, 32, 64, prompt="a house")
    request = GenerationRequest(
        prompt="sky", width=128, height=128, origin=(0, -32), regions=(region.shifted(32, 32),)
    )
    from canvas_app.core.composite import accept_candidate

    accept_candidate(doc, frame.id, frame.rect, request, np.zeros((128, 128, 3), np.uint8), 5)
    restored = read_settings(export_text(doc, frame.rect))
    assert restored is not None and [(r.rect, r.prompt) for r in restored.regions] == [
        ((0, 0, 32, 64), "a house")
    ]
    direct = read_settings(png_text(request, 5))
    assert direct is not None and direct.regions == request.regions

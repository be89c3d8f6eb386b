"""Repair Seam with the real engine: the built-in model re-inpaints the band along a flagged seam
and the colour step across it drops; the CLI does the same (tiny model: its output only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run
from PIL import Image

from canvas_app.cli import main
from canvas_app.core.composite import accept_candidate, feather_alpha
from canvas_app.core.document import Document
from canvas_app.core.frame_plan import plan_frame
from canvas_app.core.seams import REPAIR_STRENGTH, check_candidate
from canvas_app.engine.api import Finished, Mode
from canvas_app.engine.models import builtin_model_dir


def sky(width: int, height: int) -> np.ndarray:
    """A smooth RGBA picture: a sky-blue gradient with a gentle warm glow."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 90 + 60 * yy / height + 20 * np.sin(xx / 40)
    g = 130 + 50 * yy / height
    b = 200 - 30 * yy / height + 10 * np.cos(yy / 30)
    rgb = np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)
    return np.dstack([rgb, np.full((height, width), 255, np.uint8)])


def shifted(image: np.ndarray, offset: tuple[int, int, int]) -> np.ndarray:
    return np.clip(image[..., :3].astype(np.int32) + offset, 0, 255).astype(np.uint8)


@pytest.mark.skipif(
    not (builtin_model_dir() / "model_index.json").is_file(), reason="the built-in model is not installed"
)
def test_repair_seam_with_the_builtin_model_lowers_the_step(engine) -> None:
    doc = Document()
    doc.paste(0, 0, sky(128, 128))
    frame = doc.add_frame(x=32, y=32, w=64, h=64, prompt="", steps=6, model="builtin")
    doc.fill_mask(52, 52, 24, 24)
    request = plan_frame(doc, frame, context_padding=32, seed=1).request(frame, color_match=False)
    # A result whose colours are off: the picture's own pixels, tinted.
    cx, cy = request.origin
    bad = shifted(doc.image.read(cx, cy, request.width, request.height), (40, 10, -30))
    check = check_candidate(doc, request, bad)
    assert check.has_seam
    accept_candidate(doc, frame.id, frame.rect, request, bad, 1)
    before_repair = doc.image.read(*check.window)

    # The repair, planned like the GUI's: the check's band through the frame plan.
    repair = plan_frame(doc, frame, 32, seed=2, mask=(check.origin, check.band())).request(
        frame, strength=REPAIR_STRENGTH
    )
    assert repair.mode is Mode.INPAINT and (repair.width, repair.height) == (128, 128)
    finished = run(engine, repair)[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    accept_candidate(doc, frame.id, frame.rect, repair, finished.candidates[0], 2)
    after_repair = doc.image.read(*check.window)
    assert check.remeasure(after_repair) < check.remeasure(before_repair) - 2  # measured: 19.9 -> 15.5
    # Outside the band's feather nothing moved.
    wx, wy = check.origin
    outside = np.ones(check.geometry.shape, bool)
    rx, ry = repair.origin[0] - wx, repair.origin[1] - wy
    outside[ry : ry + repair.height, rx : rx + repair.width] = feather_alpha(repair.mask, repair.feather) == 0
    assert np.array_equal(after_repair[outside], before_repair[outside])


def _save(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def test_cli_repair_seam_prints_the_step_and_keeps_the_rest(tmp_path: Path, sd4: str, capsys) -> None:
    original = sky(128, 128)
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 32:96] = 255
    alpha = feather_alpha(mask, 8).astype(np.int32)[..., None]
    tinted = shifted(original, (50, 20, -40)).astype(np.int32)
    bad = ((tinted * alpha + original[..., :3].astype(np.int32) * (255 - alpha) + 127) // 255).astype(
        np.uint8
    )
    paths = [_save(tmp_path / "in.png", bad), _save(tmp_path / "mask.png", mask)]
    orig = _save(tmp_path / "orig.png", original[..., :3])
    out = tmp_path / "out.png"
    code = main(
        ["repair-seam", paths[0], "--mask", paths[1], "--original", orig, "--out", str(out),
         "--model", sd4, "--steps", "2", "--seed", "3"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "seam:" in printed and "flagged" in printed and "repaired: step ΔE00" in printed
    assert str(out) in printed
    repaired = np.asarray(Image.open(out))
    assert repaired.shape == (128, 128, 3)
    # The repair band lies along the mask's edge: the middle of the patch and the far corners stay.
    assert np.array_equal(repaired[60:68, 60:68], bad[60:68, 60:68])
    assert np.array_equal(repaired[:4, :4], bad[:4, :4])
    assert not np.array_equal(repaired, bad)


def test_cli_repair_seam_without_a_seam_writes_nothing(tmp_path: Path, sd4: str, capsys) -> None:
    image = sky(128, 128)[..., :3]
    mask = np.zeros((128, 128), np.uint8)
    mask[40:88, 40:88] = 255
    paths = [_save(tmp_path / "in.png", image), _save(tmp_path / "mask.png", mask)]
    out = tmp_path / "out.png"
    code = main(["repair-seam", paths[0], "--mask", paths[1], "--out", str(out), "--model", sd4])
    assert code == 0 and "nothing to repair" in capsys.readouterr().out and not out.exists()
    small = _save(tmp_path / "small.png", mask[:32])
    code = main(["repair-seam", paths[0], "--mask", small, "--out", str(out), "--model", sd4])
    err = capsys.readouterr().err
    assert code == 2 and "the mask is 128x32" in err and not out.exists()

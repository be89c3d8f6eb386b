"""Masked content "fill" (an inpaint that starts from the surroundings, not from what it removes)
and colour correction (the redrawn area keeps the photo's colours): the built-in model, the CLI flags
and the remote request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import photo, run
from PIL import Image
from test_cli_and_metadata import _run, read_png_metadata

from canvas_app.cli import MASKED_CONTENT_CHOICES
from canvas_app.core.colour import ciede2000, srgb_to_lab
from canvas_app.core.composite import composite
from canvas_app.core.request import MASKED_CONTENT_MODES
from canvas_app.engine.api import Finished, GenerationRequest, Mode, Progress
from canvas_app.engine.models import builtin_model_dir
from canvas_app.engine.wire import decode_request, encode_request

SIZE = 128
builtin = pytest.mark.skipif(
    not (builtin_model_dir() / "model_index.json").is_file(), reason="the built-in model is not installed"
)


def grey_wall_with_red_square() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the image, the same without the square, the mask over the square): a warm grey wall with
    light falloff and grain, as in a photo, and a bright red square on it to remove."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    wave = 20 * np.sin(xx / 37)
    base = np.stack([150 + wave, 145 + wave, 135 + wave], 2) - 0.2 * yy[..., None]
    grain = cv2.GaussianBlur(rng.normal(0, 6, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.0)[..., None]
    clean = np.clip(base + grain, 0, 255).astype(np.uint8)
    image = clean.copy()
    image[48:80, 48:80] = (230, 20, 20)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[40:88, 40:88] = 255
    return image, clean, mask


def inpaint_request(
    image: np.ndarray,
    mask: np.ndarray,
    steps: int,
    masked_content: str,
    strength: float,
    color_correction: bool,
) -> GenerationRequest:
    """An empty-prompt inpaint of the whole SIZE x SIZE image, seed 3, feather 4."""
    return GenerationRequest(
        mode=Mode.INPAINT,
        width=SIZE,
        height=SIZE,
        steps=steps,
        seed=3,
        init_image=image,
        mask=mask,
        feather=4,
        strength=strength,
        masked_content=masked_content,
        color_correction=color_correction,
    )


def inpaint(
    engine,
    image: np.ndarray,
    mask: np.ndarray,
    masked_content: str,
    strength: float,
    color_correction: bool = False,
) -> np.ndarray:
    """The accepted result (composited as at accept) of an empty-prompt inpaint."""
    request = inpaint_request(image, mask, 8, masked_content, strength, color_correction)
    finished = run(engine, request)[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    current = np.dstack([image, np.full((SIZE, SIZE), 255, np.uint8)])
    return composite(current, finished.candidates[0], mask, request.feather)[0][..., :3]


def redness(image: np.ndarray, where: np.ndarray) -> float:
    pixels = image[where].astype(np.float32)
    return float((pixels[:, 0] - (pixels[:, 1] + pixels[:, 2]) / 2).mean())


@builtin
def test_fill_removes_what_original_keeps(engine) -> None:
    image, clean, mask = grey_wall_with_red_square()
    square = np.zeros_like(mask, bool)
    square[48:80, 48:80] = True
    wall = redness(clean, square)
    assert redness(image, square) - wall > 150
    # "original" at low strength: the red square is noised, then redrawn: it is still there.
    kept = inpaint(engine, image, mask, "original", 0.3)
    assert redness(kept, square) - wall > 40
    # "fill": the model starts from the wall around the square; no red is left.
    filled = inpaint(engine, image, mask, "fill", 0.3)
    assert abs(redness(filled, square) - wall) < 15


def mean_colour_error(image: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    lab = srgb_to_lab(np.stack([image[where].mean(0), truth[where].mean(0)]).astype(np.float64))
    return float(ciede2000(lab[0], lab[1]))


@builtin
def test_colour_correction_keeps_the_photos_colours_in_the_mask(engine) -> None:
    # The built-in VAE and UNet turn this grey wall pink and green where they redraw it.
    image, clean, mask = grey_wall_with_red_square()
    inside = mask > 0
    plain = mean_colour_error(inpaint(engine, image, mask, "fill", 0.5), clean, inside)
    corrected = inpaint(engine, image, mask, "fill", 0.5, color_correction=True)
    assert mean_colour_error(corrected, clean, inside) < plain / 2, plain
    # It keeps the colours, not a flat fill: the wall's grain is still drawn.
    assert corrected[inside].std(0).mean() > 2


def streamed_previews(engine, image: np.ndarray, mask: np.ndarray, color_correction: bool) -> list:
    """The live previews of a "fill" inpaint, in the order they came."""
    request = inpaint_request(image, mask, 6, "fill", 0.5, color_correction)
    events = run(engine, request)
    assert isinstance(events[-1], Finished), getattr(events[-1], "message", events[-1])
    previews = [e for e in events if isinstance(e, Progress) and e.preview is not None]
    assert previews and all(e.tile_box == (0, 0, SIZE, SIZE) for e in previews)
    return [e.preview for e in previews]


@builtin
def test_live_previews_show_the_photos_colours_when_the_setting_is_on(engine) -> None:
    # Without it the preview shows the model's pink/green and the result then jumps to the photo's
    # colours; with it each preview is corrected as the result will be.
    image, clean, mask = grey_wall_with_red_square()
    plain = streamed_previews(engine, image, mask, color_correction=False)
    corrected = streamed_previews(engine, image, mask, color_correction=True)
    side = plain[0].shape[0]  # previews come at latent resolution
    assert corrected[0].shape == plain[0].shape and side < SIZE
    small_clean = cv2.resize(clean, (side, side), interpolation=cv2.INTER_AREA)
    inside = cv2.resize(mask, (side, side), interpolation=cv2.INTER_AREA) == 255
    for index in (len(plain) // 2, -1):  # mid-run and the last step
        off = mean_colour_error(plain[index], small_clean, inside)
        on = mean_colour_error(corrected[index], small_clean, inside)
        assert on < 3 and on < off / 2, (index, on, off)


def test_fill_reaches_the_png_and_needs_a_mask(tmp_path: Path, inpaint4: str, capsys) -> None:
    assert MASKED_CONTENT_CHOICES == MASKED_CONTENT_MODES
    init, mask, out = tmp_path / "init.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(photo(64, 64)).save(init)
    m = np.zeros((64, 64), np.uint8)
    m[8:24, 8:24] = 255
    Image.fromarray(m).save(mask)
    common = ["--prompt", "x", "--model", inpaint4, "--steps", "2", "--init", str(init), "--out", str(out)]
    code, _, err = _run(capsys, *common, "--masked-content", "fill")
    assert code == 2 and "--masked-content needs --mask" in err and not out.exists()
    code, _, err = _run(capsys, *common, "--color-correction")
    assert code == 2 and "--color-correction needs --mask" in err and not out.exists()
    code, _, _ = _run(capsys, *common, "--mask", str(mask), "--masked-content", "fill", "--color-correction")
    assert code == 0
    params, settings, request = read_png_metadata(out)
    assert params.fields["Masked content"] == "fill" and settings.values["masked_content"] == "fill"
    assert params.fields["Color correction"] == "on" and settings.values["color_correction"] is True
    assert request.masked_content == "fill" and request.color_correction
    result = np.asarray(Image.open(out))
    assert np.array_equal(result[48:, 48:], photo(64, 64)[48:, 48:])


def test_the_remote_request_carries_the_setting() -> None:
    init = photo(16, 16)
    mask = np.full((16, 16), 255, np.uint8)
    request = GenerationRequest(
        mode=Mode.INPAINT,
        width=16,
        height=16,
        init_image=init,
        mask=mask,
        masked_content="fill",
        color_correction=True,
    )
    _, back = decode_request(encode_request("job1", request))
    assert back.masked_content == "fill" and back.color_correction and back == request
    bad = encode_request("job1", replace(request, masked_content="fill")).replace(b'"fill"', b'"latent"')
    with pytest.raises(ValueError, match="masked content"):
        decode_request(bad)


def test_the_refining_pass_refines_the_composition_instead_of_filling_it_again() -> None:
    from canvas_app.engine.two_pass import compose_request, refine_request

    init = photo(256, 256)
    mask = np.zeros((256, 256), np.uint8)
    mask[64:192, 64:192] = 255
    request = GenerationRequest(
        mode=Mode.INPAINT, width=256, height=256, init_image=init, mask=mask, masked_content="fill"
    )
    assert compose_request(request, (128, 128)).masked_content == "fill"  # pass 1 removes
    composed = np.full((128, 128, 3), 40, np.uint8)
    refine = refine_request(request, composed, seed=1)
    assert refine.masked_content == "original"
    assert refine.init_image is not None and (refine.init_image[100, 100, :3] == 40).all()


def test_colour_correction_leaves_the_models_colours_over_empty_canvas() -> None:
    from canvas_app.engine.images import COLOR_CORRECTION_SIGMA, correct_colours

    rng = np.random.default_rng(2)
    candidate = rng.integers(150, 256, (64, 96, 3), dtype=np.uint8)  # a model's cast: too light
    reference = np.full((64, 96, 3), 128, np.uint8)
    known = np.zeros((64, 96), bool)
    known[:, :32] = True  # the image; the rest is empty canvas the outpaint paints
    corrected = correct_colours(candidate, reference, known)
    far = int(4 * COLOR_CORRECTION_SIGMA)
    assert np.array_equal(corrected[:, 32 + far :], candidate[:, 32 + far :])
    # Over the image the low frequencies are the reference's: the mean comes back to 128.
    assert abs(corrected[:, : 32 - far].mean() - 128) < 2
    assert corrected[:, : 32 - far].std() > 10  # its grain stays
    assert np.array_equal(correct_colours(candidate, None), candidate)


def test_a_tiles_preview_is_corrected_from_its_own_crop_and_not_over_empty_canvas() -> None:
    from canvas_app.engine.images import PreviewColours

    rng = np.random.default_rng(4)
    reference = np.zeros((64, 128, 3), np.uint8)
    reference[:, 64:] = (200, 60, 30)  # the right tile's area is orange, the left black
    known = np.ones((64, 128), bool)
    known[:, 112:] = False  # the last 16 px are empty canvas (an outpaint)
    correct = PreviewColours(reference, known)
    preview = rng.integers(90, 170, (16, 16, 3), dtype=np.uint8)  # a 64 px tile at factor 4
    right = correct(preview, (64, 0, 64, 64)).astype(np.float32)
    # Over the image (the tile's first 12 cells) the preview takes the orange of its own crop.
    assert np.abs(right[:, :10].mean((0, 1)) - (200, 60, 30)).max() < 4
    # Over the empty canvas it keeps the model's colours (past the low-pass's 2 cells of fade-in).
    assert np.abs(right[:, 14:] - preview[:, 14:]).max() <= 1
    assert np.abs(right[:, 12:] - preview[:, 12:]).max() > 20
    left = correct(preview, (0, 0, 64, 64)).astype(np.float32)
    assert left.mean() < 15  # black, but for the preview's grain (clipped at 0)

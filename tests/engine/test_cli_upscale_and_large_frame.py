"""CLI: --large-frame / --refine-strength on generate, and the upscale command (real engine, tiny
models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import photo
from PIL import Image

from canvas_app.cli import LARGE_FRAME_CHOICES, main
from canvas_app.core.image_metadata import REQUEST_KEY
from canvas_app.core.request import DEFAULT_LARGE_FRAME, LARGE_FRAME_MODES
from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH, lanczos
from canvas_app.engine.api import GenerationRequest, Mode


def _request_of(path: Path) -> GenerationRequest:
    with Image.open(path) as img:
        img.load()
        return GenerationRequest.from_json(img.text[REQUEST_KEY])  # type: ignore[attr-defined]


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main([*args, "--quiet"])
    return code, capsys.readouterr().err


def test_cli_offers_the_same_large_frame_modes() -> None:
    assert LARGE_FRAME_CHOICES == LARGE_FRAME_MODES


@pytest.mark.parametrize("large", [None, "tiled"])
def test_generate_large_frame_reaches_the_request(tmp_path: Path, sd4: str, capsys, large) -> None:
    out = tmp_path / "big.png"
    extra = ["--large-frame", large] if large else []
    code, err = _run(
        capsys, "generate", "--prompt", "a sky", "--model", sd4, "--size", "128x96", "--steps", "2",
        "--seed", "1", "--refine-strength", "0.6", "--out", str(out), *extra,
    )  # fmt: skip
    assert code == 0, err
    request = _request_of(out)
    assert request.large_frame == (large or DEFAULT_LARGE_FRAME) and request.refine_strength == 0.6
    with Image.open(out) as img:
        assert img.size == (128, 96)


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--refine-strength", "0"], "--refine-strength"), (["--refine-strength", "1.5"], "--refine-strength")],
)
def test_generate_refuses_bad_refine_strength(tmp_path: Path, sd4: str, capsys, args, words) -> None:
    out = tmp_path / "x.png"
    code, err = _run(capsys, "generate", "--prompt", "x", "--model", sd4, "--out", str(out), *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_generate_refuses_unknown_large_frame(sd4: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["generate", "--prompt", "x", "--model", sd4, "--large-frame", "sideways", "--out", "x.png"])
    assert stop.value.code == 2 and "sideways" in capsys.readouterr().err


def test_project_frame_keeps_large_frame(tmp_path: Path, sd4: str, capsys) -> None:
    from canvas_app.core.document import Document
    from canvas_app.core.project_file import load_project, save_project

    path = tmp_path / "p.canvas"
    save_project(Document(), path)
    code, err = _run(
        capsys, "generate", "--project", str(path), "--frame", "0,0,128,64", "--prompt", "a sky",
        "--model", sd4, "--steps", "2", "--seed", "2", "--large-frame", "tiled",
    )  # fmt: skip
    assert code == 0, err
    (frame,) = load_project(path).frames.values()
    assert frame.large_frame == "tiled"


def test_upscale_writes_a_refined_image_scale_times_larger(tmp_path: Path, sd4: str, capsys) -> None:
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    image = photo(48, 32, seed=3)
    Image.fromarray(image).save(src)
    code, err = _run(
        capsys, "upscale", str(src), "--scale", "2", "--out", str(out), "--prompt", "a photo",
        "--model", sd4, "--steps", "4", "--seed", "9",
    )  # fmt: skip
    assert code == 0, err
    request = _request_of(out)
    assert (
        request.mode is Mode.IMG2IMG
        and request.large_frame == "tiled"
        and request.strength == DEFAULT_UPSCALE_STRENGTH
    )
    assert (request.width, request.height, request.seed, request.prompt) == (96, 64, 9, "a photo")
    with Image.open(out) as img:
        result = np.asarray(img.convert("RGB"))
    assert result.shape == (64, 96, 3)
    assert not np.array_equal(result, lanczos(image, 2))  # refined, not only resized


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--scale", "3"], "one of 2, 4"), (["--strength", "0"], "--strength"), (["--out", "x.jpg"], ".png")],
)
def test_upscale_refuses_bad_input_and_writes_nothing(tmp_path: Path, sd4: str, capsys, args, words) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(photo(32, 32)).save(src)
    out = tmp_path / "out.png"
    base = ["upscale", str(src), "--model", sd4]
    if "--out" not in args:
        base += ["--out", str(out)]
    code, err = _run(capsys, *base, *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

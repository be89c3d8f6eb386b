"""The headless CLI and the PNG metadata it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import photo
from PIL import Image

from canvas_app.cli import main
from canvas_app.engine.api import GenerationRequest, Mode
from canvas_app.engine.png_metadata import a1111_parameters, parse_parameters, read_png_metadata, write_png


def test_a1111_parameters_round_trip(tmp_path: Path) -> None:
    request = GenerationRequest(
        prompt="a cat, on a mat\nsecond line",
        negative_prompt="blurry, dark",
        steps=12,
        guidance=6.5,
        scheduler="DPM++ 2M Karras",
        width=192,
        height=128,
        model="builtin",
        mode=Mode.TXT2IMG,
    )
    text = a1111_parameters(request, seed=77)
    assert "Negative prompt: blurry, dark" in text
    assert (
        "Steps: 12, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 77, Size: 192x128, Model: builtin" in text
    )
    parsed = parse_parameters(text)
    assert parsed["prompt"] == request.prompt and parsed["negative_prompt"] == "blurry, dark"
    assert parsed["Seed"] == "77" and parsed["Sampler"] == "DPM++ 2M Karras"

    path = tmp_path / "out.png"
    write_png(path, photo(32, 24), request.with_changes(batch=3, seed=70), seed=77)
    params, stored = read_png_metadata(path)
    assert params["Seed"] == "77"
    assert stored == request.with_changes(seed=77, batch=1)
    assert list(tmp_path.iterdir()) == [path]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", "--quiet", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_pngs_with_metadata(tmp_path: Path, sd8: str, capsys) -> None:
    out = tmp_path / "cat.png"
    code, stdout, _ = _run(
        capsys,
        "--prompt",
        "a cat",
        "--model",
        sd8,
        "--size",
        "64x64",
        "--steps",
        "2",
        "--seed",
        "5",
        "--batch",
        "2",
        "--scheduler",
        "euler",
        "--out",
        str(out),
    )
    assert code == 0
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["cat-1.png", "cat-2.png"]
    params, request = read_png_metadata(files[1])
    assert params["Seed"] == "6" and params["Sampler"] == "Euler" and params["Size"] == "64x64"
    assert request is not None and request.seed == 6 and request.prompt == "a cat"
    with Image.open(files[0]) as img:
        assert img.size == (64, 64)


def test_generate_inpaints_with_init_and_mask(tmp_path: Path, sd8: str, capsys) -> None:
    init, mask, out = tmp_path / "init.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(photo(64, 64)).save(init)
    m = np.zeros((64, 64), np.uint8)
    m[8:24, 8:24] = 255
    Image.fromarray(m).save(mask)
    code, _, _ = _run(
        capsys,
        "--prompt",
        "a dog",
        "--model",
        sd8,
        "--steps",
        "2",
        "--init",
        str(init),
        "--mask",
        str(mask),
        "--out",
        str(out),
    )
    assert code == 0
    params, request = read_png_metadata(out)
    assert request.mode is Mode.INPAINT and "Denoising strength" in params
    result = np.asarray(Image.open(out))
    assert np.array_equal(result[48:, 48:], photo(64, 64)[48:, 48:])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--size", "100x64"], "multiple of 8"),
        (["--scheduler", "Heun 9000"], "unknown scheduler"),
        (["--init", "/no/such/image.png"], "cannot read init image"),
        (["--model", "/no/such/model"], "model not found"),
        (["--mask", "MASK", "--init", "INIT"], "the mask is 32x32"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line_and_writes_nothing(
    tmp_path: Path, sd8: str, capsys, args: list[str], words: str
) -> None:
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    Image.fromarray(photo(64, 64)).save(init)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask)
    args = [str(mask) if a == "MASK" else str(init) if a == "INIT" else a for a in args]
    out = tmp_path / "out.png"
    code, _, err = _run(capsys, "--prompt", "x", "--model", sd8, "--out", str(out), *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err
    assert not out.exists()


def test_generate_into_a_project(tmp_path: Path, sd4: str, capsys) -> None:
    from canvas_app.core.document import Document
    from canvas_app.core.project_file import load_project, save_project

    doc = Document()
    doc.paste(0, 0, np.dstack([photo(64, 64), np.full((64, 64), 255, np.uint8)]))
    path = tmp_path / "scene.canvas"
    save_project(doc, path)
    code, stdout, _ = _run(
        capsys,
        "--project",
        str(path),
        "--frame",
        "32,0,64,64",
        "--prompt",
        "a tree",
        "--model",
        sd4,
        "--steps",
        "2",
        "--seed",
        "3",
    )
    assert code == 0 and stdout == ""  # --quiet
    loaded = load_project(path)
    (patch,) = loaded.patches
    assert json.loads(patch.request_json)["mode"] == "outpaint"
    assert (patch.x, patch.y, patch.w, patch.h, patch.seed) == (32, 0, 64, 64, 3)
    pixels = loaded.image.read(32, 0, 64, 64)
    assert (pixels[..., 3] == 255).all()
    # Bad frame: nothing changes on disk.
    before = path.read_bytes()
    code, _, err = _run(capsys, "--project", str(path), "--frame", "3,0,64,64", "--prompt", "x")
    assert code == 2 and "8 px grid" in err
    assert path.read_bytes() == before


def test_api_import_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, canvas_app.engine.api, canvas_app.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_gui_is_the_default_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import canvas_app.app

    seen = []
    monkeypatch.setattr(canvas_app.app, "main", lambda argv: seen.append(list(argv)) or 0)
    assert main([]) == 0 and main(["gui", "--device", "cpu"]) == 0 and main(["x.canvas"]) == 0
    assert seen == [[], ["--device", "cpu"], ["x.canvas"]]

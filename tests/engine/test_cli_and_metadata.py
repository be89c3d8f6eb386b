"""The headless CLI and the PNG metadata it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import photo
from PIL import Image

from canvas_app.cli import main
from canvas_app.core import limits
from canvas_app.core.a1111 import Infotext, parse_infotext
from canvas_app.core.image_metadata import PARAMETERS_KEY, REQUEST_KEY, RestoredSettings, read_settings
from canvas_app.engine.api import GenerationRequest, Mode


def read_png_metadata(path: Path) -> tuple[Infotext, RestoredSettings, GenerationRequest]:
    """(the A1111 text parsed, the settings the app restores, our stored request) of a PNG."""
    with Image.open(path) as img:
        img.load()
        text = dict(img.text)  # type: ignore[attr-defined]
    settings = read_settings(text)
    assert settings is not None
    return parse_infotext(text[PARAMETERS_KEY]), settings, GenerationRequest.from_json(text[REQUEST_KEY])


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
    params, settings, request = read_png_metadata(files[1])
    assert params.prompt == "a cat"
    assert params.fields["Seed"] == "6" and params.fields["Sampler"] == "Euler"
    assert params.fields["Schedule type"] == "Automatic" and params.fields["Size"] == "64x64"
    assert params.fields["Model"] == Path(sd8).name
    assert request.seed == 6 and request.prompt == "a cat" and request.batch == 1
    assert request.model == sd8 and request.init_image is None
    assert settings.values["seed"] == 6 and settings.values["scheduler"] == "Euler"
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
    params, settings, request = read_png_metadata(out)
    assert request.mode is Mode.INPAINT and params.fields["Denoising strength"] == "1"
    assert settings.values["strength"] == 1.0
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


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({"steps": limits.MAX_STEPS}, True),
        ({"steps": limits.MAX_STEPS + 1}, False),
        ({"batch": limits.MAX_BATCH}, True),
        ({"batch": limits.MAX_BATCH + 1}, False),
        ({"guidance": limits.MAX_GUIDANCE}, True),
        ({"guidance": float("nan")}, False),  # passed the old "not negative" check
        ({"guidance": float("inf")}, False),
        ({"width": 16384, "height": 8}, True),
        ({"width": 16392, "height": 8}, False),
    ],
)
def test_engine_checks_the_bounds_every_import_checks(changes: dict, ok: bool) -> None:
    from canvas_app.engine.errors import InputError
    from canvas_app.engine.local import validate

    request = GenerationRequest(prompt="x", **changes)
    if ok:
        validate(request)
    else:
        with pytest.raises(InputError):
            validate(request)

"""``--region X,Y,W,H:PROMPT`` on the CLI: into PNGs (with the regions in their JSON) and projects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import photo
from test_cli_and_metadata import _run, read_png_metadata


def test_png_with_regions_records_them(tmp_path: Path, sd4: str, capsys) -> None:
    out = tmp_path / "scene.png"
    code, _, err = _run(
        capsys,
        "--prompt", "blue sky",
        "--region=-16,0,40,64:a red house",  # negative X: the box reaches past the left edge
        "--region", "40,0,24,64:a cat",
        "--size", "64x64", "--model", sd4, "--steps", "2", "--seed", "4", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    _, settings, request = read_png_metadata(out)
    assert [(r.rect, r.prompt) for r in request.regions] == [
        ((-16, 0, 40, 64), "a red house"),
        ((40, 0, 24, 64), "a cat"),
    ]
    assert [r.prompt for r in settings.regions] == ["a red house", "a cat"]
    # Without the regions the same seed gives another picture: they took part in the run.
    plain = tmp_path / "plain.png"
    _run(capsys, "--prompt", "blue sky", "--size", "64x64", "--model", sd4, "--steps", "2", "--seed", "4",
         "--out", str(plain))  # fmt: skip
    from PIL import Image

    a = np.asarray(Image.open(out), np.float32)
    b = np.asarray(Image.open(plain), np.float32)
    assert np.abs(a - b).mean() > 0.05


@pytest.mark.parametrize(
    ("region", "message"),
    [
        ("0,0,32", "X,Y,W,H:PROMPT"),
        ("0,0,32,32:", "no prompt"),
        ("0,0,0,32:a cat", "positive size"),
        ("64,0,32,32:a cat", "outside"),
    ],
)
def test_bad_regions_exit_with_one_line(tmp_path: Path, capsys, region: str, message: str) -> None:
    out = tmp_path / "x.png"
    code, _, err = _run(capsys, "--prompt", "sky", "--size", "64x64", f"--region={region}", "--out", str(out))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_project_frame_gets_the_regions_and_the_patch_keeps_them(tmp_path: Path, sd4: str, capsys) -> None:
    from canvas_app.core.document import Document
    from canvas_app.core.project_file import load_project, save_project
    from canvas_app.engine.api import GenerationRequest

    doc = Document()
    doc.paste(0, 0, np.dstack([photo(64, 64), np.full((64, 64), 255, np.uint8)]))
    path = tmp_path / "scene.canvas"
    save_project(doc, path)
    code, stdout, err = _run(
        capsys,
        "--project", str(path), "--frame", "32,0,64,64", "--prompt", "blue sky",
        "--region", "32,0,32,64:a red house", "--model", sd4, "--steps", "2", "--seed", "3",
    )  # fmt: skip
    assert code == 0 and not stdout, err  # --quiet: nothing printed on success
    loaded = load_project(path)
    (frame,) = loaded.frames.values()
    assert [(r.rect, r.prompt) for r in frame.regions] == [((32, 0, 32, 64), "a red house")]
    (patch,) = loaded.patches
    lineage = GenerationRequest.from_json(patch.request_json)
    # The outpaint crop has 32 px of context on each side: in the request the box sits 32 px further.
    assert lineage.origin == (0, -32)
    assert [(r.rect, r.prompt) for r in lineage.regions] == [((64, 32, 32, 64), "a red house")]

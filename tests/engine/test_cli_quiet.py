"""The command line as a script sees it: --quiet is silent, negative frames parse, a pickle LoRA is
refused before any model loads, a failed load reports on a line of its own, --help describes all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import photo

import canvas_app.cli
from canvas_app.cli import build_parser, main


def _generate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_quiet_run_in_a_fresh_process_prints_nothing(tmp_path: Path, sd8: str) -> None:
    out = tmp_path / "cat.png"
    args = ["--prompt", "a cat", "--model", sd8, "--size", "64x64", "--steps", "2", "--seed", "1"]
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY")}
    quiet = subprocess.run(
        [sys.executable, "-m", "canvas_app", "generate", *args, "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert out.is_file()
    # Without --quiet: our own progress bar and the file written, no library chatter.
    loud = subprocess.run(
        [sys.executable, "-m", "canvas_app", "generate", *args, "--out", str(tmp_path / "dog.png")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert loud.returncode == 0 and loud.stdout.strip() == str(tmp_path / "dog.png")
    assert "step 2/2" in loud.stderr
    assert "Loading pipeline components" not in loud.stderr and "[transformers]" not in loud.stderr


def test_negative_frame_coordinates_work_with_a_space_or_an_equals_sign(
    tmp_path: Path, sd4: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from canvas_app.core.document import Document
    from canvas_app.core.project_file import load_project, save_project

    doc = Document()
    doc.paste(-64, -64, np.dstack([photo(64, 64), np.full((64, 64), 255, np.uint8)]))
    path = tmp_path / "scene.canvas"
    save_project(doc, path)
    common = ["--project", str(path), "--prompt", "a tree", "--model", sd4, "--steps", "2", "--quiet"]
    assert _generate(capsys, *common, "--frame", "-32,-64,64,64", "--seed", "1") == (0, "", "")
    assert _generate(capsys, *common, "--frame=-96,-64,64,64", "--seed", "2") == (0, "", "")
    patches = {p.rect: p.seed for p in load_project(path).patches}
    assert patches == {(-32, -64, 64, 64): 1, (-96, -64, 64, 64): 2}
    args = build_parser().parse_args(canvas_app.cli._join_dash_values(["generate", "--frame", "-8,0,8,8"]))
    assert args.frame == "-8,0,8,8"


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".bin", ".pth"])
def test_a_pickle_lora_is_refused_before_anything_loads(
    tmp_path: Path, sd8: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    lora = tmp_path / f"style{suffix}"
    lora.write_bytes(b"not really a pickle")

    def no_engine(*_: object) -> None:
        raise AssertionError("the engine was built for a request that should have been refused")

    monkeypatch.setattr(canvas_app.cli, "make_engine", no_engine)
    out = tmp_path / "out.png"
    code, stdout, err = _generate(
        capsys, "--prompt", "x", "--model", sd8, "--lora", f"{lora}:0.5", "--out", str(out), "--quiet"
    )
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "arbitrary code" in err and lora.name in err
    assert not out.exists()


def test_a_failed_load_reports_on_its_own_first_line(
    tmp_path: Path, sd8: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(sd8, broken)
    (weights,) = (broken / "unet").glob("*.safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    code, stdout, err = _generate(
        capsys, "--prompt", "x", "--model", str(broken), "--steps", "2", "--out", str(tmp_path / "o.png")
    )
    assert code == 1 and stdout == ""
    assert err.startswith("canvas-app: error: ") and "broken" in err.splitlines()[0]


def test_every_generate_option_is_described_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    generate = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices["generate"]
    for action in generate._actions:
        assert action.help and action.help.strip(), action.option_strings
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    from canvas_app.core.request import GenerationRequest

    defaults = GenerationRequest()
    for expected in (
        f"denoising steps (default: {defaults.steps})",
        f"(default: {defaults.guidance})",
        f"(default: {defaults.scheduler})",
        "(default: telea)",
        "(default: 32)",
        "(default: builtin)",
        "-64,-64,128,128",
    ):
        assert expected in text, expected

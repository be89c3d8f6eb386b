"""The opt-in compiled UNet (engine/compiling.py): a run whose tile shape is not compiled yet says
"Compiling (first run)..." before its steps, later runs of that shape do not, a new shape does again,
and the result is the eager one. The backend is torch.compile's "eager" (dynamo without inductor's
C++ build, set by CANVAS_APP_COMPILE_BACKEND) so this costs seconds; bench/cpu_speed.py --only compile
measures inductor itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run

from canvas_app.cli import main
from canvas_app.engine.api import Finished, GenerationRequest, Loading, Started
from canvas_app.engine.compiling import BACKEND_ENV, CACHE_ENV, COMPILE_ENV, COMPILING_STAGE
from canvas_app.engine.local import EngineSettings, LocalDiffusersEngine


@pytest.fixture
def dynamo_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BACKEND_ENV, "eager")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "inductor"))


def _stages(events: list) -> list:
    return [
        e.stage if isinstance(e, Loading) else type(e).__name__ for e in events if not hasattr(e, "preview")
    ]


@pytest.mark.slow  # ~2 min on the shared 2-core machine (dynamo traces the UNet twice); the CLI test is quick
def test_a_first_compiled_run_says_so_before_its_steps(sd4: str, dynamo_only: None) -> None:
    compiled = LocalDiffusersEngine(device="cpu", previews=False, compile=True)
    eager = LocalDiffusersEngine(device="cpu", previews=False)
    request = GenerationRequest(prompt="a red square", width=64, height=64, steps=2, seed=3, model=sd4)

    first = run(compiled, request)
    stages = _stages(first)
    assert isinstance(first[-1], Finished), first[-1]
    assert COMPILING_STAGE in stages and stages.index(COMPILING_STAGE) < stages.index("Started")
    again = run(compiled, GenerationRequest(**{**request.__dict__, "seed": 4}))
    assert COMPILING_STAGE not in _stages(again) and isinstance(again[-1], Finished)
    # Another tile size is another graph: compiled (and announced) again.
    smaller = run(compiled, GenerationRequest(**{**request.__dict__, "width": 32, "height": 32}))
    assert COMPILING_STAGE in _stages(smaller) and isinstance(smaller[-1], Finished)

    reference = run(eager, request)
    assert COMPILING_STAGE not in _stages(reference)
    assert np.array_equal(first[-1].candidates[0], reference[-1].candidates[0])
    assert any(isinstance(e, Started) for e in first)


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(COMPILE_ENV, raising=False)
    assert EngineSettings().compile is False
    monkeypatch.setenv(COMPILE_ENV, "1")
    assert EngineSettings().compile is True


def test_the_command_line_says_compiling(
    sd4: str, tmp_path: Path, dynamo_only: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c.png"
    args = ["--prompt", "a cat", "--model", sd4, "--size", "64x64", "--steps", "1", "--seed", "1"]
    assert main(["generate", *args, "--out", str(out), "--compile"]) == 0
    err = capsys.readouterr().err
    assert COMPILING_STAGE in err and err.index(COMPILING_STAGE) < err.index("step 1/1")
    assert main(["generate", *args, "--out", str(out)]) == 0
    assert COMPILING_STAGE not in capsys.readouterr().err

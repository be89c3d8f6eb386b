"""What importing the engine sets up for torch, unless the user chose otherwise: OpenMP threads that
sleep instead of spinning while they wait (engine/devices.py OPENMP_DEFAULTS) and inductor's cache in
the app's cache folder (engine/compiling.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canvas_app.engine.compiling import CACHE_ENV
from canvas_app.engine.devices import OPENMP_DEFAULTS, set_openmp_defaults


def test_defaults_fill_an_empty_environment() -> None:
    env: dict[str, str] = {}
    set_openmp_defaults(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"} == OPENMP_DEFAULTS


@pytest.mark.parametrize(
    "user", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": "passive"}]
)
def test_the_users_setting_wins(user: dict[str, str]) -> None:
    env = dict(user)
    set_openmp_defaults(env)
    assert env == user


def _fresh(code: str, **extra: str) -> tuple[str, str]:
    """(GOMP_SPINCOUNT as the OpenMP runtime reports it, stdout) of a fresh interpreter running ``code``."""
    keep = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", CACHE_ENV)
    env = {k: v for k, v in os.environ.items() if k not in keep}
    env.update(OMP_DISPLAY_ENV="VERBOSE", **extra)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, check=True
    )
    lines = [line for line in done.stderr.splitlines() if "GOMP_SPINCOUNT" in line]
    assert lines, done.stderr[-2000:]
    return lines[0].split("=")[1].strip().strip("'"), done.stdout.strip()


def test_runtime_defaults_hold_when_the_engine_is_imported_first(tmp_path: Path) -> None:
    # The app, the CLI and `serve` import the engine package before torch (the GUI never imports
    # torch). Importing diffusers' models fixes inductor's cache folder, so they come after it here.
    code = (
        "import canvas_app.engine.api, torch\n"
        "from diffusers import UNet2DConditionModel\n"
        "from torch._inductor.runtime.cache_dir_utils import cache_dir\n"
        "print(cache_dir())"
    )
    spin, cache = _fresh(code, XDG_CACHE_HOME=str(tmp_path))
    assert spin == "0"  # OpenMP threads sleep at once
    assert Path(cache) == tmp_path / "canvas_app" / "inductor"  # compiled kernels kept with the app
    # Without the engine: libgomp's own default, a long spin.
    assert int(_fresh("import torch")[0]) > 0


def test_a_cache_folder_the_user_chose_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from canvas_app.engine.compiling import set_cache_default

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    set_cache_default()
    assert os.environ[CACHE_ENV] == str(tmp_path / "mine")
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    set_cache_default()
    assert Path(os.environ[CACHE_ENV]) == tmp_path / "canvas_app" / "inductor"

"""Opt-in smoke test of the built bundle (packaging/build.sh): too slow for every CI run.

    packaging/build.sh && CANVAS_APP_BUNDLE_SMOKE=1 python -m pytest tests/packaging/test_bundle_smoke.py

The bundle runs with a scrubbed environment (no PYTHONPATH, a fresh HOME, the current directory
elsewhere) so that it cannot lean on the development checkout or its site-packages.
CANVAS_APP_BUNDLE_DIR points at another bundle folder (default: dist/canvas-app).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("CANVAS_APP_BUNDLE_DIR", ROOT / "dist" / "canvas-app"))
EXE = BUNDLE / "canvas-app"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CANVAS_APP_BUNDLE_SMOKE") != "1",
        reason="opt-in: build with packaging/build.sh, then set CANVAS_APP_BUNDLE_SMOKE=1",
    ),
]


def _env(home: Path) -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CANVAS_APP_RESOURCES", "CANVAS_APP_DEVICE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        QT_QPA_PLATFORM="offscreen",
        HF_HUB_OFFLINE="1",
    )
    return env


def _run(args: list[str], home: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    assert EXE.is_file(), f"no bundle at {BUNDLE}: run packaging/build.sh first"
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(EXE), *args], env=_env(home), cwd=home, capture_output=True, text=True, timeout=timeout
    )


def _native_size() -> int:
    """The built-in model's native size, from the configs shipped inside the bundle."""
    model = BUNDLE / "_internal" / "resources" / "models" / "builtin"
    vae = json.loads((model / "vae" / "config.json").read_text())
    unet = json.loads((model / "unet" / "config.json").read_text())
    return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)


def test_bundle_generates_one_image_headless(tmp_path: Path) -> None:
    out = tmp_path / "out" / "x.png"
    out.parent.mkdir()
    prompt = "a red house under a blue sky"
    result = _run(
        ["generate", "--prompt", prompt, "--steps", "4", "--seed", "1", "--quiet", "--out", str(out)],
        tmp_path / "home",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with Image.open(out) as img:
        img.load()
        size = _native_size()
        assert img.size == (size, size)
        assert prompt in img.text.get("parameters", "")
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 5.0, "a flat image: the pipeline did not really run"


def test_bundle_gui_starts_offscreen(tmp_path: Path) -> None:
    result = _run(["gui", "--quit-after-show", "--report-startup"], tmp_path / "home", timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "window shown after" in result.stdout
    # The window must come up before torch loads, in the bundle as from source.
    assert "torch imported: False" in result.stdout


def test_bundle_desktop_install_points_at_the_bundle(tmp_path: Path) -> None:
    data_home = tmp_path / "data"
    env = {**_env(tmp_path), "XDG_DATA_HOME": str(data_home)}
    result = subprocess.run(
        ["bash", str(BUNDLE / "install-desktop.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    desktop = (data_home / "applications" / "canvas-app.desktop").read_text(encoding="utf-8")
    assert f"Exec={EXE} gui %f" in desktop.splitlines()
    assert (data_home / "icons" / "hicolor" / "256x256" / "apps" / "canvas-app.png").is_file()

"""The window appears without importing torch; ndarray <-> QImage conversion round-trips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from canvas_app.ui.models import SCHEDULERS, list_models
from canvas_app.ui.qimage import array_to_qimage, qimage_to_array
from canvas_app.ui.tile_layer import downsample, premultiply

ROOT = Path(__file__).resolve().parents[2]


def test_window_shows_without_importing_torch(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    code = (
        "import sys\n"
        "from canvas_app.app import main\n"
        "main(['--quit-after-show', '--report-startup'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'diffusers' not in sys.modules\n"
        "print('NO_TORCH_OK')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "NO_TORCH_OK" in out.stdout and "torch imported: False" in out.stdout


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (5, 7, 4)])
def test_qimage_round_trip(qapp, shape):
    a = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    image = array_to_qimage(a)
    assert (image.width(), image.height()) == (7, 5)
    if len(shape) == 3:
        assert np.array_equal(qimage_to_array(image, shape[2]), a)
    else:
        assert np.array_equal(qimage_to_array(image, 3)[..., 0], a)


def test_qimage_rejects_bad_input(qapp):
    with pytest.raises(ValueError):
        array_to_qimage(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        array_to_qimage(np.zeros((4, 4, 2), np.uint8))


def test_pyramid_downsample_is_premultiplied():
    tile = np.zeros((4, 4, 4), np.uint8)
    tile[:2, :2] = (255, 0, 0, 255)  # one opaque red quarter, the rest transparent
    out = downsample(premultiply(tile), 2)
    assert tuple(out[0, 0]) == (255, 0, 0, 255)
    assert tuple(out[1, 1]) == (0, 0, 0, 0)
    half = downsample(premultiply(tile), 4)
    assert tuple(half[0, 0]) == (63, 0, 0, 63)  # a quarter coverage, no dark fringe from colour


def test_scheduler_names_match_engine():
    from canvas_app.engine.schedulers import SCHEDULER_NAMES

    assert tuple(SCHEDULERS) == tuple(SCHEDULER_NAMES)


def test_model_list_scans_folder(tmp_path):
    folder = tmp_path / "models"
    (folder / "good").mkdir(parents=True)
    (folder / "good" / "model_index.json").write_text("{}")
    (folder / "empty").mkdir()
    (folder / "file.safetensors").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    added = tmp_path / "extra.safetensors"
    added.write_bytes(b"x")
    entries = list_models([str(added), str(tmp_path / "gone.safetensors")], folder)
    assert [e.label for e in entries] == ["Built-in", "file", "good", "extra"]
    assert entries[0].model == "builtin"

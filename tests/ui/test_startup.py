"""The window appears without importing torch; ndarray <-> QImage conversion round-trips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from canvas_app.ui.model_picker import SCHEDULERS, list_models
from canvas_app.ui.qimage import array_to_qimage, qimage_to_array
from canvas_app.ui.tile_layer import TileLayerItem

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


def test_pyramid_level_averages_premultiplied(qapp):
    tile = np.zeros((256, 256, 4), np.uint8)
    tile[:, ::2] = (255, 0, 0, 255)  # every other column opaque red, the rest transparent
    item = TileLayerItem(lambda i, j: tile if (i, j) == (0, 0) else None, 256, [(0, 0)])
    level1 = item._pixmap(1, 0, 0).toImage()
    c = level1.pixelColor(10, 10)  # unpremultiplied by Qt
    assert abs(c.alpha() - 128) <= 2
    assert (c.red(), c.green(), c.blue()) == (255, 0, 0)  # no dark fringe from transparent black
    assert level1.pixelColor(200, 200).alpha() == 0  # the other three children are empty


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

"""The window appears without importing torch; ndarray <-> QImage conversion round-trips."""

from __future__ import annotations

import json
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


# Generous: a busy 2-core machine starts Qt slowly; a start that hangs still fails here.
START_TIMEOUT_S = 120


def test_window_shows_without_importing_torch(tmp_path):
    # The recovery, settings and data folders are this test's own (tests/conftest.py).
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    code = (
        "import sys\n"
        "from canvas_app.app import main\n"
        "main(['--quit-after-show', '--report-startup'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'diffusers' not in sys.modules\n"
        "print('NO_TORCH_OK')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    assert "NO_TORCH_OK" in out.stdout and "torch imported: False" in out.stdout


def _crashed_session_file(folder: Path) -> Path:
    """A recovery file as a killed session leaves it (its process is gone)."""
    from canvas_app.core.document import Document
    from canvas_app.core.recovery import RecoveryStore

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = RecoveryStore(folder, session=f"{dead.pid}-crashed")
    doc = Document()
    doc.paste(0, 0, np.full((8, 8, 4), 200, np.uint8))
    crashed.write(doc.snapshot(), None)
    meta = json.loads(crashed.sidecar.read_text())
    crashed.sidecar.write_text(json.dumps(dict(meta, pid=dead.pid)))
    return crashed.path


@pytest.mark.parametrize("ci", ["", "true"])
def test_start_with_a_crashed_session_and_no_screen_keeps_it_and_does_not_hang(tmp_path, ci):
    """Nobody can answer the recovery question offscreen or on CI: the start says so, keeps the
    file for a start with a screen, and goes on (here: shows the window and quits)."""
    folder = Path(os.environ["CANVAS_APP_RECOVERY_DIR"])
    left = _crashed_session_file(folder)
    before = left.read_bytes()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), CI=ci)
    out = subprocess.run(
        [sys.executable, "-m", "canvas_app.app", "--quit-after-show", "--no-engine-preload"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    assert "did not close properly" in out.stderr and str(folder) in out.stderr
    assert "start Canvas with a screen to recover it" in out.stderr
    # Kept as it was, and the clean quit left no file of its own.
    assert sorted(p.name for p in folder.iterdir()) == [left.name, left.with_suffix(".json").name]
    assert left.read_bytes() == before


def test_who_can_answer_a_question_at_start(qapp, monkeypatch):
    from canvas_app.ui import autosave

    assert not autosave.can_ask_a_person()  # offscreen: there is no screen to ask on

    class OnScreen:
        @staticmethod
        def platformName() -> str:
            return "xcb"

    monkeypatch.setattr(autosave, "QGuiApplication", OnScreen)
    monkeypatch.delenv("CI", raising=False)
    assert autosave.can_ask_a_person()
    for value, person in (("true", False), ("1", False), ("false", True), ("0", True), ("", True)):
        monkeypatch.setenv("CI", value)
        assert autosave.can_ask_a_person() is person, value


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

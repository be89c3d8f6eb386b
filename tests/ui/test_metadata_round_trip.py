"""Generation settings travel with exported images and come back when an image is dropped:
File > Export PNG writes them, dropping the PNG restores them into a frame, hostile text does not
freeze the window."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from helpers import drag, make_window
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDropEvent, QGuiApplication

from canvas_app.core import limits
from canvas_app.core.a1111 import parse_infotext
from canvas_app.core.image_metadata import PARAMETERS_KEY, REQUEST_KEY
from canvas_app.ui.job_state import JobState

NEGATIVE = "blurry, dark\nlow quality: jpeg\nwatermark"


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def _model_folder(tmp_path: Path, name: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    return str(folder)


def _action(window, text: str) -> QAction:
    return next(a for a in window.findChildren(QAction) if a.text().replace("&", "") == text)


def _drop(window, path: Path, at: tuple[float, float] = (300, 300)) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    view = window.ws.view
    view.set_zoom(1.0)
    target = view.mapFromScene(QPointF(*at))
    event = QDropEvent(
        QPointF(target),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(event)


def _generate_and_accept(qtbot, window, model: str) -> str:
    drag(window, "frame", [(0, 0), (128, 96)])
    fid = window.ws.selected_frame_id
    panel = window.frame_panel
    panel.prompt.setPlainText('a red house, "at dusk"\nsecond line: ünïcødé 猫')
    panel.negative.setPlainText(NEGATIVE)
    panel.commit_text()
    window.ws.doc.update_frame(
        fid, seed=1234, steps=17, guidance=6.5, scheduler="DPM++ 2M Karras", model=model
    )
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (rid,) = list(window.gen.jobs)
    qtbot.waitUntil(
        lambda: window.gen.jobs[rid].state not in (JobState.QUEUED, JobState.RUNNING), timeout=10000
    )
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)  # accept
    assert len(window.ws.doc.patches) == 1
    return fid


def test_export_png_writes_settings_that_a_drop_restores(qtbot, window, tmp_path):
    model = _model_folder(tmp_path, "dreamy-v2")
    window.add_model(model)
    fid = _generate_and_accept(qtbot, window, model)
    frame = window.ws.doc.frame(fid)

    out = tmp_path / "export.png"
    window.io.dialogs.save_paths = [str(out)]
    _action(window, "Export PNG…").trigger()
    with Image.open(out) as img:
        img.load()
        text = dict(img.text)  # type: ignore[attr-defined]
    info = parse_infotext(text[PARAMETERS_KEY])
    assert info.prompt == frame.prompt and info.negative_prompt == NEGATIVE
    assert (
        info.fields["Seed"] == "1234" and info.fields["Steps"] == "17" and info.fields["CFG scale"] == "6.5"
    )
    assert (info.fields["Sampler"], info.fields["Schedule type"]) == ("DPM++ 2M", "Karras")
    assert info.fields["Size"] == "128x96" and info.fields["Model"] == "dreamy-v2"
    assert REQUEST_KEY in text

    # Drop it on an empty spot: the image floats, and Yes restores everything into a new frame.
    window.io.dialogs.yes_no = [True]
    _drop(window, out, at=(600, 400))
    assert "Restore settings" in window.io.dialogs.asked
    restored = window.ws.doc.frame(window.ws.selected_frame_id)
    assert restored.id != fid
    for key in ("prompt", "negative_prompt", "seed", "steps", "guidance", "scheduler", "model", "w", "h"):
        assert getattr(restored, key) == getattr(frame, key), key
    # The panel shows what was restored.
    assert window.frame_panel.negative.toPlainText() == NEGATIVE
    assert window.frame_panel.scheduler.currentText() == "DPM++ 2M Karras"
    assert window.frame_panel.model.currentData() == model
    assert not window.banner.isVisible()


def test_a1111_png_with_an_unknown_model_restores_the_rest_and_says_so(qtbot, window, tmp_path):
    path = tmp_path / "a1111.png"
    info = PngInfo()
    info.add_text(
        PARAMETERS_KEY,
        "a castle\nNegative prompt: ugly,\nblurry\nSteps: 300, Sampler: Euler a, Schedule type: Automatic, "
        "CFG scale: 7, Seed: 99, Size: 64x48, Model hash: 45dee52b, Model: v1-5-pruned-emaonly, "
        "Denoising strength: 9, Version: v1.10.1",
    )
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(path, pnginfo=info)
    window.io.dialogs.yes_no = [True]
    _drop(window, path)
    frame = window.ws.doc.frame(window.ws.selected_frame_id)
    assert (frame.prompt, frame.negative_prompt) == ("a castle", "ugly,\nblurry")
    assert (frame.seed, frame.steps, frame.guidance, frame.scheduler) == (99, 300, 7.0, "Euler a")
    assert window.frame_panel.steps.value() == 300  # the panel shows what the engine accepts
    assert (frame.w, frame.h, frame.model) == (64, 48, "builtin")
    assert frame.strength == 0.75  # 9 is out of range: not restored
    assert window.banner.isVisible()
    assert "v1-5-pruned-emaonly" in window.banner.text and "strength" in window.banner.text


def _png_with_parameters(path: Path, text: str) -> None:
    info = PngInfo()
    info.add_itxt(PARAMETERS_KEY, text, zip=True)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path, pnginfo=info)


def test_a_megabyte_of_parameters_does_not_freeze_the_window(qtbot, window, tmp_path):
    path = tmp_path / "huge.png"
    _png_with_parameters(path, "a" * 900_000 + "\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 16x16")
    start = time.perf_counter()
    _drop(window, path)
    assert time.perf_counter() - start < 3.0
    assert "Restore settings" not in window.io.dialogs.asked  # nothing is asked
    assert window.banner.isVisible() and "not restored" in window.banner.text
    assert window.place_tool.floating is not None  # the image itself still comes in
    assert not window.ws.doc.frames


def test_an_over_long_prompt_is_cut_with_a_notice(qtbot, window, tmp_path):
    path = tmp_path / "long.png"
    prompt = "many words " * 3000  # 33,000 characters
    _png_with_parameters(path, f"{prompt}\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 16x16")
    window.io.dialogs.yes_no = [True]
    start = time.perf_counter()
    _drop(window, path)
    assert time.perf_counter() - start < 3.0
    frame = window.ws.doc.frame(window.ws.selected_frame_id)
    assert len(frame.prompt) == limits.MAX_PROMPT_CHARS == len(window.frame_panel.prompt.toPlainText())
    assert "cut to" in window.banner.text


def test_pasting_a_huge_prompt_is_cut_at_the_cap(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    panel = window.frame_panel
    QGuiApplication.clipboard().setText("word " * 400_000)  # two million characters
    panel.prompt.setFocus()
    start = time.perf_counter()
    qtbot.keyClick(panel.prompt, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert time.perf_counter() - start < 10.0  # Qt inserts the whole paste before it is cut
    assert len(panel.prompt.toPlainText()) == limits.MAX_PROMPT_CHARS
    assert "at most" in panel.status.text()
    panel.commit_text()
    assert len(window.ws.doc.frame(fid).prompt) == limits.MAX_PROMPT_CHARS
    # Typing at the cap adds nothing.
    qtbot.keyClicks(panel.prompt, "xyz")
    assert len(panel.prompt.toPlainText()) == limits.MAX_PROMPT_CHARS

"""The main window on the fake engine: the artist's loop from frame to accepted patch."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import drag, make_settings, make_window
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

from canvas_app.core.request import GenerationRequest, Mode
from canvas_app.ui.job_state import JobState


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def finish(qtbot, window, rid):
    qtbot.waitUntil(lambda: not window.gen.jobs[rid].state.active, timeout=10000)


def test_frame_prompt_generate_previews_accept_undo_redo(qtbot, window):
    drag(window, "frame", [(0, 0), (256, 256)])
    frame_id = window.ws.selected_frame_id
    assert frame_id
    window.frame_panel.prompt.setPlainText("a red house")
    window.frame_panel.commit_text()
    assert window.ws.doc.frame(frame_id).prompt == "a red house"
    assert "txt2img" in window.frame_panel.mode_label.text()

    window.ws.view.set_zoom(1.0)
    window.gen.worker.engine.step_delay = 0.05
    previews = []
    window.gen.worker.progress.connect(lambda ev: previews.append(ev))
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (rid,) = list(window.gen.jobs)
    item = window.ws.scene.frame_items[frame_id]
    qtbot.waitUntil(lambda: item.has_previews(), timeout=5000)
    assert "step" in item.badge.status
    # Previews of both tiles of the 256 px frame (fake engine tiles at 128) reach the frame.
    qtbot.waitUntil(lambda: {p.tile for p in previews} >= {0, 1, 2, 3}, timeout=5000)
    finish(qtbot, window, rid)
    assert window.gen.staging[frame_id].candidates
    assert window.staging_bar.isVisible()
    assert item.staged is not None

    request = window.gen.jobs[rid].request
    assert request.prompt == "a red house" and request.mode == Mode.TXT2IMG
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Return)  # Enter accepts
    assert frame_id not in window.gen.staging
    (patch,) = window.ws.doc.patches
    assert GenerationRequest.from_json(patch.request_json).seed == patch.seed
    assert window.ws.doc.image.read(10, 10, 1, 1)[0, 0, 3] == 255
    assert window.windowTitle().startswith("Untitled[*]") and window.isWindowModified()

    window.undo()
    assert window.ws.doc.image.read(10, 10, 1, 1)[0, 0, 3] == 0 and not window.ws.doc.patches
    window.redo()
    assert window.ws.doc.image.read(10, 10, 1, 1)[0, 0, 3] == 255 and len(window.ws.doc.patches) == 1


def test_batch_staging_navigation_discard_and_more(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    window.ws.doc.update_frame(fid, batch=3, seed=7)
    rid = window.generate()
    finish(qtbot, window, rid)
    staging = window.gen.staging[fid]
    assert [c.seed for c in staging.candidates] == [7, 8, 9]
    window.staging_bar.next_button.click()
    assert staging.index == 1
    window.staging_bar.prev_button.click()
    window.staging_bar.prev_button.click()
    assert staging.index == 2  # wraps around
    window.staging_bar.more_button.click()
    (more,) = [r for r in window.gen.jobs if r != rid]
    finish(qtbot, window, more)
    assert len(window.gen.staging[fid].candidates) == 6
    assert window.gen.staging[fid].index == 3  # shows the first new one
    window.staging_bar.discard_button.click()
    assert fid not in window.gen.staging and not window.staging_bar.isVisible()
    assert not window.ws.doc.patches


def test_cancel_with_escape_stops_the_run(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    window.ws.doc.update_frame(window.ws.selected_frame_id, steps=400)
    window.gen.worker.engine.step_delay = 0.02
    rid = window.generate()
    qtbot.waitUntil(lambda: window.gen.jobs[rid].state == JobState.RUNNING, timeout=5000)
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Escape)
    finish(qtbot, window, rid)
    assert window.gen.jobs[rid].state == JobState.CANCELLED
    assert not window.gen.staging
    assert not window.ws.scene.frame_items[window.ws.selected_frame_id].has_previews()


def test_two_frames_queue_and_gui_stays_responsive(qtbot, window):
    drag(window, "frame", [(0, 0), (128, 128)])
    a = window.ws.selected_frame_id
    drag(window, "frame", [(300, 0), (428, 128)])
    b = window.ws.selected_frame_id
    window.gen.worker.engine.step_delay = 0.02
    ra = window.gen.generate(a)
    rb = window.gen.generate(b)
    assert window.gen.jobs[rb].state == JobState.QUEUED
    # Paint a mask stroke while the engine runs.
    drag(window, "mask", [(500, 500), (600, 500)])
    assert window.ws.doc.mask.read(550, 500, 1, 1)[0, 0] == 255
    finish(qtbot, window, ra)
    finish(qtbot, window, rb)
    assert set(window.gen.staging) == {a, b}


def test_inpaint_mode_follows_the_mask_and_reroll_keeps_lineage(qtbot, window):
    doc = window.ws.doc
    doc.paste(0, 0, np.full((128, 128, 4), 200, np.uint8))
    drag(window, "frame", [(0, 0), (128, 128)])
    fid = window.ws.selected_frame_id
    window.frame_panel.refresh_mode()
    assert "img2img" in window.frame_panel.mode_label.text()
    drag(window, "mask", [(60, 60), (70, 70)])
    window.frame_panel.refresh_mode()
    assert "inpaint" in window.frame_panel.mode_label.text()
    rid = window.gen.generate(fid)
    finish(qtbot, window, rid)
    assert window.gen.jobs[rid].request.mode == Mode.INPAINT
    patch = window.gen.accept(fid)
    assert patch is not None
    window.patch_list.select_patch(patch.id)
    window.frame_panel.prompt.setPlainText("edited prompt")
    window.patch_list.reroll_prompt.click()
    (again,) = [r for r in window.gen.jobs if r != rid]
    req = window.gen.jobs[again].request
    assert req.prompt == "edited prompt" and req.mode == Mode.INPAINT and req.seed != patch.seed
    finish(qtbot, window, again)
    window.gen.accept(fid)
    assert len(doc.patches) == 2


def test_engine_error_shows_readable_message(qtbot, window):
    window.gen.worker.engine.fail_with = "The model ran out of memory; try a smaller frame."
    drag(window, "frame", [(0, 0), (64, 64)])
    rid = window.generate()
    finish(qtbot, window, rid)
    assert window.banner.isVisible()
    assert "smaller frame" in window.banner.text
    assert "Failed" in window.frame_panel.status.text()


def test_model_loading_runs_in_background(qtbot, window):
    with qtbot.waitSignal(window.worker.task_done, timeout=5000):
        window.load_model("builtin")
    assert window.worker.engine.loaded == ["builtin"]
    with qtbot.waitSignal(window.worker.task_done, timeout=5000):
        window.load_model("missing-model")
    assert "failed" in window.banner.text


def test_save_reopen_and_unsaved_prompt(qtbot, window, tmp_path):
    drag(window, "brush", [(5, 5), (50, 5)])
    drag(window, "frame", [(0, 0), (64, 64)])
    window.frame_panel.prompt.setPlainText("kept")
    window.frame_panel.commit_text()
    assert window.isWindowModified()
    path = tmp_path / "art.canvas"
    window.io.dialogs.save_paths = [str(path)]
    assert window.io.save()
    assert path.is_file() and not window.isWindowModified()
    assert window.windowTitle().startswith("art.canvas")
    drag(window, "brush", [(5, 30), (50, 30)])
    window.io.dialogs.save_answers = ["cancel"]
    assert not window.io.new()  # cancelled: the document stays
    window.io.dialogs.save_answers = ["discard"]
    assert window.io.new()
    assert not window.ws.doc.frames
    assert window.io.open(str(path))
    (frame,) = window.ws.doc.frames.values()
    assert frame.prompt == "kept"
    assert window.ws.doc.image.read(20, 5, 1, 1)[0, 0, 3] == 255
    assert window.ws.doc.image.read(20, 30, 1, 1)[0, 0, 3] == 0
    assert str(path.resolve()) in window.settings.recent_files()
    window.io.dialogs.save_paths = [str(tmp_path / "out.png"), str(tmp_path / "out.ora")]
    assert window.io.export_png() and window.io.export_ora()
    assert Image.open(tmp_path / "out.png").size[0] >= 45


def test_open_broken_file_shows_error(qtbot, window, tmp_path):
    bad = tmp_path / "bad.canvas"
    bad.write_bytes(b"not a zip")
    assert not window.io.open(str(bad))
    assert window.banner.isVisible() and "bad.canvas" in window.banner.text


def _png_with_metadata(path, request: GenerationRequest):
    info = PngInfo()
    info.add_text("parameters", request.to_json(include_pixels=False))
    Image.fromarray(np.full((40, 60, 3), (10, 200, 30), np.uint8)).save(path, pnginfo=info)


def test_drop_png_floats_moves_commits_and_restores_metadata(qtbot, window, tmp_path):
    path = tmp_path / "gen.png"
    _png_with_metadata(path, GenerationRequest(prompt="green field", seed=42, steps=12))
    window.io.dialogs.yes_no = [True]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    view = window.ws.view
    window.ws.view.set_zoom(1.0)
    target = view.mapFromScene(QPointF(100, 100))
    drop = QDropEvent(
        QPointF(target),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(drop)
    floating = window.place_tool.floating
    assert floating is not None and window.ws.tool_name == "place"
    assert abs(floating.pos().x() - 70) <= 1 and abs(floating.pos().y() - 80) <= 1
    assert not window.ws.doc.image.tile_keys()  # not committed yet
    (frame,) = window.ws.doc.frames.values()
    assert frame.prompt == "green field" and frame.seed == 42 and frame.steps == 12
    # Move it by dragging, then Enter commits.
    drag(window, "place", [(80, 90), (90, 100)])
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert window.place_tool.floating is None and window.ws.tool_name == "frame"
    x, y = int(floating.pos().x()), int(floating.pos().y())
    assert tuple(window.ws.doc.image.read(x + 1, y + 1, 1, 1)[0, 0]) == (10, 200, 30, 255)
    window.undo()
    assert not window.ws.doc.image.tile_keys()


def test_paste_clipboard_image_and_escape_cancels(qtbot, window):
    image = QImage(32, 16, QImage.Format.Format_RGBA8888)
    image.fill(Qt.GlobalColor.blue)
    QGuiApplication.clipboard().setImage(image)
    window.paste()
    assert window.place_tool.floating is not None
    qtbot.keyClick(window.ws.view, Qt.Key.Key_Escape)
    assert window.place_tool.floating is None and not window.ws.doc.image.tile_keys()
    window.paste()
    window.accept_candidate()
    assert len(window.ws.doc.image.tile_keys()) >= 1


def test_settings_persist_between_windows(qtbot, tmp_path):
    settings = make_settings(tmp_path)
    first = make_window(qtbot, tmp_path, settings=settings)
    first.ws.set_brush("mask", size=77)
    first.grid_action.setChecked(False)
    first.close()
    second = make_window(qtbot, tmp_path, settings=make_settings(tmp_path))
    assert second.ws.brushes["mask"].size == 77
    assert not second.grid_action.isChecked()
    second.close()


def test_close_during_generation_cancels_and_exits(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    w.worker.engine.step_delay = 0.05
    drag(w, "frame", [(0, 0), (64, 64)])
    w.ws.doc.update_frame(w.ws.selected_frame_id, steps=1000)
    rid = w.generate()
    qtbot.waitUntil(lambda: w.gen.jobs[rid].state == JobState.RUNNING, timeout=5000)
    w.io.dialogs.save_answers = ["discard"]
    assert w.close()
    assert not w.worker._thread.isRunning()


def test_view_keys_zoom_and_fit(qtbot, window):
    view = window.ws.view
    view.set_zoom(1.0)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert view.zoom > 1.0
    window.ws.doc.paste(1000, 1000, np.full((64, 64, 4), 255, np.uint8))
    window.fit_to_content()
    assert view.visible_scene_rect().contains(QPointF(1032, 1032))
    assert QPoint(0, 0) is not None

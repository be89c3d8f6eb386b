"""Settings that apply at once, the shortcut list, and the view after crash recovery (issue 13, 12)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_engine import FakeEngine
from helpers import ScriptedDialogs, drag, make_settings
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from canvas_app.core.recovery import RecoveryStore
from canvas_app.ui.autosave import Autosaver, offer_recovery
from canvas_app.ui.main_window import MainWindow
from canvas_app.ui.settings_dialog import SettingsDialog
from canvas_app.ui.shortcuts_dialog import ShortcutsDialog
from canvas_app.workers import EngineWorker


class Engines:
    """An engine factory maker as app.py has one: records every engine it builds."""

    def __init__(self) -> None:
        self.built: list[FakeEngine] = []
        self.compiled: list[bool] = []  # the compile option of each engine built

    def __call__(self, device: str, preview: float, compile: bool = False):  # type: ignore[no-untyped-def]
        def factory() -> FakeEngine:
            engine = FakeEngine(device=device)
            engine.settings = type(engine.settings)(preview_interval_s=preview)
            self.built.append(engine)
            self.compiled.append(compile)
            return engine

        return factory


@pytest.fixture
def engines():
    return Engines()


@pytest.fixture
def window(qtbot, tmp_path, engines):
    worker = EngineWorker(engines("", 0.1))
    w = MainWindow(worker, make_settings(tmp_path), dialogs=ScriptedDialogs(), engine_factory=engines)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def open_settings(qtbot, window) -> SettingsDialog:
    window.settings_action.trigger()
    dialog = [d for d in window.findChildren(SettingsDialog) if d.isVisible()][-1]
    qtbot.waitExposed(dialog)
    return dialog


def press(dialog: SettingsDialog, button: QDialogButtonBox.StandardButton) -> None:
    dialog.buttons.button(button).click()


def test_settings_dialog_switches_device_without_restart(qtbot, window, engines):
    assert window.settings_action.shortcut() == QKeySequence("Ctrl+,")
    assert not [m for m in window.menuBar().actions() if m.text() == "&Settings"]  # no submenus
    window.worker.start()
    qtbot.waitUntil(lambda: window.engine_label.text() == "Engine: fake CPU", timeout=5000)
    dialog = open_settings(qtbot, window)
    dialog.device.setCurrentIndex(dialog.device.findData("cuda"))
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    qtbot.waitUntil(lambda: window.engine_label.text() == "Engine: fake CUDA", timeout=5000)
    assert [e.device for e in engines.built] == ["", "cuda"]
    assert window.settings.get("engine/device", "") == "cuda"
    # The next run goes to the new engine.
    drag(window, "frame", [(0, 0), (128, 128)])
    rid = window.generate()
    qtbot.waitUntil(lambda: window.frame_panel.has_staged(), timeout=5000)
    assert rid is not None and engines.built[-1].requests and not engines.built[0].requests


def test_compiling_the_model_is_a_setting_that_rebuilds_the_engine(qtbot, window, engines):
    window.worker.start()
    qtbot.waitUntil(lambda: bool(engines.built), timeout=5000)
    dialog = open_settings(qtbot, window)
    assert not dialog.compile.isChecked()  # off by default: its first run is long
    dialog.compile.click()
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    qtbot.waitUntil(lambda: len(engines.built) == 2, timeout=5000)
    assert engines.compiled == [False, True]
    assert window.settings.get("engine/compile", False) is True
    dialog = open_settings(qtbot, window)
    assert dialog.compile.isChecked()
    press(dialog, QDialogButtonBox.StandardButton.Cancel)


def test_settings_dialog_preview_rate_reaches_the_running_engine(qtbot, window, engines):
    window.worker.start()
    qtbot.waitUntil(lambda: bool(engines.built), timeout=5000)
    dialog = open_settings(qtbot, window)
    dialog.preview.setCurrentIndex(dialog.preview.findData(1.0))
    press(dialog, QDialogButtonBox.StandardButton.Apply)
    qtbot.waitUntil(lambda: engines.built[0].settings.preview_interval_s == 1.0, timeout=5000)
    assert len(engines.built) == 1  # same device: the loaded engine (and its models) stay


def test_settings_dialog_autosave_interval_and_default_model_apply_at_once(qtbot, window, tmp_path):
    window.autosaver = Autosaver(window.ws, window.settings, RecoveryStore(tmp_path / "rec"), parent=window)
    window.autosaver.start()
    assert window.autosaver._timer.interval() == 60_000
    model = tmp_path / "other-model"
    (model / "unet").mkdir(parents=True)
    (model / "vae").mkdir()
    (model / "model_index.json").write_text("{}")
    (model / "unet" / "config.json").write_text('{"sample_size": 64}')
    (model / "vae" / "config.json").write_text('{"block_out_channels": [1, 2, 3, 4]}')
    window.settings.add_model(str(model))
    dialog = open_settings(qtbot, window)
    dialog.autosave.setValue(15)
    dialog.model.setCurrentIndex(dialog.model.findData(str(model)))
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert window.autosaver._timer.isActive() and window.autosaver._timer.interval() == 15_000
    # The panel (no frame selected) and the next frame use the new model, at its native size.
    assert window.frame_panel.model.currentData() == str(model)
    window.frame_panel.generate_button.click()
    (frame,) = window.ws.doc.frames.values()
    assert frame.model == str(model) and (frame.w, frame.h) == (512, 512)


def test_keyboard_shortcuts_lists_the_real_actions(qtbot, window):
    window.shortcuts_action.trigger()
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    rows = {(text, menu): keys for text, keys, menu in dialog.rows()}
    assert rows[("Generate", "Generate")] == "Ctrl+Return, Ctrl+Enter"
    assert rows[("Eraser", "Tools")] == "E"
    assert rows[("Undo", "Edit")] == QKeySequence(QKeySequence.StandardKey.Undo).toString()
    assert rows[("Settings", "Edit")] == "Ctrl+,"
    dialog.filter.setText("candidate")
    assert {r[0] for r in dialog.rows()} >= {"Accept Candidate", "Next Candidate"}
    assert all("andidate" in r[0] for r in dialog.rows())
    dialog.close()
    # Generated from the actions: a changed shortcut shows at once.
    window.tool_actions["eraser"].setShortcut(QKeySequence("Shift+E"))
    window.shortcuts_action.trigger()
    dialog = [d for d in window.findChildren(ShortcutsDialog) if d.isVisible()][-1]
    assert ("Eraser", "Shift+E", "Tools") in dialog.rows()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recovery_brings_back_the_view_and_the_selection(qtbot, tmp_path, engines):
    folder = tmp_path / "recovery"
    crashed = MainWindow(EngineWorker(engines("", 0.1)), make_settings(tmp_path), dialogs=ScriptedDialogs())
    qtbot.addWidget(crashed)
    crashed.resize(1200, 800)
    crashed.show()
    qtbot.waitExposed(crashed)
    drag(crashed, "frame", [(0, 0), (128, 128)])
    drag(crashed, "frame", [(400, 400), (528, 528)])
    second = crashed.ws.selected_frame_id
    drag(crashed, "frame", [(-300, 0), (-200, 64)])
    crashed.ws.select_frame(second)
    crashed.ws.view.set_zoom(2.5)
    crashed.ws.view.center_on_point(464, 464)
    drag(crashed, "mask", [(410, 410), (420, 420)])  # an edit after the view change: autosaved
    store = RecoveryStore(folder, session="crashed")
    saver = Autosaver(crashed.ws, crashed.settings, store, parent=crashed)
    qtbot.waitUntil(lambda: saver.writes >= 1 and saver._in_flight is None, timeout=10000)
    saver.wait()
    # The session "crashes": its process is gone.
    meta = json.loads(store.sidecar.read_text())
    store.sidecar.write_text(json.dumps(dict(meta, pid=dead_pid())))
    saver.stop(discard=False)

    (tmp_path / "b").mkdir()
    settings = make_settings(tmp_path / "b")
    fresh = MainWindow(EngineWorker(engines("", 0.1)), settings, dialogs=ScriptedDialogs())
    qtbot.addWidget(fresh)
    fresh.resize(1200, 800)
    fresh.show()
    qtbot.waitExposed(fresh)
    fresh.io.dialogs.yes_no = [True]
    assert offer_recovery(fresh.ws, fresh.io, RecoveryStore(folder))
    assert fresh.ws.selected_frame_id == second
    assert fresh.frame_panel.frame is not None and fresh.frame_panel.frame.id == second
    assert fresh.ws.view.zoom == pytest.approx(2.5)
    c = fresh.ws.view.visible_scene_rect().center()
    assert (c.x(), c.y()) == (pytest.approx(464, abs=1), pytest.approx(464, abs=1))
    for w in (crashed, fresh):
        w.io.dialogs.save_answers = ["discard"] * 3
        w.close()
    QApplication.processEvents()

import sys

from helpers import make_window

from canvas_app.ui import window_menus


def test_about_box_names_versions_and_the_builtin_models_licence(qtbot, tmp_path, monkeypatch):
    window = make_window(qtbot, tmp_path)
    shown = []
    monkeypatch.setattr(window_menus.QMessageBox, "about", lambda parent, title, text: shown.append(text))
    torch_loaded = "torch" in sys.modules
    window.about_action.trigger()
    assert shown, "the About action shows a box"
    text = shown[0]
    assert "diffusers" in text.lower() and "torch" in text.lower()
    assert "apache-2.0" in text.lower()
    # Reading versions for the About box must not import torch into the GUI process.
    assert ("torch" in sys.modules) == torch_loaded


def test_device_menu_offers_cpu_precisions(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    actions = {}
    for top in window.menuBar().actions():
        for action in top.menu().actions():
            if action.menu() is not None and action.text().startswith("Device"):
                actions = {a.text(): a for a in action.menu().actions()}
    assert {"Automatic", "CPU", "CPU, bf16", "CPU, fp32"} <= set(actions)
    actions["CPU, bf16"].trigger()
    assert window.settings.get("engine/device", "") == "cpu:bf16"
    assert actions["CPU, bf16"].isChecked() and not actions["CPU"].isChecked()

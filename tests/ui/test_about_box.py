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


def test_settings_offer_cpu_precisions(qtbot, tmp_path):
    """Edit > Settings lists the CPU precisions; choosing bf16 stores it for the engine."""
    from PySide6.QtWidgets import QDialogButtonBox

    from canvas_app.ui.settings_dialog import SettingsDialog

    window = make_window(qtbot, tmp_path)
    window.settings_action.trigger()
    dialog = [d for d in window.findChildren(SettingsDialog) if d.isVisible()][-1]
    labels = [dialog.device.itemText(i) for i in range(dialog.device.count())]
    assert {"Automatic", "CPU", "CPU, bf16", "CPU, fp32"} <= set(labels)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu:bf16"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert window.settings.get("engine/device", "") == "cpu:bf16"

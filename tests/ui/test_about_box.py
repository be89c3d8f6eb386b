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

"""File > Open on an OpenRaster image imports its layers; dropping one floats it like any image;
a damaged project's error names what can be done."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import make_window
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDropEvent, QKeySequence

sys.path.insert(0, str(Path(__file__).parents[1] / "core"))
from test_openraster import krita_file  # noqa: E402

from canvas_app.core.project_file import save_project  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def _open_action(window) -> QAction:
    (action,) = [
        a for a in window.findChildren(QAction) if a.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    ]
    return action


def test_open_ora_imports_its_layers_as_a_new_unsaved_document(qtbot, window, tmp_path):
    path = krita_file(tmp_path)
    window.io.dialogs.open_paths = [str(path)]
    messages: list[str] = []
    window.io.message.connect(messages.append)
    window.ws.view.setFocus()
    qtbot.keyClick(window.ws.view, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)  # File > Open
    assert window.io.dialogs.asked == ["Open project"]
    doc = window.ws.doc
    assert doc.image.bounds() == (10, 5, 120, 105)  # red layer to the white square's far corner
    assert tuple(doc.image.read(45, 35, 1, 1)[0, 0]) == (128, 0, 128, 255)
    assert doc.path is None and doc.modified and doc.can_undo  # Save asks for a new .canvas name
    assert not window.banner.isVisible()
    assert messages and "Imported krita.ora: 3 layers, 200x120" in messages[-1]
    assert "hidden layer 'hidden sketch' left out" in messages[-1]
    assert path.read_bytes()[:4] == b"PK\x03\x04"  # the .ora itself is untouched


def test_drop_ora_floats_its_composite(qtbot, window, tmp_path):
    path = krita_file(tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.ws.view.set_zoom(1.0)
    target = window.ws.view.mapFromScene(QPointF(100, 100))
    window.ws.view.dropEvent(
        QDropEvent(
            QPointF(target),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    floating = window.place_tool.floating
    assert floating is not None and floating.pixels.shape == (120, 200, 4)
    assert not window.banner.isVisible()


def test_open_truncated_project_says_damaged_and_where_copies_are(qtbot, window, tmp_path, monkeypatch):
    from canvas_app.core.document import Document
    from canvas_app.core.recovery import RECOVERY_DIR_ENV

    monkeypatch.setenv(RECOVERY_DIR_ENV, str(tmp_path / "rec"))
    doc = Document()
    doc.paste(0, 0, np.full((300, 300, 4), 80, np.uint8))
    path = tmp_path / "cut.canvas"
    save_project(doc, path)
    path.write_bytes(path.read_bytes()[:5000])
    window.io.dialogs.open_paths = [str(path)]
    _open_action(window).trigger()
    text = window.banner.text
    assert window.banner.isVisible() and "cut.canvas is damaged or incomplete" in text
    assert str(tmp_path / "rec") in text and "not a zip" not in text

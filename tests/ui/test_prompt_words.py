"""Before the run, the frame panel names the prompt words the chosen model does not know or
ignores, and the picker says what the built-in model draws (issue 16)."""

from __future__ import annotations

import json

import pytest
from helpers import active_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from canvas_app.core.frames import PromptFrame
from canvas_app.engine.clip_vocab import vocab_and_merges  # torch-free: reads the vocabulary file
from canvas_app.ui.model_picker import MODELS_ENV


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    # A Stable Diffusion folder in the models folder: CLIP's vocabulary, which spells every word.
    sd = tmp_path / "models" / "sd15"
    (sd / "tokenizer").mkdir(parents=True)
    (sd / "model_index.json").write_text("{}")
    (sd / "tokenizer" / "vocab.json").write_text(json.dumps(vocab_and_merges()[0]))
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    yield from active_window(qtbot, tmp_path)


def type_into(qtbot, widget, text: str) -> None:
    """Click into the box (as a person does) and type."""
    qtbot.mouseClick(widget.viewport(), Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is widget
    qtbot.keyClicks(widget, text)


def click_into(qtbot, edit) -> None:
    """Click into a line edit (leaving the other box commits it)."""
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is edit


def clear(qtbot, widget) -> None:
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(widget, Qt.Key.Key_Delete)


def test_typing_unknown_words_names_them_after_a_pause(qtbot, window):
    panel = window.frame_panel
    note = panel.words_note
    assert not note.isVisible()
    type_into(qtbot, panel.prompt, "a cat on a sofa")
    assert not note.isVisible()  # not on every key: after a pause
    qtbot.waitUntil(note.isVisible, timeout=3000)
    assert 'does not know the words "cat", "sofa" in the prompt' in note.text()
    # A position word: the built-in model knows it but places nothing by it.
    qtbot.keyClicks(panel.prompt, ", on the left")
    qtbot.waitUntil(lambda: 'position words "left"' in note.text(), timeout=3000)
    assert "the frame says where" in note.text()
    # Words it knows, without a position: nothing to say.
    clear(qtbot, panel.prompt)
    qtbot.keyClicks(panel.prompt, "two yellow circles, purple background")
    qtbot.waitUntil(lambda: not note.isVisible(), timeout=3000)
    assert note.text() == ""


def test_the_negative_prompt_is_checked_too(qtbot, window):
    panel = window.frame_panel
    type_into(qtbot, panel.negative, "blurry, red")
    qtbot.waitUntil(panel.words_note.isVisible, timeout=3000)
    assert 'does not know the words "blurry" in the negative prompt' in panel.words_note.text()
    assert "in the prompt:" not in panel.words_note.text()


def test_a_stable_diffusion_model_knows_every_word_and_the_note_follows_the_model(qtbot, window):
    panel = window.frame_panel
    type_into(qtbot, panel.prompt, "a cat on a sofa on the left")
    qtbot.waitUntil(panel.words_note.isVisible, timeout=3000)
    # Pick the SD model in the picker with the keyboard: the note goes at once.
    panel.model.setFocus()
    qtbot.keyClick(panel.model, Qt.Key.Key_Down)
    assert panel.model.currentText() == "sd15"
    assert panel.draft.model.endswith("sd15")
    assert not panel.words_note.isVisible()
    type_into(qtbot, panel.prompt, " at sunset")
    qtbot.wait(500)
    assert not panel.words_note.isVisible()
    panel.model.setFocus()
    qtbot.keyClick(panel.model, Qt.Key.Key_Up)
    assert panel.model.currentText() == "Built-in"
    assert panel.words_note.isVisible() and '"sunset"' in panel.words_note.text()


def test_selecting_a_frame_shows_its_unknown_words_at_once(qtbot, window):
    frame = window.ws.doc.add_frame(PromptFrame(x=0, y=0, w=128, h=128, prompt="a dog under a tree"))
    window.ws.select_frame(frame.id)
    note = window.frame_panel.words_note
    assert note.isVisible()
    assert '"dog"' in note.text() and 'position words "under"' in note.text()
    window.ws.select_frame("")
    assert not note.isVisible()


def test_the_picker_says_what_the_builtin_model_draws_and_how_to_add_another(qtbot, window, tmp_path):
    panel = window.frame_panel
    about = panel.model_about
    assert panel.model.currentText() == "Built-in" and about.isVisible()
    text = about.text()
    assert "42 words" in text and "houses" in text and "circles" in text and "11 colours" in text
    assert "Stable Diffusion" in text and ".safetensors" in text and str(tmp_path / "models") in text
    assert panel.model.itemData(0, Qt.ItemDataRole.ToolTipRole) == text
    panel.model.setFocus()
    qtbot.keyClick(panel.model, Qt.Key.Key_Down)
    assert not about.isVisible()  # an added model has no description of ours


def test_a_region_prompt_names_its_own_unknown_words_as_it_is_typed(qtbot, window):
    panel = window.frame_panel
    regions = panel.regions
    frame = window.ws.doc.add_frame(PromptFrame(x=0, y=0, w=256, h=128, prompt="green hills, blue sky"))
    window.ws.select_frame(frame.id)
    regions.add_action.trigger()  # the new region's prompt box gets the focus
    qtbot.waitUntil(regions.prompt.hasFocus)
    note = regions.words_note
    assert not note.isVisible() and not panel.words_note.isVisible()

    qtbot.keyClicks(regions.prompt, "a cat on a sofa")
    assert not note.isVisible()  # not on every key: after a pause
    qtbot.waitUntil(note.isVisible, timeout=3000)
    assert note.text() == (
        'This model does not know the words "cat", "sofa" in the region prompt: it reads them letter '
        "by letter and they mean nothing to it."
    )
    assert not panel.words_note.isVisible()  # the frame's prompt is fine: its note stays away

    # The region's negative prompt too, and a position word in the region prompt.
    click_into(qtbot, regions.negative)
    qtbot.keyClicks(regions.negative, "blurry")
    qtbot.waitUntil(lambda: '"blurry" in the region negative prompt' in note.text(), timeout=3000)

    # Words the model knows: the note goes.
    for edit, text in ((regions.prompt, "a red house"), (regions.negative, "black")):
        click_into(qtbot, edit)
        qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(edit, text)
    qtbot.waitUntil(lambda: not note.isVisible(), timeout=3000)
    assert note.text() == ""

    # Another region shows its own words at once; the first, chosen again, its own.
    qtbot.keyClick(regions.negative, Qt.Key.Key_Return)
    regions.add_action.trigger()
    qtbot.waitUntil(lambda: regions.list.count() == 2 and regions.prompt.hasFocus())
    qtbot.keyClicks(regions.prompt, "a dog under a tree")
    qtbot.keyClick(regions.prompt, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: '"dog"' in note.text(), timeout=3000)
    assert 'position words "under"' in note.text()
    regions.list.setCurrentRow(0)
    assert not note.isVisible()
    regions.list.setCurrentRow(1)
    assert note.isVisible() and '"dog"' in note.text()

    # The model picked for the frame decides: Stable Diffusion knows every word.
    panel.model.setFocus()
    qtbot.keyClick(panel.model, Qt.Key.Key_Down)
    assert panel.model.currentText() == "sd15"
    assert not note.isVisible()

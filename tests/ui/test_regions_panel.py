"""Regions in the frame panel: added, edited, reordered, hidden, deleted and undone as a person does."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import drag, make_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from canvas_app.core.request import GenerationRequest, Mode


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    yield w
    w.io.dialogs.save_answers = ["discard"] * 5
    w.close()


def _names(window) -> list[tuple[str, bool]]:
    frame = window.ws.doc.frame(window.ws.selected_frame_id)
    return [(r.prompt, r.visible) for r in frame.regions]


def _shown(panel) -> list[str]:
    return [panel.list.item(i).text() for i in range(panel.list.count())]


def test_add_edit_reorder_hide_delete_and_undo(qtbot, window) -> None:
    panel = window.frame_panel.regions
    assert not panel.add_action.isEnabled()  # no frame selected: nothing to add to
    drag(window, "frame", [(0, 0), (256, 128)])
    qtbot.waitUntil(lambda: panel.add_action.isEnabled())
    assert not panel.delete_action.isEnabled()

    # Add: a box in the middle of the frame, and the prompt box has the focus to type into.
    panel.add_action.trigger()
    assert [r.rect for r in window.ws.doc.frame(window.ws.selected_frame_id).regions] == [(64, 32, 128, 64)]
    qtbot.waitUntil(lambda: panel.prompt.hasFocus())
    qtbot.keyClicks(panel.prompt, "a red house")
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Return)
    assert _names(window) == [("a red house", True)]
    qtbot.waitUntil(lambda: _shown(panel) == ["a red house"])

    # Adjust the box: the left third.
    panel.box[0].setValue(0)
    panel.box[2].setValue(88)
    frame = window.ws.doc.frame(window.ws.selected_frame_id)
    assert frame.regions[0].rect == (0, 32, 88, 64)

    panel.add_action.trigger()
    qtbot.keyClicks(panel.prompt, "a yellow sun")
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _shown(panel) == ["a red house", "a yellow sun"])
    assert panel.up_action.isEnabled() and not panel.down_action.isEnabled()

    # Reorder with the key, focus in the list.
    panel.list.setFocus()
    qtbot.keyClick(panel.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _shown(panel) == ["a yellow sun", "a red house"])
    assert _names(window) == [("a yellow sun", True), ("a red house", True)]

    # Hide the sun: unchecked in the list, left out of the request.
    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert _names(window) == [("a yellow sun", False), ("a red house", True)]
    from canvas_app.core.frame_plan import request_for_frame

    request = request_for_frame(window.ws.doc, window.ws.doc.frame(window.ws.selected_frame_id))
    assert isinstance(request, GenerationRequest)
    assert [r.prompt for r in request.regions] == ["a red house"]

    # Delete the current region with the Delete key while the list has the focus.
    qtbot.waitUntil(lambda: panel.list.count() == 2)
    panel.list.setCurrentRow(1)
    panel.list.setFocus()
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert _names(window) == [("a yellow sun", False)]
    # The frame survives: Delete in the region list deletes the region only.
    assert window.ws.selected_frame_id in window.ws.doc.frames

    # Undo through the window's action brings the region back, and the list shows it.
    undo = window.undo_action
    assert undo.isEnabled()
    undo.trigger()
    qtbot.waitUntil(lambda: _shown(panel) == ["a yellow sun", "a red house"])
    undo.trigger()  # the hide
    assert _names(window) == [("a yellow sun", True), ("a red house", True)]


def test_reroll_keeps_the_regions_of_the_patch(qtbot, window) -> None:
    from canvas_app.core.regions import Region

    doc = window.ws.doc
    doc.paste(0, 0, np.full((64, 128, 4), 200, np.uint8))  # half the frame is empty: outpaint, with context
    drag(window, "frame", [(0, 0), (256, 128)])
    fid = window.ws.selected_frame_id
    house = doc.add_region(fid, Region(0, 0, 88, 128, prompt="a red house"))
    rid = window.gen.generate(fid)
    qtbot.waitUntil(lambda: not window.gen.jobs[rid].state.active, timeout=10000)
    first = window.gen.jobs[rid].request
    assert first.mode is Mode.OUTPAINT and first.origin == (-32, -32)
    assert [(r.rect, r.prompt) for r in first.regions] == [((32, 32, 88, 128), "a red house")]
    patch = window.gen.accept(fid)
    assert patch is not None
    # The artist then changes the region; a re-roll of the patch brings back what made it.
    doc.update_region(fid, house.id, prompt="a blue tree")
    window.patch_list.select_patch(patch.id)
    window.patch_list.reroll.click()
    (again,) = [r for r in window.gen.jobs if r != rid]
    assert window.gen.jobs[again].request.regions == first.regions
    assert [r.prompt for r in doc.frame(fid).regions] == ["a red house"]
    qtbot.waitUntil(lambda: not window.gen.jobs[again].state.active, timeout=10000)


def test_tab_goes_from_a_region_prompt_to_its_negative_and_on_to_its_box(qtbot, window) -> None:
    panel = window.frame_panel.regions
    drag(window, "frame", [(0, 0), (256, 128)])
    qtbot.waitUntil(lambda: panel.add_action.isEnabled())
    panel.add_action.trigger()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.prompt)
    qtbot.keyClicks(panel.prompt, "a red house")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    # The prompt is written to the document, and the list follows it (a rebuild): the negative
    # field keeps the focus through that.
    qtbot.waitUntil(lambda: _shown(panel) == ["a red house"])
    qtbot.wait(20)
    assert QApplication.focusWidget() is panel.negative
    qtbot.keyClicks(QApplication.focusWidget(), "blurry")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    qtbot.waitUntil(
        lambda: window.ws.doc.frame(window.ws.selected_frame_id).regions[0].negative_prompt == "blurry"
    )
    qtbot.wait(20)
    assert QApplication.focusWidget() is panel.box[0]  # the region's X
    for spin in panel.box[1:]:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        assert QApplication.focusWidget() is spin
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is panel.negative
    region = window.ws.doc.frame(window.ws.selected_frame_id).regions[0]
    assert (region.prompt, region.negative_prompt) == ("a red house", "blurry")


def test_tab_goes_from_the_frame_prompt_to_its_negative(qtbot, window) -> None:
    panel = window.frame_panel
    drag(window, "frame", [(0, 0), (256, 128)])
    panel.prompt.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.prompt)
    qtbot.keyClicks(panel.prompt, "a castle")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.negative
    assert panel.prompt.toPlainText() == "a castle"  # no tab typed into the prompt
    qtbot.keyClicks(QApplication.focusWidget(), "fog")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.model
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is panel.prompt
    frame_id = window.ws.selected_frame_id
    qtbot.waitUntil(  # after the panel's commit pause
        lambda: (
            (window.ws.doc.frame(frame_id).prompt, window.ws.doc.frame(frame_id).negative_prompt)
            == ("a castle", "fog")
        )
    )


def test_a_change_of_the_document_keeps_the_region_prompt_being_typed(qtbot, window) -> None:
    panel = window.frame_panel.regions
    drag(window, "frame", [(0, 0), (256, 128)])
    qtbot.waitUntil(lambda: panel.add_action.isEnabled())
    frame_id = window.ws.selected_frame_id
    panel.add_action.trigger()
    # Typed at once: the list's refresh after the add comes after the first keys, and keeps them.
    qtbot.keyClicks(QApplication.focusWidget(), "a red")
    qtbot.wait(20)
    assert panel.prompt.text() == "a red"
    qtbot.keyClicks(QApplication.focusWidget(), " house")

    # Moved with the region tool before the text is committed: the list follows the document
    # (the new X shows), the field keeps what is typed and the focus.
    drag(window, "region", [(128, 64), (144, 64)])
    assert window.undo_action.text() == "&Undo Move region"
    qtbot.waitUntil(lambda: panel.box[0].value() == 80)
    assert panel.prompt.text() == "a red house" and QApplication.focusWidget() is panel.prompt
    assert window.ws.doc.frame(frame_id).regions[0].prompt == ""  # not committed yet

    # Ctrl+Enter commits it before the run: the request has it, and the move.
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (region,) = window.ws.doc.frame(frame_id).regions
    assert (region.prompt, region.rect) == ("a red house", (80, 32, 128, 64))
    engine = window.gen.worker.engine
    qtbot.waitUntil(lambda: bool(engine.requests))
    assert [r.prompt for r in engine.requests[-1].regions] == ["a red house"]

    # Undo takes back the prompt (its own step), then the move; the field follows.
    window.undo_action.trigger()
    qtbot.waitUntil(lambda: panel.prompt.text() == "")
    window.undo_action.trigger()
    qtbot.waitUntil(lambda: panel.box[0].value() == 64)


def test_typing_in_a_region_prompt_stays_with_its_region_when_another_is_shown(qtbot, window) -> None:
    panel = window.frame_panel.regions
    drag(window, "frame", [(0, 0), (256, 128)])
    qtbot.waitUntil(lambda: panel.add_action.isEnabled())
    panel.add_action.trigger()
    panel.add_action.trigger()
    qtbot.keyClicks(QApplication.focusWidget(), "a yellow sun")
    panel.list.setCurrentRow(0)  # without a focus change (the canvas picks regions so too)
    assert panel.prompt.text() == ""
    assert [r.prompt for r in window.ws.doc.frame(window.ws.selected_frame_id).regions] == [
        "",
        "a yellow sun",
    ]

"""Document edits, undo/redo of every kind of edit, history bounds and events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_app.core.brush import BrushSettings
from canvas_app.core.document import Document
from canvas_app.core.frames import Patch, PromptFrame
from canvas_app.core.raster import TILE_SIZE


def state(doc: Document) -> tuple:
    """Everything undo must restore, in comparable form."""
    image = {k: doc.image.get_tile(*k).tobytes() for k in doc.image.tile_keys()}  # type: ignore[union-attr]
    mask = {k: doc.mask.get_tile(*k).tobytes() for k in doc.mask.tile_keys()}  # type: ignore[union-attr]
    return image, mask, list(doc.frames.items()), list(doc.patches)


def solid(w: int, h: int, value: int) -> np.ndarray:
    arr = np.full((h, w, 4), value, np.uint8)
    arr[..., 3] = 255
    return arr


def test_every_edit_undoes_and_redoes() -> None:
    doc = Document()
    states = [state(doc)]
    doc.paste(-40, -40, solid(100, 100, 10))
    states.append(state(doc))
    doc.stroke(BrushSettings(size=12, color=(200, 0, 0)), [(0, 0), (400, 30)])
    states.append(state(doc))
    doc.stroke(BrushSettings(size=12, erase=True), [(0, 0), (0, 50)])
    states.append(state(doc))
    doc.erase_rect(-40, -40, 20, 20)
    states.append(state(doc))
    doc.stroke(BrushSettings(size=30), [(10, 10), (60, 60)], layer="mask")
    states.append(state(doc))
    doc.fill_mask(100, 100, 10, 10)
    states.append(state(doc))
    frame = doc.add_frame(x=0, y=0, w=64, h=64, prompt="a hill")
    states.append(state(doc))
    doc.move_frame(frame.id, 17, 31)
    states.append(state(doc))
    doc.resize_frame(frame.id, 16, 32, 130, 70)
    states.append(state(doc))
    doc.update_frame(frame.id, prompt="a lake", seed=5, steps=4)
    states.append(state(doc))
    doc.add_frame(PromptFrame(x=500, y=500, w=64, h=64))
    states.append(state(doc))
    patch = Patch(frame.id, 16, 32, 128, 72, seed=3, request_json="{}")
    doc.add_patch(patch, solid(128, 72, 99))
    states.append(state(doc))
    doc.clear_mask()
    states.append(state(doc))
    doc.remove_frame(frame.id)
    states.append(state(doc))
    assert len(doc.history) == len(states) - 1

    for expected in reversed(states[:-1]):
        assert doc.undo()
        assert state(doc) == expected
    assert not doc.can_undo and not doc.undo()
    for expected in states[1:]:
        assert doc.redo()
        assert state(doc) == expected
    assert not doc.can_redo and not doc.redo()


def test_frame_order_is_restored_on_undo_delete() -> None:
    doc = Document()
    ids = [doc.add_frame(x=i * 8).id for i in range(3)]
    doc.remove_frame(ids[1])
    assert list(doc.frames) == [ids[0], ids[2]]
    doc.undo()
    assert list(doc.frames) == ids
    assert doc.frame(ids[1]).x == 8
    with pytest.raises(KeyError, match="no frame"):
        doc.frame("nope")
    with pytest.raises(ValueError, match="already exists"):
        doc.add_frame(doc.frame(ids[0]))
    with pytest.raises(ValueError, match="id cannot change"):
        doc.update_frame(ids[0], id="other")


def test_a_stroke_is_one_command_and_grouping_nests() -> None:
    doc = Document()
    session = doc.begin_stroke(BrushSettings(size=10))
    for i in range(50):
        session.move_to(i * 7.0, 3.0)
    session.end()
    assert len(doc.history) == 1 and doc.history.undo_label == "Brush stroke"
    with doc.group("Two things"):
        doc.paste(0, 0, solid(5, 5, 1))
        with doc.group("inner"):
            doc.add_frame()
            doc.fill_mask(0, 0, 4, 4)
    assert len(doc.history) == 2 and doc.history.undo_label == "Two things"
    doc.undo()
    assert not doc.frames and len(doc.mask) == 0
    assert doc.image.read(0, 0, 1, 1)[0, 0, 3] == 255  # the stroke is still there
    doc.undo()
    assert len(doc.image) == 0


def test_no_op_edits_record_nothing() -> None:
    doc = Document()
    assert doc.erase_rect(0, 0, 500, 500) is None
    assert doc.paste(0, 0, np.zeros((10, 10, 4), np.uint8)) is None
    assert doc.begin_stroke(BrushSettings()).end() is None
    frame = doc.add_frame()
    doc.update_frame(frame.id, x=frame.x)
    assert len(doc.history) == 1


def test_history_stores_only_touched_tiles_and_respects_its_bound() -> None:
    tile_bytes = TILE_SIZE * TILE_SIZE * 4
    doc = Document(history_max_bytes=int(17.5 * tile_bytes))
    doc.paste(0, 0, solid(4 * TILE_SIZE, 4 * TILE_SIZE, 1))  # 16 tiles after, none before
    assert doc.history.nbytes == 16 * tile_bytes
    # One tile touched: its "before" is the paste's "after" (counted once) plus one new tile.
    doc.stroke(BrushSettings(size=10), [(10, 10), (20, 20)])
    assert doc.history.nbytes == 17 * tile_bytes
    doc.stroke(BrushSettings(size=10), [(300, 300), (310, 310)])
    # Over the bound: the oldest command (the big paste) goes, the strokes stay undoable.
    assert len(doc.history) == 2 and doc.history.dropped == 1
    assert doc.history.nbytes == 4 * tile_bytes
    assert doc.undo() and doc.undo() and not doc.undo()
    assert doc.image.read(0, 0, 1, 1)[0, 0, 0] == 1  # the paste itself stays on the canvas
    # A new edit after undo drops the redo stack and its tiles.
    doc.paste(2000, 2000, solid(4, 4, 9))
    assert not doc.can_redo and doc.history.nbytes == tile_bytes
    # A single command bigger than the whole bound is still kept, so it can be undone.
    tiny = Document(history_max_bytes=1)
    tiny.paste(0, 0, solid(600, 600, 3))
    assert tiny.can_undo


def test_events_and_modified_flag() -> None:
    doc = Document()
    seen: list[tuple] = []
    doc.events.pixels_changed.connect(lambda rect: seen.append(("pixels", rect)))
    doc.events.mask_changed.connect(lambda rect: seen.append(("mask", rect)))
    doc.events.frames_changed.connect(lambda fid: seen.append(("frames", fid)))
    doc.events.patches_changed.connect(lambda: seen.append(("patches",)))
    doc.events.modified_changed.connect(lambda m: seen.append(("modified", m)))
    assert not doc.modified
    doc.paste(3, 4, solid(5, 6, 1))
    assert ("pixels", (3, 4, 5, 6)) in seen and ("modified", True) in seen and doc.modified
    doc.mark_saved()
    assert seen[-1] == ("modified", False) and not doc.modified
    seen.clear()
    frame = doc.add_frame()
    doc.fill_mask(0, 0, 2, 2)
    doc.add_patch(Patch(frame.id, 0, 0, 2, 2, 1, "{}"), solid(2, 2, 5))
    kinds = [s[0] for s in seen]
    assert kinds.count("modified") == 1 and {"frames", "mask", "patches", "pixels"} <= set(kinds)
    assert ("frames", frame.id) in seen
    doc.undo()
    doc.undo()
    doc.undo()
    assert not doc.modified and seen[-1] == ("modified", False)
    doc.redo()
    assert doc.modified
    doc.undo()
    doc.paste(0, 0, solid(1, 1, 1))  # branches away: the saved state is no longer reachable by redo
    doc.undo()
    assert not doc.modified
    callback = seen.append
    doc.events.view_changed.connect(callback)
    doc.events.view_changed.disconnect(callback)


def test_stroke_session_emits_live_and_refuses_after_end() -> None:
    doc = Document()
    rects: list = []
    doc.events.mask_changed.connect(rects.append)
    session = doc.begin_stroke(BrushSettings(size=8), layer="mask")
    session.move_to(0, 0)
    session.move_to(40, 0)
    assert len(rects) == 2 and session.dabs > 5
    assert session.end() == session.dirty
    with pytest.raises(RuntimeError):
        session.move_to(1, 1)
    assert doc.history.undo_label == "Mask stroke"


def test_snapshot_is_isolated_from_later_edits() -> None:
    doc = Document()
    doc.paste(0, 0, solid(10, 10, 50))
    frame = doc.add_frame(prompt="x")
    snap = doc.snapshot()
    doc.paste(0, 0, solid(10, 10, 90))
    doc.update_frame(frame.id, prompt="y")
    assert snap.image_tiles[(0, 0)][0, 0, 0] == 50
    assert snap.frames[0].prompt == "x"
    restored = Document.from_snapshot(snap)
    assert restored.image.read(0, 0, 1, 1)[0, 0, 0] == 50 and not restored.modified


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["paste", "erase", "stroke", "mask", "frame"]),
            st.integers(-400, 400),
            st.integers(-400, 400),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 8),
)
def test_undo_and_redo_walk_through_recorded_states(edits: list, redo_count: int) -> None:
    doc = Document()
    empty = state(doc)
    recorded = []
    for kind, x, y in edits:
        before = len(doc.history)
        if kind == "paste":
            doc.paste(x, y, solid(70, 40, x & 0xFF))
        elif kind == "erase":
            doc.erase_rect(x, y, 300, 20)
        elif kind == "stroke":
            doc.stroke(BrushSettings(size=15, erase=y % 2 == 0), [(x, y), (y, x)])
        elif kind == "mask":
            doc.stroke(BrushSettings(size=15), [(x, y), (x + 100, y)], layer="mask")
        else:
            doc.add_frame(x=x, y=y)
        if len(doc.history) > before:
            recorded.append(state(doc))
    while doc.undo():
        pass
    assert state(doc) == empty
    redos = min(redo_count, len(recorded))
    for _ in range(redos):
        doc.redo()
    assert state(doc) == (recorded[redos - 1] if redos else empty)


def test_view_changes_are_not_edits() -> None:
    doc = Document()
    calls: list[int] = []
    doc.events.view_changed.connect(lambda: calls.append(1))
    doc.set_view(zoom=2.0, center_x=5.5)
    assert doc.view.zoom == 2.0 and doc.view.center_x == 5.5 and calls == [1]
    assert not doc.modified and not doc.can_undo
    with pytest.raises(TypeError):
        doc.set_view(rotation=3)


def test_retract_forgets_the_last_edit_unless_a_later_one_depends_on_it():
    doc = Document()
    frame = doc.add_frame(x=0, y=0, w=64, h=64)
    saved = doc.history.state
    doc.mark_saved()
    doc.update_frame(frame.id, "Upscale x2", w=128, h=128)
    grow = doc.history.last
    assert grow is not None and doc.history.holds(grow) is True and doc.modified
    assert doc.retract(grow)
    # As if it never happened: the frame, the history state (not modified), nothing to redo.
    assert doc.frame(frame.id).rect == (0, 0, 64, 64)
    assert doc.history.state == saved and not doc.modified and not doc.can_redo
    assert doc.history.holds(grow) is None and not doc.retract(grow)

    doc.update_frame(frame.id, w=128, h=128)
    grow = doc.history.last
    doc.update_frame(frame.id, prompt="a boat")
    assert not doc.retract(grow)  # an edit of that frame came after it: nothing changes
    assert doc.frame(frame.id).rect == (0, 0, 128, 128) and doc.frame(frame.id).prompt == "a boat"
    doc.undo()
    doc.undo()
    assert doc.history.holds(grow) is False
    doc.redo()
    assert doc.history.holds(grow) is True


def test_retract_under_later_edits_that_do_not_depend_on_it_keeps_them():
    # An upscale's frame made, then a stroke, another frame and a patch: the frame is retracted
    # from the middle of the history; the later edits stay, and undo/redo never bring it back.
    doc = Document()
    made = doc.add_frame(x=0, y=0, w=256, h=256)
    add = doc.history.last
    doc.mark_saved()
    doc.fill_mask(300, 300, 8, 8)
    other = doc.add_frame(x=400, y=0, w=64, h=64)
    patch = Patch(frame_id=other.id, x=400, y=0, w=4, h=4, seed=1, request_json="{}")
    doc.add_patch(patch, np.full((4, 4, 4), 200, np.uint8))
    saved_later = doc.history.state
    doc.undo()  # the patch: on the redo stack
    assert add is not None and doc.retract(add)
    assert list(doc.frames) == [other.id] and doc.mask.read(300, 300, 8, 8).min() == 255
    assert doc.history.holds(add) is None and doc.modified and doc.history.redo_label == "Accept patch"
    doc.redo()
    assert len(doc.patches) == 1 and doc.history.state != saved_later  # not the state saved then
    while doc.undo():
        assert made.id not in doc.frames
    assert not doc.frames and doc.mask.read(300, 300, 8, 8).max() == 0 and not doc.patches
    while doc.redo():
        assert made.id not in doc.frames
    assert list(doc.frames) == [other.id] and len(doc.patches) == 1

    # An undone edit is forgotten too (a redo would have brought it back), unless a later one
    # depends on it.
    doc.update_frame(other.id, w=128)
    grow = doc.history.last
    doc.fill_mask(0, 0, 4, 4)
    doc.undo()
    doc.undo()
    assert grow is not None and doc.retract(grow)
    assert doc.frame(other.id).w == 64 and doc.redo() and doc.mask.read(0, 0, 4, 4).min() == 255
    assert not doc.can_redo and doc.frame(other.id).w == 64
    doc.update_frame(other.id, w=128)
    grow = doc.history.last
    doc.update_frame(other.id, prompt="a kite")
    doc.undo()
    assert grow is not None and not doc.retract(grow) and doc.frame(other.id).w == 128

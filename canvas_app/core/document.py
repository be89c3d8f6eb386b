"""The document: image and mask rasters, prompt frames, patches, view state and undo history.

The document is the single source of truth and has no Qt in it. The GUI subscribes to
``doc.events`` (plain callback lists) and mirrors what they report. Every edit goes through a method
here that records an undoable command.

Threading: a document belongs to one thread (the GUI thread). For autosave, take
``doc.snapshot()`` on that thread (cheap: tiles are shared copy-on-write) and hand the snapshot to
``project_file.save_snapshot`` on a worker thread.

``frames_changed(frame_id)`` is emitted for add, change and delete alike: whether the id is still
in ``doc.frames`` tells which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from canvas_app.core.brush import BrushSettings, Stroke
from canvas_app.core.frames import Patch, PromptFrame, ViewState
from canvas_app.core.history import (
    DEFAULT_MAX_BYTES,
    Command,
    FrameCommand,
    GroupCommand,
    History,
    Layer,
    PatchCommand,
    TilesCommand,
)
from canvas_app.core.raster import Blend, MaskRaster, Rect, TiledRaster, TileKey, tile_range
from canvas_app.core.regions import Region


class Event:
    """A Qt-free signal: ``connect`` callbacks, ``emit`` calls them in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class DocumentEvents:
    """``pixels_changed(rect)``, ``mask_changed(rect)``, ``frames_changed(frame_id)``,
    ``patches_changed()``, ``modified_changed(bool)``, ``history_changed()`` (undo/redo
    availability), ``view_changed()``. Emitted on the thread that edits the document."""

    def __init__(self) -> None:
        self.pixels_changed = Event("pixels_changed")
        self.mask_changed = Event("mask_changed")
        self.frames_changed = Event("frames_changed")
        self.patches_changed = Event("patches_changed")
        self.modified_changed = Event("modified_changed")
        self.history_changed = Event("history_changed")
        self.view_changed = Event("view_changed")


@dataclass(frozen=True)
class DocumentSnapshot:
    """An immutable copy of the document's saved state, cheap to take (tiles are shared
    copy-on-write) and safe to write to disk from another thread."""

    image_tiles: dict[TileKey, np.ndarray]
    mask_tiles: dict[TileKey, np.ndarray]
    frames: tuple[PromptFrame, ...]
    patches: tuple[Patch, ...]
    view: ViewState
    metadata: dict[str, str] = field(default_factory=dict)


class StrokeSession:
    """A brush stroke in progress; ``move_to`` for each pointer position, then ``end``."""

    def __init__(self, doc: Document, layer: Layer, settings: BrushSettings, label: str) -> None:
        self._doc = doc
        self.layer: Layer = layer
        self._stroke = Stroke(doc.raster(layer), settings)
        self._label = label
        self._ended = False

    @property
    def dirty(self) -> Rect | None:
        return self._stroke.dirty

    @property
    def dabs(self) -> int:
        return self._stroke.dabs

    def move_to(self, x: float, y: float) -> Rect | None:
        if self._ended:
            raise RuntimeError("stroke already ended")
        rect = self._stroke.move_to(x, y)
        if rect is not None:
            self._doc._emit_layer(self.layer, rect)
        return rect

    def end(self) -> Rect | None:
        """Finish the stroke and record it as one undoable command; returns its dirty rectangle."""
        if self._ended:
            return self._stroke.dirty
        self._ended = True
        if self._stroke.dirty is None:
            return None
        before, after = _changed_only(self._stroke.before, self._stroke.after())
        if before:
            self._doc._push(TilesCommand(self.layer, before, after, self._stroke.dirty, self._label))
        return self._stroke.dirty


class Document:
    """An infinite canvas document. See the module docstring."""

    def __init__(self, history_max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        # What loading this document repaired (a prompt cut to the cap, ...), for the window to say.
        self.load_notices: list[str] = []
        self.image = TiledRaster(channels=4)
        self.mask = MaskRaster()
        self.frames: dict[str, PromptFrame] = {}
        self.patches: list[Patch] = []
        self.view = ViewState()
        self.metadata: dict[str, str] = {}
        self.history = History(max_bytes=history_max_bytes)
        self.events = DocumentEvents()
        self.path: Path | None = None
        self._saved_state = self.history.state
        self._was_modified = False

    # -- state -----------------------------------------------------------------------------------
    def raster(self, layer: Layer) -> TiledRaster:
        if layer == "image":
            return self.image
        if layer == "mask":
            return self.mask
        raise ValueError(f"unknown layer {layer!r}")

    @property
    def modified(self) -> bool:
        return self.history.state != self._saved_state

    def mark_saved(self, path: Path | None = None, state: int | None = None) -> None:
        """Record that the document as of ``state`` (default: now) is what is on disk."""
        if path is not None:
            self.path = Path(path)
        self._saved_state = self.history.state if state is None else state
        self._notify_modified()

    def snapshot(self) -> DocumentSnapshot:
        return DocumentSnapshot(
            image_tiles={k: t for k, t in self.image.snapshot().items() if t is not None},
            mask_tiles={k: t for k, t in self.mask.snapshot().items() if t is not None},
            frames=tuple(self.frames.values()),
            patches=tuple(self.patches),
            view=ViewState(**self.view.to_dict()),
            metadata=dict(self.metadata),
        )

    def bounds(self) -> Rect | None:
        """Bounds of the painted image pixels."""
        return self.image.bounds()

    def set_view(self, **changes: Any) -> None:
        """Change the view state (centre, zoom, active frame); not an undoable edit."""
        self.view = ViewState(**{**self.view.to_dict(), **changes})
        self.events.view_changed.emit()

    # -- pixel edits -----------------------------------------------------------------------------
    def paste(
        self,
        x: int,
        y: int,
        array: np.ndarray,
        mask: np.ndarray | None = None,
        blend: Blend = "replace",
        label: str = "Paste",
    ) -> Rect | None:
        """Write an RGBA (or RGB, made opaque) array into the image as one undoable command."""
        array = np.asarray(array)
        if array.ndim == 3 and array.shape[2] == 3:
            alpha = np.full(array.shape[:2] + (1,), 255, np.uint8)
            array = np.concatenate([array.astype(np.uint8), alpha], axis=2)
        h, w = array.shape[:2]
        return self._edit_pixels(
            "image", (x, y, w, h), lambda: self.image.write(x, y, array, mask, blend), label
        )

    def erase_rect(self, x: int, y: int, w: int, h: int, label: str = "Erase") -> Rect | None:
        return self._edit_pixels("image", (x, y, w, h), lambda: self.image.clear_rect(x, y, w, h), label)

    def set_mask(self, x: int, y: int, values: np.ndarray, label: str = "Mask") -> Rect | None:
        """Replace mask values in a rectangle (HxW uint8, 255 = regenerate)."""
        values = np.asarray(values)
        h, w = values.shape[:2]
        return self._edit_pixels("mask", (x, y, w, h), lambda: self.mask.write(x, y, values), label)

    def fill_mask(self, x: int, y: int, w: int, h: int, value: int = 255, label: str = "Mask") -> Rect | None:
        return self.set_mask(x, y, np.full((h, w), value, np.uint8), label)

    def clear_mask(self, rect: Rect | None = None, label: str = "Clear mask") -> Rect | None:
        rect = rect if rect is not None else self.mask.tile_bounds()
        if rect is None:
            return None
        x, y, w, h = rect
        return self._edit_pixels("mask", rect, lambda: self.mask.clear_rect(x, y, w, h), label)

    def begin_stroke(
        self, settings: BrushSettings, layer: Layer = "image", label: str | None = None
    ) -> StrokeSession:
        """Start a brush stroke (``layer`` "mask" for mask painting); the whole stroke is one command."""
        default = "Mask stroke" if layer == "mask" else ("Erase stroke" if settings.erase else "Brush stroke")
        return StrokeSession(self, layer, settings, label or default)

    def stroke(
        self, settings: BrushSettings, points: Iterable[tuple[float, float]], layer: Layer = "image"
    ) -> Rect | None:
        """Paint a whole stroke through ``points`` as one command."""
        session = self.begin_stroke(settings, layer)
        for px, py in points:
            session.move_to(px, py)
        return session.end()

    def _edit_pixels(self, layer: Layer, rect: Rect, apply: Callable[[], object], label: str) -> Rect | None:
        raster = self.raster(layer)
        keys = list(tile_range(*rect))
        before = raster.snapshot(keys)
        apply()
        before, after = _changed_only(before, raster.snapshot(keys))
        if not before:
            return None
        self._push(TilesCommand(layer, before, after, rect, label))
        self._emit_layer(layer, rect)
        return rect

    # -- frames ----------------------------------------------------------------------------------
    def frame(self, frame_id: str) -> PromptFrame:
        try:
            return self.frames[frame_id]
        except KeyError:
            raise KeyError(f"no frame with id {frame_id!r}") from None

    def add_frame(self, frame: PromptFrame | None = None, **settings: Any) -> PromptFrame:
        """Add ``frame`` (or a new one built from ``settings``) and return it."""
        frame = frame if frame is not None else PromptFrame(**settings)
        if frame.id in self.frames:
            raise ValueError(f"a frame with id {frame.id!r} already exists")
        index = len(self.frames)
        self._put_frame(None, frame, index)
        self._push(FrameCommand(None, frame, index, "Add frame"))
        return frame

    def update_frame(self, frame_id: str, label: str = "Edit frame", **changes: Any) -> PromptFrame:
        """Change any fields of a frame (prompt, seed, position, ...); returns the new frame."""
        if "id" in changes:
            raise ValueError("a frame's id cannot change")
        old = self.frame(frame_id)
        new = old.with_changes(**changes)
        if new == old:
            return old
        index = list(self.frames).index(frame_id)
        self._put_frame(old, new, index)
        self._push(FrameCommand(old, new, index, label))
        return new

    def move_frame(self, frame_id: str, x: float, y: float) -> PromptFrame:
        return self.update_frame(frame_id, "Move frame", x=int(round(x)), y=int(round(y)))

    def resize_frame(self, frame_id: str, x: float, y: float, w: float, h: float) -> PromptFrame:
        return self.update_frame(
            frame_id, "Resize frame", x=int(round(x)), y=int(round(y)), w=int(round(w)), h=int(round(h))
        )

    # -- regions (each change is one undoable frame edit) ----------------------------------------
    def add_region(self, frame_id: str, region: Region) -> Region:
        regions = self.frame(frame_id).regions
        if any(r.id == region.id for r in regions):
            raise ValueError(f"a region with id {region.id!r} already exists")
        self.update_frame(frame_id, "Add region", regions=(*regions, region))
        return region

    def update_region(
        self, frame_id: str, region_id: str, label: str = "Edit region", **changes: Any
    ) -> Region:
        """Change fields of a region (prompt, box, visible, ...); returns the new region."""
        if "id" in changes:
            raise ValueError("a region's id cannot change")
        regions = list(self.frame(frame_id).regions)
        index = _region_index(regions, region_id)
        regions[index] = regions[index].with_changes(**changes)
        self.update_frame(frame_id, label, regions=tuple(regions))
        return regions[index]

    def move_region(self, frame_id: str, region_id: str, new_index: int) -> None:
        """Put a region at ``new_index`` in the frame's order (clamped to the list)."""
        regions = list(self.frame(frame_id).regions)
        region = regions.pop(_region_index(regions, region_id))
        regions.insert(max(0, min(new_index, len(regions))), region)
        self.update_frame(frame_id, "Reorder regions", regions=tuple(regions))

    def remove_region(self, frame_id: str, region_id: str) -> None:
        regions = list(self.frame(frame_id).regions)
        regions.pop(_region_index(regions, region_id))
        self.update_frame(frame_id, "Delete region", regions=tuple(regions))

    def remove_frame(self, frame_id: str, label: str = "Delete frame") -> None:
        old = self.frame(frame_id)
        index = list(self.frames).index(frame_id)
        self._put_frame(old, None, index)
        self._push(FrameCommand(old, None, index, label))

    # -- patches ---------------------------------------------------------------------------------
    def add_patch(self, patch: Patch, pixels: np.ndarray | None, at: tuple[int, int] | None = None) -> Patch:
        """Write ``pixels`` (RGBA) with their top-left corner at ``at`` (default: the patch's corner,
        and then they must be the patch's size) and record the patch, as one undoable step.
        ``pixels`` None records the patch alone (an accept that changed no pixel)."""
        if pixels is not None and at is None and pixels.shape[:2] != (patch.h, patch.w):
            raise ValueError(f"patch pixels {pixels.shape[:2]} do not match its size {(patch.h, patch.w)}")
        x, y = (patch.x, patch.y) if at is None else at
        # self.group, not self.history.group: the history-changed event must fire once the group
        # has landed, or Undo stays greyed after an accept.
        with self.group("Accept patch"):
            if pixels is not None:
                self.paste(x, y, pixels, label="Patch pixels")
            index = len(self.patches)
            self._put_patch(patch, index, True)
            self._push(PatchCommand(patch, index, True))
        return patch

    # -- undo ------------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def undo(self) -> bool:
        command = self.history.pop_undo()
        if command is None:
            return False
        command.undo(self)
        self._after_history_change()
        return True

    def redo(self) -> bool:
        command = self.history.pop_redo()
        if command is None:
            return False
        command.redo(self)
        self._after_history_change()
        return True

    def retract(self, command: Command) -> bool:
        """Revert ``command`` (when done) and forget it (neither undo nor redo brings it back): an
        edit made for work that was then called off. Edits that came after it stay, done or undone,
        when none of them depends on it (they change other frames, pixels, patches); False, and
        nothing changes, when one does."""
        done = self.history.holds(command)
        if not self.history.retract(command):
            return False
        if done:
            command.undo(self)
        self._after_history_change()
        return True

    @contextmanager
    def group(self, label: str) -> Iterator[GroupCommand]:
        """Make every edit inside the block one undo step."""
        with self.history.group(label) as group:
            yield group
        self._after_history_change()

    # -- internals used by commands --------------------------------------------------------------
    def _push(self, command: Command) -> None:
        self.history.push(command)
        self._after_history_change()

    def _after_history_change(self) -> None:
        self.events.history_changed.emit()
        self._notify_modified()

    def _notify_modified(self) -> None:
        modified = self.modified
        if modified != self._was_modified:
            self._was_modified = modified
            self.events.modified_changed.emit(modified)

    def _emit_layer(self, layer: Layer, rect: Rect) -> None:
        if layer == "image":
            self.events.pixels_changed.emit(rect)
        else:
            self.events.mask_changed.emit(rect)

    def _restore_tiles(self, layer: Layer, tiles: dict[TileKey, np.ndarray | None], rect: Rect) -> None:
        self.raster(layer).restore(tiles)
        self._emit_layer(layer, rect)

    def _put_frame(self, old: PromptFrame | None, new: PromptFrame | None, index: int) -> None:
        items = list(self.frames.items())
        if old is not None:
            items = [(k, f) for k, f in items if k != old.id]
        if new is not None:
            items.insert(min(index, len(items)), (new.id, new))
        self.frames = dict(items)
        changed = new if new is not None else old
        self.events.frames_changed.emit(changed.id if changed is not None else "")

    def _put_patch(self, patch: Patch, index: int, present: bool) -> None:
        if present:
            self.patches.insert(min(index, len(self.patches)), patch)
        else:
            self.patches = [p for p in self.patches if p.id != patch.id]
        self.events.patches_changed.emit()

    @classmethod
    def from_snapshot(cls, snap: DocumentSnapshot) -> Document:
        doc = cls()
        doc.image.restore(snap.image_tiles)
        doc.mask.restore(snap.mask_tiles)
        doc.frames = {f.id: f for f in snap.frames}
        doc.patches = list(snap.patches)
        doc.view = ViewState(**snap.view.to_dict())
        doc.metadata = dict(snap.metadata)
        return doc


def _changed_only(
    before: dict[TileKey, np.ndarray | None], after: dict[TileKey, np.ndarray | None]
) -> tuple[dict[TileKey, np.ndarray | None], dict[TileKey, np.ndarray | None]]:
    # Copy-on-write means an untouched tile is still the very same array object.
    keys = [k for k in before if before[k] is not after.get(k)]
    return {k: before[k] for k in keys}, {k: after.get(k) for k in keys}


def _region_index(regions: list[Region], region_id: str) -> int:
    for i, region in enumerate(regions):
        if region.id == region_id:
            return i
    raise KeyError(f"no region with id {region_id!r}")

"""Undo/redo: every document edit is a command that can be undone and redone.

Pixel commands keep only the tiles they touched, before and after, as copy-on-write references
(see ``raster.py``), so a stroke over two tiles costs two tiles of history, not a canvas. The history
drops its oldest commands once their tiles exceed ``max_bytes``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Literal

import numpy as np

from canvas_app.core.frames import Patch, PromptFrame
from canvas_app.core.raster import Rect, TileKey

if TYPE_CHECKING:
    from canvas_app.core.document import Document

Layer = Literal["image", "mask"]
DEFAULT_MAX_BYTES = 512 * 2**20

_ids = count(1)


class Command(ABC):
    """An edit that has been applied to the document and can be undone and redone."""

    label: str = ""

    @abstractmethod
    def undo(self, doc: Document) -> None: ...

    @abstractmethod
    def redo(self, doc: Document) -> None: ...

    def arrays(self) -> Iterator[np.ndarray]:
        """The tile arrays this command keeps alive (for the history's memory bound)."""
        return iter(())

    @abstractmethod
    def touches(self) -> frozenset[str]:
        """What it changes ("image", "mask", "patches", "frame:<id>"): two commands that touch
        nothing in common can be undone in either order (see ``History.retract``)."""


@dataclass(eq=False)
class TilesCommand(Command):
    """Pixels of one layer changed: the touched tiles before and after (None = empty tile)."""

    layer: Layer
    before: dict[TileKey, np.ndarray | None]
    after: dict[TileKey, np.ndarray | None]
    rect: Rect
    label: str = "Paint"

    def undo(self, doc: Document) -> None:
        doc._restore_tiles(self.layer, self.before, self.rect)

    def redo(self, doc: Document) -> None:
        doc._restore_tiles(self.layer, self.after, self.rect)

    def touches(self) -> frozenset[str]:
        return frozenset((self.layer,))

    def arrays(self) -> Iterator[np.ndarray]:
        for tile in (*self.before.values(), *self.after.values()):
            if tile is not None:
                yield tile


@dataclass(eq=False)
class FrameCommand(Command):
    """A frame added (before None), removed (after None) or changed; ``index`` keeps its order."""

    before: PromptFrame | None
    after: PromptFrame | None
    index: int
    label: str = "Edit frame"

    def undo(self, doc: Document) -> None:
        doc._put_frame(self.after, self.before, self.index)

    def redo(self, doc: Document) -> None:
        doc._put_frame(self.before, self.after, self.index)

    def touches(self) -> frozenset[str]:
        frame = self.after if self.after is not None else self.before
        return frozenset((f"frame:{frame.id}",)) if frame is not None else frozenset()


@dataclass(eq=False)
class PatchCommand(Command):
    """A patch added to (or removed from) the list of patches."""

    patch: Patch
    index: int
    add: bool = True
    label: str = "Accept patch"

    def undo(self, doc: Document) -> None:
        doc._put_patch(self.patch, self.index, not self.add)

    def redo(self, doc: Document) -> None:
        doc._put_patch(self.patch, self.index, self.add)

    def touches(self) -> frozenset[str]:
        return frozenset(("patches",))


@dataclass(eq=False)
class GroupCommand(Command):
    """Several commands undone and redone as one (a whole stroke, a patch and its pixels)."""

    commands: list[Command] = field(default_factory=list)
    label: str = "Edit"

    def undo(self, doc: Document) -> None:
        for cmd in reversed(self.commands):
            cmd.undo(doc)

    def redo(self, doc: Document) -> None:
        for cmd in self.commands:
            cmd.redo(doc)

    def arrays(self) -> Iterator[np.ndarray]:
        for cmd in self.commands:
            yield from cmd.arrays()

    def touches(self) -> frozenset[str]:
        return frozenset().union(*(cmd.touches() for cmd in self.commands))


class History:
    """Undo and redo stacks with a memory bound.

    Memory is counted per distinct tile array: consecutive strokes over one tile share the array
    between one's "after" and the next one's "before", and it is counted once.

    ``state`` identifies the document state (the command on top of the undo stack); the document
    compares it with the state it was saved at to know whether it is modified.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_commands: int = 10_000) -> None:
        self.max_bytes = max_bytes
        self.max_commands = max_commands
        self._undo: deque[tuple[int, Command]] = deque()
        self._redo: list[tuple[int, Command]] = []
        self._groups: list[GroupCommand] = []
        self.dropped = 0
        # id(array) -> [number of references from commands, bytes]; arrays stay alive (and ids
        # stay unique) while a command holds them.
        self._refs: dict[int, list[int]] = {}
        self._held = 0

    @property
    def state(self) -> int:
        return self._undo[-1][0] if self._undo else 0

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and not self._groups

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and not self._groups

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1][1].label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1][1].label if self._redo else None

    def __len__(self) -> int:
        return len(self._undo)

    @property
    def last(self) -> Command | None:
        """The command an undo would undo next (None with nothing to undo)."""
        return self._undo[-1][1] if self._undo else None

    def holds(self, command: Command) -> bool | None:
        """Whether ``command`` is done (True: on the undo stack), undone (False: on the redo stack)
        or gone from the history (None: dropped, or its redo cleared by a later edit)."""
        if any(c is command for _, c in reversed(self._undo)):
            return True
        if any(c is command for _, c in self._redo):
            return False
        return None

    def retract(self, command: Command) -> bool:
        """Forget ``command`` as if it had never been pushed (the caller reverts its effect when it
        was done): the last one done, or any other, done or undone, that no command after it
        depends on (touches what it touches). False, and nothing changes, otherwise."""
        done = self.holds(command)
        if done is None or self._groups:
            return False
        undo, redo = list(self._undo), self._redo  # the redo stack's top (its oldest) is last
        if done:
            at = next(i for i, (_, c) in enumerate(undo) if c is command)
            later = undo[at + 1 :] + redo
        else:
            at = next(i for i, (_, c) in enumerate(redo) if c is command)
            later = redo[:at]
        if any(c.touches() & command.touches() for _, c in later):
            return False
        # The states after it get new ids: the documents they stand for are not the ones saved.
        fresh = [(next(_ids), c) for _, c in later]
        if done:
            self._undo = deque(undo[:at] + fresh[: len(undo) - at - 1])
            self._redo = fresh[len(undo) - at - 1 :]
        else:
            self._redo = fresh + redo[at + 1 :]
        self._track(command, -1)
        return True

    @property
    def nbytes(self) -> int:
        """Bytes of the distinct tile arrays held by the undo and redo stacks."""
        return self._held

    def _track(self, command: Command, delta: int) -> None:
        for array in command.arrays():
            entry = self._refs.setdefault(id(array), [0, array.nbytes])
            if entry[0] == 0:
                self._held += entry[1]
            entry[0] += delta
            if entry[0] == 0:
                self._held -= entry[1]
                del self._refs[id(array)]

    def push(self, command: Command) -> None:
        """Record a command that has already been applied; clears the redo stack."""
        if self._groups:
            self._groups[-1].commands.append(command)
            return
        self._undo.append((next(_ids), command))
        self._track(command, +1)
        for _, old in self._redo:
            self._track(old, -1)
        self._redo.clear()
        self._enforce_bounds()

    @contextmanager
    def group(self, label: str) -> Iterator[GroupCommand]:
        """Collect every command pushed inside the block into one undo step (nestable)."""
        group = GroupCommand(label=label)
        self._groups.append(group)
        try:
            yield group
        finally:
            self._groups.pop()
            if group.commands:
                self.push(group)

    def pop_undo(self) -> Command | None:
        if not self.can_undo:
            return None
        entry = self._undo.pop()
        self._redo.append(entry)
        return entry[1]

    def pop_redo(self) -> Command | None:
        if not self.can_redo:
            return None
        entry = self._redo.pop()
        self._undo.append(entry)
        return entry[1]

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._refs.clear()
        self._held = 0

    def _enforce_bounds(self) -> None:
        # The newest command always stays, even when it alone is over the bound.
        while len(self._undo) > 1 and (self._held > self.max_bytes or len(self._undo) > self.max_commands):
            _, oldest = self._undo.popleft()
            self._track(oldest, -1)
            self.dropped += 1

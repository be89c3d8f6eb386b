"""Staged candidates set aside while an upscale grows their frame, so that nothing is lost.

An upscale grows the frame (one undo step) at once, so that its previews fill the grown frame, and
the candidates staged on the small frame no longer fit it. They are set aside, not thrown away:

- the run is cancelled or fails: the growth is taken back (forgotten by the history when no later
  edit depends on it, else undone by a new step) and the candidates are staged again as they were;
- the upscaled result arrives: it is staged; undoing the growth swaps the small frame's candidates
  back in (and the result aside), redoing it swaps again, until the growth leaves the history.

Qt-free; the controller (``canvas_app.ui.jobs``) owns the staging and shows what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from canvas_app.core.document import Document
from canvas_app.core.history import Command

if TYPE_CHECKING:
    from canvas_app.ui.jobs import Staging


@dataclass(eq=False)
class Growth:
    """One upscale's frame growth: the history command that made it (None: nothing changed), the
    frame's rectangle before it (None: the upscale made the frame) and after it, and the staging of
    the geometry not shown now."""

    frame_id: str
    command: Command | None
    before: tuple[int, int, int, int] | None
    after: tuple[int, int, int, int]
    aside: Staging | None
    applied: bool = True  # the growth is done (the grown frame's staging shows)


# Finished growths kept for undo, newest last: older ones are forgotten (their undo then leaves the
# staging as it is), so the check after every edit stays cheap and the set-aside images few.
MAX_SETTLED = 16


class SetAside:
    """The growths of running upscales (by request id) and of finished ones still in the history."""

    def __init__(self, staging: dict[str, Staging]) -> None:
        self.staging = staging
        self.running: dict[int, Growth] = {}
        self.settled: list[Growth] = []

    def begin(self, request_id: int, growth: Growth) -> None:
        self.running[request_id] = growth

    def finished(self, request_id: int, doc: Document) -> list[str]:
        """The upscale's result is staged: from now on undo and redo of the growth swap stagings.
        Returns the frames whose staging changed (the growth may have been undone meanwhile)."""
        growth = self.running.pop(request_id, None)
        if growth is None or growth.command is None:
            return []
        self.settled.append(growth)
        del self.settled[:-MAX_SETTLED]
        return self.sync(doc)

    def called_off(self, request_id: int, doc: Document) -> str | None:
        """The upscale was cancelled or failed: the frame as it was, its candidates staged again
        (before any staged meanwhile). Returns the frame id, or None when it was no upscale."""
        growth = self.running.pop(request_id, None)
        if growth is None:
            return None
        # As in Krita AI Diffusion and InvokeAI, where a run leaves no trace until its result is
        # applied: the growth (or the frame made for a patch whose frame was deleted) leaves the
        # document and the history, even under later edits that do not depend on it (they stay,
        # undo and redo skip it). Only when the artist edited that frame since is it taken back by
        # a step of its own, which Undo reverts, so that their edit is not lost.
        frame = doc.frames.get(growth.frame_id)
        taken_back = growth.command is not None and doc.retract(growth.command)
        if not taken_back and frame is not None and frame.rect == growth.after:
            if growth.before is None:
                doc.remove_frame(growth.frame_id, "Cancel upscale")
            else:
                x, y, w, h = growth.before
                doc.update_frame(growth.frame_id, "Cancel upscale", x=x, y=y, w=w, h=h)
        if growth.aside is not None:
            self._restore(growth.frame_id, growth.aside)
        return growth.frame_id

    def sync(self, doc: Document) -> list[str]:
        """After the history changed: swap the stagings of growths undone or redone; forget the
        growths the history no longer holds. Returns the frames whose staging changed."""
        changed: list[str] = []
        for growth in list(self.settled):
            assert growth.command is not None
            applied = doc.history.holds(growth.command)
            if applied is None:
                self.settled.remove(growth)
            elif applied != growth.applied:
                growth.applied = applied
                shown = self.staging.pop(growth.frame_id, None)
                if growth.aside is not None:
                    self.staging[growth.frame_id] = growth.aside
                growth.aside = shown
                changed.append(growth.frame_id)
        return changed

    def clear(self) -> None:
        self.running.clear()
        self.settled.clear()

    def _restore(self, frame_id: str, aside: Staging) -> None:
        current = self.staging.get(frame_id)
        if current is not None:  # results staged meanwhile (a run queued before the upscale) join
            aside.candidates.extend(current.candidates)
        self.staging[frame_id] = aside

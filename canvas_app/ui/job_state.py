"""A generation job's life: its states, the one table of legal transitions, and its progress/ETA.

Qt-free so that it is tested without a window. The controller (``canvas_app.ui.jobs``) feeds every
worker event through :meth:`Job.apply`; an event the table does not allow raises
:class:`IllegalTransition` instead of silently corrupting the job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from canvas_app.core.frames import PromptFrame
from canvas_app.core.request import GenerationRequest


class JobState(str, Enum):
    QUEUED = "queued"
    LOADING = "loading"  # the engine loads the model / prepares the inputs
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.LOADING, JobState.RUNNING)


class JobEvent(str, Enum):
    LOADING = "loading"
    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


S, E = JobState, JobEvent
# (state, event) -> next state. Anything not listed is illegal. A progress event may still arrive
# after a cancel (the worker coalesces progress and delivers it late): it is absorbed, not an error.
TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (S.QUEUED, E.LOADING): S.LOADING,
    (S.QUEUED, E.STARTED): S.RUNNING,
    (S.QUEUED, E.CANCELLED): S.CANCELLED,
    (S.QUEUED, E.FAILED): S.FAILED,
    (S.LOADING, E.LOADING): S.LOADING,
    (S.LOADING, E.STARTED): S.RUNNING,
    (S.LOADING, E.CANCELLED): S.CANCELLED,
    (S.LOADING, E.FAILED): S.FAILED,
    (S.RUNNING, E.PROGRESS): S.RUNNING,
    (S.RUNNING, E.FINISHED): S.FINISHED,
    (S.RUNNING, E.CANCELLED): S.CANCELLED,
    (S.RUNNING, E.FAILED): S.FAILED,
    (S.CANCELLED, E.PROGRESS): S.CANCELLED,
    (S.FAILED, E.PROGRESS): S.FAILED,
}
del S, E


class IllegalTransition(RuntimeError):
    pass


# The estimate waits for this much of the run beyond its reference sample before it shows.
_MIN_FRACTION_FOR_ETA = 0.02


@dataclass
class Job:
    """One queued request for a frame. ``frame``: the frame as it was when queued (the crop and the
    patch follow it, even if the frame moves meanwhile)."""

    request_id: int
    frame: PromptFrame
    request: GenerationRequest
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    tiles: int = 1
    tile: int = 0
    stage: str = ""  # what the engine prepares while LOADING
    stage_fraction: float = 0.0
    message: str = ""
    # The first progress sample (time, fraction): the rate is measured from it, so the first step's
    # warm-up (kernel selection, caches) does not inflate the estimate.
    _reference: tuple[float, float] | None = None
    _last: tuple[float, float] | None = None

    def apply(self, event: JobEvent) -> JobState:
        """Move to the state the table gives for ``event``; raises IllegalTransition."""
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise IllegalTransition(f"job {self.request_id}: {event.value} while {self.state.value}")
        self.state = new
        return new

    def record_progress(self, step: int, total: int, tile: int, now: float | None = None) -> None:
        """Note a progress event (``step`` 1-based; ``tile`` just finished) at time ``now``."""
        self.step, self.total, self.tile = step, total, tile
        sample = (time.perf_counter() if now is None else now, self.fraction)
        if self._reference is None:
            self._reference = sample
        self._last = sample

    @property
    def fraction(self) -> float:
        """How much of the run is done: whole steps plus the finished tiles of the current one."""
        if self.total <= 0 or self.step <= 0:
            return 0.0
        return min(1.0, ((self.step - 1) + (self.tile + 1) / max(self.tiles, 1)) / self.total)

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate measured since the first progress sample (None until known)."""
        if self.state is not JobState.RUNNING or self._reference is None or self._last is None:
            return None
        (t0, f0), (t1, f1) = self._reference, self._last
        if f1 - f0 < _MIN_FRACTION_FOR_ETA or t1 <= t0:
            return None
        return (1.0 - f1) * (t1 - t0) / (f1 - f0)

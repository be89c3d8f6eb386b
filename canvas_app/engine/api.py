"""The engine contract: a GenerationRequest in, a stream of typed events out.

The GUI (through the worker thread) and the CLI see only this module. Importing it does not import
torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from canvas_app.core.request import BUILTIN_MODEL, GenerationRequest, Mode, TilePlan

__all__ = [
    "BUILTIN_MODEL",
    "GenerationRequest",
    "Mode",
    "TilePlan",
    "Loading",
    "Started",
    "Progress",
    "Finished",
    "Cancelled",
    "Failed",
    "EngineEvent",
    "CancelToken",
    "Engine",
]


@dataclass(frozen=True)
class Loading:
    """Before the first step: the model is being loaded or the inputs prepared. ``fraction`` 0..1 of
    that preparation, ``stage`` a short text for a person ("loading model builtin")."""

    request_id: int
    stage: str
    fraction: float


@dataclass(frozen=True)
class Started:
    request_id: int
    total_steps: int
    tiles: int


@dataclass(frozen=True)
class Progress:
    """One denoising step. ``preview`` is an RGB uint8 image of the predicted clean image for the
    tile ``tile`` (index into the tile plan), at latent resolution; ``tile_box`` is (x, y, w, h) of
    that tile in output pixels. ``preview`` may be None when previews are throttled. A two-pass run
    (compose, then refine: ``engine.two_pass``) counts ``step``/``total`` in tile-steps (one UNet
    call on one tile), since its steps differ in cost; step / total is the share of work done."""

    request_id: int
    step: int
    total: int
    tile: int
    tile_box: tuple[int, int, int, int]
    preview: np.ndarray | None = None


@dataclass(frozen=True)
class Finished:
    """``candidates``: one decoded RGB uint8 crop per batch item (the request's full size; not
    composited: core does that at accept). ``seeds``: the seed of each candidate."""

    request_id: int
    candidates: list[np.ndarray]
    seeds: list[int]
    request: GenerationRequest | None = None
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cancelled:
    request_id: int
    step: int


@dataclass(frozen=True)
class Failed:
    request_id: int
    message: str


EngineEvent = Loading | Started | Progress | Finished | Cancelled | Failed


class CancelToken:
    """A flag set from any thread; the engine checks it every step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Engine(Protocol):
    """Runs requests one at a time. ``generate`` is called off the GUI thread and blocks until the
    run ends; it reports through ``emit`` and never raises for a failed run (it emits Failed)."""

    def generate(
        self,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        cancel: CancelToken,
        request_id: int = 0,
    ) -> None: ...

    def describe_device(self) -> str: ...

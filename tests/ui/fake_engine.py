"""A fast engine for UI tests: real threads, real events, no model.

It paints a gradient tinted by the seed, reports loading on its first run (``load_gate`` holds it
there), streams one preview per step and tile, honours the cancel token between steps and returns
the whole crop, like the real engine (core composites it at accept).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    EngineEvent,
    Failed,
    Finished,
    GenerationRequest,
    Loading,
    Progress,
    Started,
)
from canvas_app.engine.compiling import COMPILING_STAGE


def fake_image(request: GenerationRequest, seed: int) -> np.ndarray:
    h, w = request.height, request.width
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (base[0] + xx * 40 // max(w, 1)) % 256
    img[..., 1] = (base[1] + yy * 40 // max(h, 1)) % 256
    img[..., 2] = base[2]
    return img


@dataclass(frozen=True)
class FakeSettings:
    """The part of the real engine's settings the window changes while it runs."""

    preview_interval_s: float = 0.1


class FakeEngine:
    """Implements the ``Engine`` protocol. ``step_delay`` seconds per step; ``fail_with`` makes every
    run fail with that message; ``gate`` (an Event) holds each run before its first step."""

    def __init__(self, step_delay: float = 0.01, tile_size: int = 128, device: str = "") -> None:
        self.step_delay = step_delay
        self.device = device
        self.settings = FakeSettings()
        self.tile_size = tile_size
        self.fail_with = ""
        self.gate: threading.Event | None = None
        self.load_gate: threading.Event | None = None
        # Set: runs say "Compiling (first run)..." as the real engine does with --compile, and wait on it.
        self.compile_gate: threading.Event | None = None
        self.model_loaded = False
        self.requests: list[GenerationRequest] = []
        self.loaded: list[str] = []

    def describe_device(self) -> str:
        return f"fake {self.device.upper() or 'CPU'}"

    def load(self, model: str, inpaint: bool = False, loras: tuple = ()) -> None:
        time.sleep(self.step_delay)
        if model.startswith("missing"):
            raise FileNotFoundError(f"no model at {model}")
        self.loaded.append(model)

    def _tiles(self, request: GenerationRequest) -> list[tuple[int, int, int, int]]:
        t = self.tile_size
        return [
            (x, y, min(t, request.width - x), min(t, request.height - y))
            for y in range(0, request.height, t)
            for x in range(0, request.width, t)
        ]

    def generate(
        self,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        cancel: CancelToken,
        request_id: int = 0,
    ) -> None:
        self.requests.append(request)
        if self.fail_with:
            emit(Failed(request_id, self.fail_with))
            return
        if not self.model_loaded:
            emit(Loading(request_id, f"loading model {request.model}", 0.0))
            if self.load_gate is not None:
                self.load_gate.wait(5)
            emit(Loading(request_id, "preparing the inputs", 0.9))
            self.model_loaded = True
        if self.compile_gate is not None:
            emit(Loading(request_id, COMPILING_STAGE, 0.95))
            self.compile_gate.wait(5)
        tiles = self._tiles(request)
        emit(Started(request_id, request.steps, len(tiles)))
        if self.gate is not None:
            self.gate.wait(5)
        seeds = [request.seed + i for i in range(request.batch)]
        first = fake_image(request, seeds[0])
        for step in range(request.steps):
            if cancel.cancelled:
                emit(Cancelled(request_id, step))
                return
            for index, (x, y, w, h) in enumerate(tiles):
                preview = (first[y : y + h : 4, x : x + w : 4] * ((step + 1) / request.steps)).astype(
                    np.uint8
                )
                emit(Progress(request_id, step + 1, request.steps, index, (x, y, w, h), preview))
            time.sleep(self.step_delay)
        candidates = [fake_image(request, seed) for seed in seeds]
        emit(Finished(request_id, candidates, seeds, request))

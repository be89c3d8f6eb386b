"""Determinism by seed, batches, previews for every step and tile, cancel within a step, tiles."""

from __future__ import annotations

import numpy as np
from conftest import run

from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Finished,
    GenerationRequest,
    Progress,
    Started,
    TilePlan,
)
from canvas_app.engine.local import LocalDiffusersEngine


def test_same_request_same_pixels(engine, sd8: str) -> None:
    request = GenerationRequest(prompt="a cat", model=sd8, width=64, height=64, steps=3, seed=11)
    first = run(engine, request)[-1].candidates[0]
    second = run(engine, request)[-1].candidates[0]
    other = run(engine, request.with_changes(seed=12))[-1].candidates[0]
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_batch_candidates_use_consecutive_seeds(engine, sd8: str) -> None:
    request = GenerationRequest(prompt="a cat", model=sd8, width=64, height=64, steps=2, seed=40, batch=3)
    finished = run(engine, request)[-1]
    assert finished.seeds == [40, 41, 42]
    alone = run(engine, request.with_changes(seed=41, batch=1))[-1].candidates[0]
    assert np.array_equal(finished.candidates[1], alone)


def test_previews_every_step_and_tile(engine, sd4: str) -> None:
    # 160 x 96 at native 64 px, overlap 16 px: a 3 x 2 grid of tiles.
    request = GenerationRequest(
        prompt="a sky",
        model=sd4,
        width=160,
        height=96,
        steps=3,
        seed=1,
        tile_plan=TilePlan(overlap=16),
        large_frame="tiled",
    )
    events = run(engine, request)
    started = next(e for e in events if isinstance(e, Started))
    assert started.tiles == 6
    progress = [e for e in events if isinstance(e, Progress)]
    assert {(e.step, e.tile) for e in progress} == {(s, t) for s in (1, 2, 3) for t in range(6)}
    for event in progress:
        x, y, w, h = event.tile_box
        assert event.preview is not None
        assert event.preview.shape == (h // 4, w // 4, 3) and event.preview.dtype == np.uint8
        assert 0 <= x and x + w <= 160 and 0 <= y and y + h <= 96
    boxes = {e.tile_box for e in progress}
    covered = np.zeros((96, 160), bool)
    for x, y, w, h in boxes:
        covered[y : y + h, x : x + w] = True
    assert covered.all()
    assert isinstance(events[-1], Finished) and events[-1].candidates[0].shape == (96, 160, 3)


def test_previews_are_throttled(sd4: str) -> None:
    engine = LocalDiffusersEngine(device="cpu", preview_interval_s=3600.0)
    events = run(engine, GenerationRequest(model=sd4, width=64, height=64, steps=4))
    previews = [e.preview for e in events if isinstance(e, Progress)]
    assert len(previews) == 4
    assert previews[0] is not None and all(p is None for p in previews[1:])


def test_cancel_at_step_k_stops_by_k_plus_1_and_engine_stays_ready(engine, sd8: str) -> None:
    request = GenerationRequest(model=sd8, width=64, height=64, steps=6, seed=3)
    for k in (1, 4):
        token = CancelToken()

        def on_event(event, k=k, token=token):
            if isinstance(event, Progress) and event.step == k:
                token.cancel()

        events = run(engine, request, token, on_event)
        last = events[-1]
        assert isinstance(last, Cancelled), last
        assert max(e.step for e in events if isinstance(e, Progress)) <= k + 1
        assert last.step <= k + 1
    assert isinstance(run(engine, request)[-1], Finished)


def test_tiled_run_matches_single_tile_when_one_tile_covers_all(engine, sd8: str) -> None:
    request = GenerationRequest(model=sd8, width=128, height=64, steps=2, seed=9, large_frame="tiled")
    single = run(engine, request.with_changes(tile_plan=TilePlan(tile_size=128)))
    assert single[0].tiles == 1
    again = run(engine, request.with_changes(tile_plan=TilePlan(tile_size=128)))
    assert np.array_equal(single[-1].candidates[0], again[-1].candidates[0])
    tiled = run(engine, request)
    assert tiled[0].tiles > 1
    assert tiled[-1].candidates[0].shape == single[-1].candidates[0].shape


def test_wide_panorama_runs_in_tiles(engine, sd4: str) -> None:
    # 4x the native width, one pass (the artist's choice for a panorama).
    request = GenerationRequest(model=sd4, width=256, height=64, steps=2, seed=2, large_frame="tiled")
    events = run(engine, request)
    assert next(e for e in events if isinstance(e, Started)).tiles >= 4
    assert events[-1].candidates[0].shape == (64, 256, 3)

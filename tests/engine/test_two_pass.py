"""Compose, then refine: a frame larger than the native area runs in two passes (real engine, tiny
random models at 64 px native, and the built-in model)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run

from canvas_app.core.composite import composite
from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Finished,
    GenerationRequest,
    Loading,
    Mode,
    Progress,
    Started,
)
from canvas_app.engine.two_pass import compose_size, resize_mask


def test_compose_size_keeps_aspect_at_native_area() -> None:
    assert compose_size(256, 256, 128, 4) == (128, 128)
    assert compose_size(512, 256, 128, 4) == (184, 88)  # ~ 128^2, 2:1, on the 8 px grid
    assert compose_size(128, 128, 128, 4) is None  # fits: one pass
    # A native frame's inpaint crop with its 32 px context: one pass, not composed at lower resolution.
    assert compose_size(192, 192, 128, 4) is None
    assert compose_size(160, 64, 128, 4) is None  # wider than native but no larger in area


def test_compose_size_of_panoramas_keeps_half_native_height() -> None:
    assert compose_size(512, 128, 128, 4) == (256, 64)  # 4:1 at native area is exactly half-native tall
    assert compose_size(1024, 128, 128, 4) == (512, 64)  # 8:1: half-native tall, composed in tiles
    assert compose_size(2048, 2048, 512, 8) == (512, 512)


def test_mask_downscale_keeps_thin_strokes() -> None:
    mask = np.zeros((256, 256), np.uint8)
    mask[100, 10:200] = 255  # one pixel tall
    assert resize_mask(mask, (128, 128)).any(axis=1).sum() >= 1


def _steps(events: list) -> list[int]:
    return [e.step for e in events if isinstance(e, Progress)]


def test_txt2img_two_pass_counts_both_passes_and_previews_both(engine, sd4: str) -> None:
    request = GenerationRequest(prompt="a sky", model=sd4, width=128, height=128, steps=4, seed=3)
    events = [e for e in run(engine, request) if not isinstance(e, Loading)]
    started = events[0]
    assert isinstance(started, Started)
    # Counted in tile-steps: pass 1 is 4 steps at 64x64 (one tile), pass 2 round(4 * 0.4) = 2 steps
    # over the 9 tiles of 128x128: 4 + 18. Every progress event is one UNet call on one tile, so
    # step / total is the share of the work done (what the time-left estimate needs).
    assert started.total_steps == 22 and started.tiles == 9
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.step for e in progress] == list(range(1, 23))
    assert all(e.total == 22 and e.request_id == 0 for e in progress)
    first = [e for e in progress if e.step <= 4]
    second = [e for e in progress if e.step > 4]
    # Pass 1 previews the whole composition (64 px -> 16 latent cells), boxed over the full frame.
    assert {e.tile_box for e in first} == {(0, 0, 128, 128)}
    assert all(e.preview is not None and e.preview.shape == (16, 16, 3) for e in first)
    assert len({e.tile for e in second}) == 9 and all(e.preview is not None for e in second)
    finished = events[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    assert finished.candidates[0].shape == (128, 128, 3) and finished.request is request


def test_two_pass_batch_seeds_and_determinism(engine, sd4: str) -> None:
    request = GenerationRequest(prompt="a sky", model=sd4, width=128, height=96, steps=3, seed=7, batch=2)
    a, b = run(engine, request)[-1], run(engine, request)[-1]
    assert isinstance(a, Finished) and a.seeds == [7, 8]
    assert [c.shape for c in a.candidates] == [(96, 128, 3)] * 2
    assert all(np.array_equal(x, y) for x, y in zip(a.candidates, b.candidates, strict=True))
    assert not np.array_equal(a.candidates[0], a.candidates[1])


def test_one_pass_tiling_is_still_there_per_request(engine, sd4: str) -> None:
    request = GenerationRequest(
        prompt="a sky", model=sd4, width=128, height=128, steps=4, seed=3, large_frame="tiled"
    )
    events = run(engine, request)
    started = next(e for e in events if isinstance(e, Started))
    assert started.total_steps == 4 and started.tiles == 9
    progress = [e for e in events if isinstance(e, Progress)]
    assert all(e.tile_box[2] == 64 for e in progress)  # never a composition preview
    assert events[-1].candidates[0].shape == (128, 128, 3)


def test_refine_strength_sets_the_second_pass_and_is_checked(engine, sd4: str) -> None:
    request = GenerationRequest(model=sd4, width=128, height=128, steps=10, seed=1, refine_strength=0.2)
    # 10 one-tile steps, then round(10 * 0.2) = 2 steps of 9 tiles.
    assert next(e for e in run(engine, request) if isinstance(e, Started)).total_steps == 10 + 2 * 9
    bad = run(engine, request.with_changes(refine_strength=0.0))[-1]
    assert "strength" in getattr(bad, "message", "")
    with pytest.raises(ValueError, match="large_frame"):
        GenerationRequest(large_frame="sideways")


def test_cancel_in_the_refining_pass_stops_within_a_step(engine, sd4: str) -> None:
    request = GenerationRequest(model=sd4, width=128, height=128, steps=4, seed=3, refine_strength=0.75)
    token = CancelToken()
    k = 5  # the first tile of pass 2's first step (pass 1 is 4 one-tile steps)
    seen: list[Progress] = []

    def on_event(event):
        if isinstance(event, Progress):
            seen.append(event)
            if event.step == k and event.tile == 0:
                token.cancel()

    events = run(engine, request, token, on_event)
    last = events[-1]
    assert isinstance(last, Cancelled), last
    # Cancelled after the first tile of step k: no other tile of that step ran.
    assert [(e.step, e.tile) for e in seen if e.step >= k] == [(k, 0)]
    assert last.step >= 4  # counted across both passes
    assert isinstance(run(engine, request)[-1], Finished)  # and the engine is ready again


@pytest.mark.parametrize("fixture", ["inpaint4", "sd4"])
def test_inpaint_two_pass_keeps_unmasked_pixels_bit_exact(engine, request, fixture: str) -> None:
    model = request.getfixturevalue(fixture)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)
    mask = np.zeros((128, 160), np.uint8)
    mask[40:90, 50:120] = 255
    req = GenerationRequest(
        prompt="a red cat",
        mode=Mode.INPAINT,
        model=model,
        width=160,
        height=128,
        steps=3,
        seed=2,
        init_image=image,
        mask=mask,
        strength=1.0,
    )
    events = run(engine, req)
    finished = events[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    # Pass 1 ran at 72x56, its boxes scaled up to the full frame (wider than a 64 px tile).
    assert any(e.tile_box[2] > 64 for e in events if isinstance(e, Progress))
    current = np.dstack([image, np.full((128, 160), 255, np.uint8)])
    out, alpha = composite(current, finished.candidates[0], mask, req.feather)
    assert np.array_equal(out[alpha == 0], current[alpha == 0])
    assert not np.array_equal(out[mask == 255], current[mask == 255])


def test_outpaint_two_pass_fills_the_empty_side(engine, sd4: str) -> None:
    rng = np.random.default_rng(1)
    init = np.dstack([rng.integers(0, 256, (96, 160, 3), dtype=np.uint8), np.full((96, 160), 255, np.uint8)])
    init[:, 96:, 3] = 0
    req = GenerationRequest(
        prompt="a sky", mode=Mode.OUTPAINT, model=sd4, width=160, height=96, steps=3, seed=4, init_image=init
    )
    finished = run(engine, req)[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    out, alpha = composite(
        init, finished.candidates[0], (init[..., 3] == 0).astype(np.uint8) * 255, req.feather
    )
    assert (out[:, 100:, 3] == 255).all()  # the empty side is painted
    assert np.array_equal(out[alpha == 0], init[alpha == 0])


def test_builtin_two_pass_256(engine) -> None:
    request = GenerationRequest(prompt="green hills under a blue sky", width=256, height=256, steps=6, seed=1)
    events = run(engine, request)
    finished = events[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    assert finished.candidates[0].shape == (256, 256, 3)
    assert finished.candidates[0].std() > 5


@pytest.mark.parametrize("fixture", ["inpaint4", "sd4"])
def test_two_pass_outpaint_and_inpaint_through_plan_and_accept(engine, request, fixture: str) -> None:
    """The app's own path (plan_frame -> engine -> accept_candidate) on a frame larger than the
    native area: outside the feathered regenerated area nothing moves, empty canvas stays empty."""
    from canvas_app.core.composite import accept_candidate, feather_alpha
    from canvas_app.core.document import Document
    from canvas_app.core.frame_plan import plan_frame

    model = request.getfixturevalue(fixture)
    doc = Document()
    rng = np.random.default_rng(5)
    doc.paste(
        0, 0, np.dstack([rng.integers(0, 256, (96, 64, 3), dtype=np.uint8), np.full((96, 64), 255, np.uint8)])
    )
    view = (-32, -32, 192, 160)
    frame = doc.add_frame(x=0, y=0, w=128, h=96, prompt="a tree", steps=2, model=model)  # half empty
    for step in ("outpaint", "inpaint"):
        if step == "inpaint":
            doc.fill_mask(16, 24, 24, 24)
        before = doc.image.read(*view)
        plan = plan_frame(doc, frame, seed=3)
        assert plan.mode.value == step
        req = plan.request(frame)
        events = run(engine, req)
        finished = events[-1]
        assert isinstance(finished, Finished), getattr(finished, "message", finished)
        assert any(e.tile_box[2] > 64 for e in events if isinstance(e, Progress))  # composed first
        accept_candidate(doc, frame.id, frame.rect, req, finished.candidates[0], finished.seeds[0])
        after = doc.image.read(*view)
        alpha = np.zeros(after.shape[:2], np.uint8)
        cx, cy = req.origin[0] - view[0], req.origin[1] - view[1]
        alpha[cy : cy + req.height, cx : cx + req.width] = feather_alpha(req.mask, req.feather)
        assert np.array_equal(after[alpha == 0], before[alpha == 0])
        assert (after[:32, :, 3] == 0).all() and (after[:, :32, 3] == 0).all()  # context stays empty
        assert (after[32:128, 32:160, 3] == 255).all()  # the frame is filled


def test_the_composing_pass_sees_regions_at_its_own_scale() -> None:
    from canvas_app.core.regions import Region
    from canvas_app.engine.two_pass import compose_request

    house = Region(x=0, y=0, w=128, h=256, prompt="a red house")
    sun = Region(x=384, y=64, w=128, h=64, prompt="a yellow sun")
    request = GenerationRequest(prompt="blue sky", width=512, height=256, regions=(house, sun))
    composed = compose_request(request, (184, 88))
    assert composed.width == 184 and composed.height == 88
    left, right = composed.regions
    assert (left.x, left.w, left.h) == (0, 46, 88) and left.prompt == "a red house"
    assert (right.x, right.y, right.w, right.h) == (138, 22, 46, 22)

"""Regional prompts through the real pipelines: one run, prompts blended by their soft weights."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, run

from canvas_app.core.regions import Region, encode_mask
from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Finished,
    GenerationRequest,
    Mode,
    Progress,
    Started,
    TilePlan,
)


def _request(model: str, mode: Mode = Mode.TXT2IMG, w: int = 64, h: int = 64, **kw) -> GenerationRequest:
    init = mask = None
    if mode is not Mode.TXT2IMG:
        init = photo(w, h)
    if mode is Mode.INPAINT:
        mask = np.zeros((h, w), np.uint8)
        mask[8:56, 8:56] = 255
    if mode is Mode.OUTPAINT:
        init = np.dstack([init, np.full((h, w), 255, np.uint8)])
        init[:, w // 2 :, 3] = 0
    base = dict(
        prompt="blue sky",
        mode=mode,
        width=w,
        height=h,
        steps=3,
        seed=7,
        model=model,
        init_image=init,
        mask=mask,
        strength=0.8,
    )
    base.update(kw)
    return GenerationRequest(**base)


def _image(events) -> np.ndarray:
    finished = events[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    return finished.candidates[0].astype(np.float32)


LEFT = Region(0, 0, 24, 64, prompt="a red house")
RIGHT = Region(40, 0, 24, 64, prompt="a cat", negative_prompt="dog")


@pytest.mark.parametrize("name", ["sd8", "sd4", "sdxl4", "inpaint4"])
@pytest.mark.parametrize("mode", [Mode.TXT2IMG, Mode.INPAINT, Mode.OUTPAINT])
def test_regions_run_in_every_mode_and_model(request, engine, name: str, mode: Mode) -> None:
    model = request.getfixturevalue(name)
    plain = _image(run(engine, _request(model, mode)))
    regional = _image(run(engine, _request(model, mode, regions=(LEFT, RIGHT))))
    assert regional.shape == plain.shape
    assert np.abs(regional - plain).mean() > 0.05  # the regions' prompts changed the picture


@pytest.mark.parametrize("name", ["sd4", "sdxl4"])
def test_a_region_with_the_background_prompt_changes_nothing(request, engine, name: str) -> None:
    # The blend is a convex combination: identical predictions blend to the same prediction.
    model = request.getfixturevalue(name)
    plain = _image(run(engine, _request(model)))
    same = Region(8, 8, 32, 32, prompt="")  # reads the frame's prompt alone
    regional = _image(run(engine, _request(model, regions=(same,))))
    assert np.abs(regional - plain).max() <= 1.0


def test_a_region_changes_mostly_its_own_box(engine, sd4: str) -> None:
    # One step: the change of the prediction is confined to the region's softened box; the decoder
    # spreads it by a few pixels only.
    plain = _image(run(engine, _request(sd4, w=128, steps=1)))
    box = Region(0, 0, 40, 64, prompt="a red house")
    regional = _image(run(engine, _request(sd4, w=128, steps=1, regions=(box,))))
    diff = np.abs(regional - plain).mean(axis=2)
    inside, far = diff[:, :32].mean(), diff[:, 72:].mean()
    assert inside > 5 * far, (inside, far)


def test_a_hidden_region_is_not_sent_and_a_painted_mask_shapes_the_region(engine, sd4: str) -> None:
    painted = np.zeros((32, 32), np.uint8)
    painted[:, :16] = 255  # only the left half of the box
    masked = Region(32, 0, 32, 64, prompt="a red house", mask_png=encode_mask(painted))
    box = Region(32, 0, 32, 64, prompt="a red house")
    plain = _image(run(engine, _request(sd4, w=128, steps=1)))
    # Blended predictions keep a painted edge to the pixel; masked attention only to the resolution
    # of the attention layers (docs/benchmarks.md, regions), too coarse for this 16 px half-box.
    kw = dict(w=128, steps=1, regions_method="multidiffusion")
    with_mask = _image(run(engine, _request(sd4, regions=(masked,), **kw)))
    with_box = _image(run(engine, _request(sd4, regions=(box,), **kw)))
    # Right half of the box (x 48..64): the box changes it, the painted mask (mostly) does not.
    changed_box = np.abs(with_box - plain)[:, 52:60].mean()
    changed_mask = np.abs(with_mask - plain)[:, 52:60].mean()
    assert changed_mask < 0.5 * changed_box, (changed_mask, changed_box)


def test_regions_across_tiles_blend_without_changing_the_tile_plan(engine, sd4: str) -> None:
    # 128 px wide on a 64 px model: two or three tiles; a region spans the seam.
    kw = dict(w=128, tile_plan=TilePlan(64, 32))
    plain_events = run(engine, _request(sd4, **kw))
    same = Region(40, 0, 48, 64, prompt="")
    same_events = run(engine, _request(sd4, regions=(same,), **kw))
    assert np.abs(_image(same_events) - _image(plain_events)).max() <= 1.0
    started = [e for e in same_events if isinstance(e, Started)][0]
    assert started.tiles > 1
    tiles = {e.tile for e in same_events if isinstance(e, Progress)}
    assert tiles == set(range(started.tiles))
    other = _image(run(engine, _request(sd4, regions=(Region(40, 0, 48, 64, prompt="a red cat"),), **kw)))
    assert np.abs(other - _image(plain_events)).mean() > 0.05


def test_prompts_share_one_unet_call_per_tile_and_step(engine, sd4: str) -> None:
    model = engine.load(sd4)
    sizes: list[int] = []
    handle = model.unet.register_forward_pre_hook(lambda _m, args: sizes.append(int(args[0].shape[0])))
    try:
        _image(run(engine, _request(sd4, steps=2, regions=(LEFT, RIGHT), regions_method="multidiffusion")))
    finally:
        handle.remove()
    # Per step one call: shared negative, the region's own negative, background, two regions.
    assert sizes == [5, 5]


def test_cancel_during_a_regional_run(engine, sd4: str) -> None:
    cancel = CancelToken()

    def on_event(event) -> None:
        if isinstance(event, Progress) and event.step == 2:
            cancel.cancel()

    events = run(engine, _request(sd4, steps=6, regions=(LEFT,)), cancel, on_event)
    assert isinstance(events[-1], Cancelled) and events[-1].step <= 3
    assert isinstance(run(engine, _request(sd4, regions=(LEFT,)))[-1], Finished)


def test_previews_show_the_regional_prediction(engine, sd4: str) -> None:
    events = run(engine, _request(sd4, regions=(LEFT, RIGHT)))
    previews = [e.preview for e in events if isinstance(e, Progress) and e.preview is not None]
    assert previews and previews[-1].shape[2] == 3


def test_builtin_model_paints_the_regions_where_they_are(engine) -> None:
    from canvas_app.engine.models import builtin_model_dir

    if not (builtin_model_dir() / "model_index.json").is_file():
        pytest.skip("the built-in model is not installed")
    # 256x128: two tiles of the 128 px model; a region over the left half, one step to keep it quick.
    kw = dict(prompt="blue sky, green hills", width=256, height=128, steps=2, seed=1, model="builtin")
    plain = _image(run(engine, GenerationRequest(**kw)))
    regional = _image(
        run(engine, GenerationRequest(regions=(Region(0, 0, 96, 128, prompt="a red house"),), **kw))
    )
    diff = np.abs(regional - plain).mean(axis=2)
    assert diff[:, :80].mean() > 2 * diff[:, 176:].mean()

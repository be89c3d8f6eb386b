"""Each mode runs end to end through the real pipelines, on both VAE factors and both UNet kinds."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, run

from canvas_app.engine.api import (
    Cancelled,
    Failed,
    Finished,
    GenerationRequest,
    Loading,
    Mode,
    Progress,
    Started,
)


@pytest.fixture(params=["sd8", "sd4", "inpaint4"])
def model(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(request.param)


def _request(model: str, mode: Mode, **kw) -> GenerationRequest:
    w, h = 64, 64
    image = photo(w, h)
    init = mask = None
    if mode is not Mode.TXT2IMG:
        init = image
    if mode is Mode.INPAINT:
        mask = np.zeros((h, w), np.uint8)
        mask[16:40, 20:44] = 255
    if mode is Mode.OUTPAINT:
        init = np.dstack([image, np.full((h, w), 255, np.uint8)])
        init[:, 40:, 3] = 0
    base = dict(
        prompt="a red cat",
        mode=mode,
        width=w,
        height=h,
        steps=3,
        seed=5,
        model=model,
        init_image=init,
        mask=mask,
        strength=0.8,
    )
    base.update(kw)
    return GenerationRequest(**base)


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_runs_and_reports(engine, model: str, mode: Mode) -> None:
    request = _request(model, mode)
    events = [e for e in run(engine, request) if not isinstance(e, Loading)]
    assert isinstance(events[0], Started), events
    finished = events[-1]
    assert isinstance(finished, Finished), getattr(finished, "message", finished)
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == sorted(steps) and steps[-1] == events[0].total_steps
    (image,) = finished.candidates
    # The decoded crop only: compositing over the document is core's job, at accept.
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert finished.seeds == [5]
    if mode in (Mode.INPAINT, Mode.OUTPAINT):
        assert not np.array_equal(image[..., :3], request.init_image[..., :3])


def test_the_first_run_reports_loading_the_model(sd4: str) -> None:
    from canvas_app.engine.local import LocalDiffusersEngine

    fresh = LocalDiffusersEngine(device="cpu", previews=False)
    request = _request(sd4, Mode.TXT2IMG, steps=1)
    first = run(fresh, request)
    loading = [e for e in first if isinstance(e, Loading)]
    assert loading and "loading model" in loading[0].stage and loading[-1].fraction > loading[0].fraction
    assert first.index(loading[-1]) < next(i for i, e in enumerate(first) if isinstance(e, Started))
    assert not any(isinstance(e, Loading) for e in run(fresh, request))  # already loaded


def test_img2img_strength_controls_change(engine, sd4: str) -> None:
    low = run(engine, _request(sd4, Mode.IMG2IMG, strength=0.1, steps=10))[-1].candidates[0]
    high = run(engine, _request(sd4, Mode.IMG2IMG, strength=1.0, steps=10))[-1].candidates[0]
    init = photo(64, 64).astype(int)
    assert np.abs(low.astype(int) - init).mean() < np.abs(high.astype(int) - init).mean()


def test_bad_requests_fail_with_a_message(engine, sd8: str) -> None:
    for request, words in [
        (GenerationRequest(model=sd8, width=60, height=64), "multiple of 8"),
        (GenerationRequest(model=sd8, scheduler="Heun++"), "unknown scheduler"),
        (GenerationRequest(model=sd8, mode=Mode.IMG2IMG), "init image"),
        (_request(sd8, Mode.INPAINT, mask=np.zeros((32, 32), np.uint8)), "mask"),
        (GenerationRequest(model="/does/not/exist"), "not found"),
    ]:
        events = run(engine, request)
        assert len(events) == 1 and isinstance(events[0], Failed), events
        assert words in events[0].message


def test_factor_4_sizes_need_multiples_of_8_only(engine, sd4: str) -> None:
    events = run(engine, GenerationRequest(model=sd4, width=72, height=40, steps=2))
    assert isinstance(events[-1], Finished)
    assert events[-1].candidates[0].shape == (40, 72, 3)


def test_exception_inside_diffusers_becomes_failed_and_engine_recovers(engine, models_dir, sd8: str) -> None:
    import json
    import shutil

    broken = models_dir / "broken"
    if not broken.exists():
        shutil.copytree(sd8, broken)
        # A UNet whose cross-attention width does not match the text encoder: fails mid-run.
        config = json.loads((broken / "unet" / "config.json").read_text())
        config["cross_attention_dim"] = 48
        (broken / "unet" / "config.json").write_text(json.dumps(config))
    events = run(engine, GenerationRequest(model=str(broken), width=64, height=64, steps=2))
    assert isinstance(events[-1], Failed)
    assert events[-1].message
    again = run(engine, GenerationRequest(model=sd8, width=64, height=64, steps=2))
    assert isinstance(again[-1], Finished)
    assert not any(isinstance(e, Cancelled) for e in again)


def test_out_of_memory_says_so(engine) -> None:
    import torch

    message = engine._describe_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert "out of memory" in message and "smaller" in message

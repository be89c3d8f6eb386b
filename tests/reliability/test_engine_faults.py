"""Bad requests and faults inside a run: each ends in exactly one Failed / Cancelled / Finished,
with a message a person can act on, and the engine runs the next request normally.

Faults are injected into the real pipeline of a tiny random model with forward hooks: an
exception, an out-of-memory error, NaN latents from the UNet or the VAE."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from canvas_app.engine.api import (
    Cancelled,
    CancelToken,
    Failed,
    Finished,
    GenerationRequest,
    Progress,
)

TERMINAL = (Finished, Cancelled, Failed)


def run(engine, request: GenerationRequest, cancel_at: int | None = None) -> list:
    events: list = []
    token = CancelToken()

    def emit(event) -> None:  # type: ignore[no-untyped-def]
        events.append(event)
        if cancel_at is not None and isinstance(event, Progress) and event.step >= cancel_at:
            token.cancel()

    engine.generate(request, emit, token)
    assert sum(isinstance(e, TERMINAL) for e in events) == 1 and isinstance(events[-1], TERMINAL), events
    return events


def small(tiny_sd: str, **changes) -> GenerationRequest:  # type: ignore[no-untyped-def]
    base = GenerationRequest(prompt="a red house", model=tiny_sd, width=64, height=64, steps=3, seed=5)
    return base.with_changes(**changes)


def assert_still_works(engine, tiny_sd: str) -> np.ndarray:
    events = run(engine, small(tiny_sd))
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1].candidates[0]


# -- requests -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"width": 60}, "multiple of 8"),
        ({"height": 65}, "multiple of 8"),
        ({"width": 0}, "positive multiple of 8"),
        ({"height": -64}, "positive multiple of 8"),
        ({"width": 16392}, "too large"),
        ({"width": 8 * 10**9, "height": 8 * 10**9}, "too large"),
        ({"width": 68}, "multiple of 8"),
        ({"steps": 0}, "steps"),
        ({"batch": 0}, "batch"),
        ({"scheduler": "no such sampler"}, "scheduler|sampler"),
    ],
)
def test_bad_requests_fail_before_any_work(engine, tiny_sd: str, changes: dict, message: str) -> None:
    events = run(engine, small(tiny_sd, **changes))
    assert [type(e) for e in events] == [Failed]
    assert re.search(message, events[0].message), events[0].message


@pytest.mark.parametrize(
    "prompt",
    ["", "   ", "猫と赤い家 🏠 — ça va? Ünïcødé", "a\x00b\x1b[31mred\u202e", "cat " * 500],
    ids=["empty", "spaces", "non-ascii", "control chars", "very long"],
)
def test_prompts_of_every_kind_run(engine, tiny_sd: str, prompt: str) -> None:
    events = run(engine, small(tiny_sd, prompt=prompt, negative_prompt=prompt))
    assert isinstance(events[-1], Finished), events[-1]
    notices = events[-1].notices
    tokenizer = engine.load(tiny_sd).pipe.tokenizer
    limit = tokenizer.model_max_length  # the tiny model reads 32 tokens (its words, else characters)
    too_long = len(tokenizer(prompt, truncation=False).input_ids) > limit
    assert any("the prompt is" in n and f"first {limit}" in n for n in notices) == too_long, notices
    assert any("negative prompt is" in n for n in notices) == too_long, notices
    if prompt.startswith("cat cat") or prompt.strip() == "":
        assert too_long == prompt.startswith("cat cat")


def test_long_prompt_is_truncated_not_refused(engine, tiny_sd: str) -> None:
    # The encoder reads the first tokens up to its limit (start and end tokens included): the
    # result of a long prompt equals that of the part it reads.
    limit = engine.load(tiny_sd).pipe.tokenizer.model_max_length
    long = run(engine, small(tiny_sd, prompt="red " * (limit - 2) + "blue " * 60))[-1]
    cut = run(engine, small(tiny_sd, prompt="red " * (limit - 2)))[-1]
    assert any("tokens long" in n for n in long.notices)
    assert not any("tokens long" in n for n in cut.notices)
    assert np.array_equal(long.candidates[0], cut.candidates[0])


# -- faults inside the run ------------------------------------------------------------------------
class Fault:
    """A forward hook on a module of the loaded model that misbehaves from its ``after``-th call."""

    def __init__(self, engine, model: str, part: str, action, after: int = 0) -> None:  # type: ignore[no-untyped-def]
        loaded = engine.load(model)
        module = getattr(loaded.pipe, part) if part != "vae.decoder" else loaded.pipe.vae.decoder
        self.calls = 0
        self.after = after
        self.action = action
        self.handle = module.register_forward_hook(self.hook)

    def hook(self, _module, _inputs, output):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls > self.after:
            return self.action(output)
        return output

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.handle.remove()


def raise_(error: BaseException):  # type: ignore[no-untyped-def]
    def action(_output):  # type: ignore[no-untyped-def]
        raise error

    return action


def nan_sample(output):  # type: ignore[no-untyped-def]
    if hasattr(output, "sample"):
        output.sample.fill_(float("nan"))
        return output
    if isinstance(output, tuple):
        output[0].fill_(float("nan"))
        return output
    return output * float("nan")


@pytest.mark.parametrize("after", [0, 2])
def test_exception_inside_the_pipeline(engine, tiny_sd: str, after: int) -> None:
    with Fault(
        engine, tiny_sd, "unet", raise_(RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")), after
    ):
        events = run(engine, small(tiny_sd))
    assert isinstance(events[-1], Failed)
    assert "RuntimeError: cuDNN error" in events[-1].message
    assert_still_works(engine, tiny_sd)


def test_out_of_memory_frees_the_model_and_says_what_to_do(engine, tiny_sd: str) -> None:
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    with Fault(engine, tiny_sd, "unet", raise_(oom), after=1):
        events = run(engine, small(tiny_sd))
    assert isinstance(events[-1], Failed)
    assert "out of memory" in events[-1].message and "smaller frame" in events[-1].message
    assert engine._cache.current is None  # the model was released to give memory back
    assert_still_works(engine, tiny_sd)  # and is loaded again for the next run


@pytest.mark.parametrize(("part", "after"), [("unet", 1), ("vae.decoder", 0)])
def test_nan_is_detected_reported_and_not_pasted(engine, tiny_sd: str, part: str, after: int) -> None:
    init = np.full((64, 64, 4), 90, np.uint8)
    init[:, 32:, 3] = 0  # the right half is empty: an outpaint whose result would be pasted
    request = small(tiny_sd, mode="outpaint", init_image=init)
    with Fault(engine, tiny_sd, part, nan_sample, after=after):
        events = run(engine, request)
    assert isinstance(events[-1], Failed), events[-1]
    assert "NaN" in events[-1].message and "no result" in events[-1].message
    assert not any(isinstance(e, Finished) for e in events)
    assert_still_works(engine, tiny_sd)


def test_cancel_at_every_step(engine, tiny_sd: str) -> None:
    steps = 4
    reference = run(engine, small(tiny_sd, steps=steps))[-1]
    for k in range(steps):
        events = run(engine, small(tiny_sd, steps=steps), cancel_at=k)
        last = events[-1]
        # A cancel during the last step may land after it: then the run finishes normally.
        assert isinstance(last, Cancelled) or (isinstance(last, Finished) and k == steps - 1), (k, last)
        if isinstance(last, Cancelled):
            assert last.step <= k + 1
            assert max(e.step for e in events if isinstance(e, Progress)) <= k + 1
    again = run(engine, small(tiny_sd, steps=steps))[-1]
    assert np.array_equal(again.candidates[0], reference.candidates[0])  # nothing left over


def test_cancel_before_start_and_during_load(engine, tiny_sd: str) -> None:
    token = CancelToken()
    token.cancel()
    events: list = []
    engine.generate(small(tiny_sd), events.append, token)
    assert isinstance(events[-1], Cancelled) and sum(isinstance(e, Progress) for e in events) <= 1
    assert_still_works(engine, tiny_sd)


# -- the window ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "shown"),
    [
        (RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"), "cuDNN error"),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), "out of memory"),
    ],
    ids=["exception", "out of memory"],
)
def test_window_shows_engine_faults_and_generates_again(
    qtbot, tmp_path, engine, tiny_sd: str, fault, shown
) -> None:  # type: ignore[no-untyped-def]
    from helpers import make_window

    from canvas_app.ui.job_state import JobState

    window = make_window(qtbot, tmp_path, engine=engine)
    frame = window.ws.doc.add_frame(
        x=0, y=0, w=64, h=64, prompt="a red house", steps=2, model=tiny_sd, seed=3
    )
    window.ws.select_frame(frame.id)

    def finished(rid: int) -> None:
        qtbot.waitUntil(lambda: not window.gen.jobs[rid].state.active, timeout=120_000)

    with Fault(engine, tiny_sd, "unet", raise_(fault), after=1):
        rid = window.generate()
        assert rid is not None
        finished(rid)
    assert window.banner.isVisible() and shown in window.banner.text
    assert window.worker._thread.isRunning()
    rid = window.generate()
    finished(rid)
    assert window.gen.jobs[rid].state == JobState.FINISHED, window.gen.jobs[rid].state
    window.io.dialogs.save_answers = ["discard"]
    assert window.close() and not window.worker._thread.isRunning()

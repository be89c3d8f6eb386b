"""The job state machine's one table, and the time-left estimate on synthetic timings."""

from __future__ import annotations

import pytest

from canvas_app.core.frames import PromptFrame
from canvas_app.core.request import GenerationRequest
from canvas_app.ui.job_state import TRANSITIONS, IllegalTransition, Job, JobEvent, JobState


def job() -> Job:
    return Job(1, PromptFrame(), GenerationRequest())


def test_a_run_walks_the_table() -> None:
    j = job()
    for event, state in [
        (JobEvent.LOADING, JobState.LOADING),
        (JobEvent.STARTED, JobState.RUNNING),
        (JobEvent.PROGRESS, JobState.RUNNING),
        (JobEvent.FINISHED, JobState.FINISHED),
    ]:
        assert j.apply(event) is state
    assert not j.state.active


@pytest.mark.parametrize(
    "state,event",
    [
        (JobState.QUEUED, JobEvent.FINISHED),
        (JobState.QUEUED, JobEvent.PROGRESS),
        (JobState.FINISHED, JobEvent.STARTED),
        (JobState.CANCELLED, JobEvent.FINISHED),
        (JobState.FINISHED, JobEvent.CANCELLED),
        (JobState.RUNNING, JobEvent.LOADING),
    ],
)
def test_illegal_transitions_raise(state: JobState, event: JobEvent) -> None:
    j = job()
    j.state = state
    with pytest.raises(IllegalTransition):
        j.apply(event)
    assert j.state is state


def test_terminal_states_only_absorb_late_progress() -> None:
    for (state, event), new in TRANSITIONS.items():
        if not state.active:
            assert event is JobEvent.PROGRESS and new is state


def test_time_left_ignores_the_first_steps_warm_up() -> None:
    """Defect 8: 116 s shown for a run of about 20 s. The first step (kernel selection, caches)
    took several times longer than the others and the estimate extrapolated it to the whole run."""
    j = job()
    j.apply(JobEvent.STARTED)
    j.total, j.tiles = 20, 1
    t, first, per_step = 100.0, 6.0, 0.7
    t += first
    j.record_progress(1, 20, 0, now=t)
    assert j.eta_seconds() is None  # nothing measured yet
    for step in range(2, 6):
        t += per_step
        j.record_progress(step, 20, 0, now=t)
    eta = j.eta_seconds()
    assert eta is not None
    truth = 15 * per_step
    assert abs(eta - truth) < 0.1 * truth, (eta, truth)


def test_fraction_counts_finished_tiles() -> None:
    j = job()
    j.apply(JobEvent.STARTED)
    j.tiles = 4
    j.record_progress(3, 10, 1, now=1.0)  # step 3, tiles 0 and 1 done
    assert j.fraction == pytest.approx((2 + 2 / 4) / 10)
    j.record_progress(10, 10, 3, now=2.0)
    assert j.fraction == 1.0

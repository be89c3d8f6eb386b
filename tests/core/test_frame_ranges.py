"""A prompt frame accepts exactly the settings a generation accepts (core.limits.check_settings)."""

from __future__ import annotations

import pytest

from canvas_app.core.frames import PromptFrame
from canvas_app.core.limits import MAX_BATCH, MAX_STEPS


@pytest.mark.parametrize(
    "bad",
    [
        {"strength": 0.0},
        {"strength": 1.01},
        {"steps": 0},
        {"steps": MAX_STEPS + 1},
        {"batch": 0},
        {"batch": MAX_BATCH + 1},
        {"guidance": -0.5},
        {"guidance": float("nan")},
    ],
)
def test_frame_refuses_what_the_engine_refuses(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        PromptFrame(**bad)


def test_frame_accepts_the_edges_of_the_ranges():
    PromptFrame(strength=0.01, steps=MAX_STEPS, batch=MAX_BATCH, guidance=0.0)
    PromptFrame(strength=1.0, steps=1, batch=1)

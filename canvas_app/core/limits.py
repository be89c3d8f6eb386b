"""The bounds of a generation's settings, decided once.

The engine refuses a request outside them (``engine.local.validate``) and every place text or
numbers enter the app (a project file, an image's metadata, the frame panel) caps or checks against
the same constants, so a value that was restored is one the engine will run.
"""

from __future__ import annotations

import math

# A prompt far longer than any model reads (CLIP sees 77 tokens; long-prompt chunking a few hundred
# words), yet short enough that a text box shows it at once. Longer text is cut, with a notice.
MAX_PROMPT_CHARS = 20_000
# The most text of an image's generation metadata we look at: two full prompts and the settings.
MAX_METADATA_CHARS = 2 * MAX_PROMPT_CHARS + 8_192

# The largest frame side: far beyond any model's reach, small enough that the crop of a frame
# read from a (possibly hostile) file still fits in memory.
MAX_FRAME_SIDE = 16384
MIN_STEPS, MAX_STEPS = 1, 1000
MIN_BATCH, MAX_BATCH = 1, 64
# Guidance (CFG scale) above this only burns the image; A1111's own slider stops at 30.
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 100.0
# Strength 0 would redraw nothing: the engine needs at least one step of noise.
MAX_STRENGTH = 1.0
# Seeds are unsigned 32-bit, as in A1111; the frame panel's field and the random seeds agree.
MAX_SEED = 2**32 - 1


def cap_prompt(text: str) -> tuple[str, bool]:
    """``text`` cut to MAX_PROMPT_CHARS, and whether it was cut."""
    if len(text) <= MAX_PROMPT_CHARS:
        return text, False
    return text[:MAX_PROMPT_CHARS], True


def steps_problem(steps: int) -> str | None:
    if not MIN_STEPS <= steps <= MAX_STEPS:
        return f"steps must be between {MIN_STEPS} and {MAX_STEPS}, not {steps}"
    return None


def batch_problem(batch: int) -> str | None:
    if not MIN_BATCH <= batch <= MAX_BATCH:
        return f"batch must be between {MIN_BATCH} and {MAX_BATCH}, not {batch}"
    return None


def guidance_problem(guidance: float) -> str | None:
    if not (math.isfinite(guidance) and MIN_GUIDANCE <= guidance <= MAX_GUIDANCE):
        return f"guidance must be between 0 and {MAX_GUIDANCE:g}, not {guidance}"
    return None


def strength_problem(strength: float) -> str | None:
    if not (math.isfinite(strength) and 0.0 < strength <= MAX_STRENGTH):
        return f"strength must be in (0, 1], not {strength}"
    return None


def seed_problem(seed: int) -> str | None:
    if not 0 <= seed <= MAX_SEED:
        return f"seed must be between 0 and {MAX_SEED}, not {seed}"
    return None


def size_problem(width: int, height: int) -> str | None:
    """A generation size: positive multiples of 8, at most MAX_FRAME_SIDE a side."""
    if width <= 0 or height <= 0 or width % 8 or height % 8:
        return f"size {width}x{height} is not a positive multiple of 8"
    if max(width, height) > MAX_FRAME_SIDE:
        return f"size {width}x{height} is too large: at most {MAX_FRAME_SIDE} pixels a side"
    return None


def check_settings(steps: int, guidance: float, strength: float, batch: int) -> None:
    """Raise ValueError naming the first setting outside the range a generation accepts."""
    problem = (
        steps_problem(steps)
        or batch_problem(batch)
        or guidance_problem(guidance)
        or strength_problem(strength)
    )
    if problem:
        raise ValueError(problem)

"""AUTOMATIC1111's ``parameters`` text (its "infotext"): the one writer and the one parser.

The format, as A1111 writes and reads it (``modules/infotext_utils.py``)::

    a castle on a hill
    second line of the prompt
    Negative prompt: blurry,
    second line of the negative prompt
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model: x

The last line holds the settings when it has at least three ``Key: value`` items; every line
before it belongs to the prompt until one starts with ``Negative prompt:``, and from there on to the
negative prompt. Values with a comma, colon or newline are JSON-quoted. Lines are stripped, as A1111
does, so leading and trailing spaces of a prompt line do not survive (our own JSON chunk keeps the
exact text).

Pure text: no Qt, no torch. The parser runs in time linear in its input (A1111's own regular
expression is quadratic on a long line without a colon); callers still bound the text's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

PARAMETERS_KEY = "parameters"
NEGATIVE_PREFIX = "Negative prompt:"

# Our sampler names and how A1111 (1.9 and later) names them: sampler plus schedule type.
_SAMPLERS: tuple[tuple[str, str, str], ...] = (
    ("Euler", "Euler", "Uniform"),
    ("Euler a", "Euler a", "Uniform"),
    ("DPM++ 2M", "DPM++ 2M", "Uniform"),
    ("DPM++ 2M Karras", "DPM++ 2M", "Karras"),
    ("DPM++ SDE", "DPM++ SDE", "Karras"),  # our DPM++ SDE always runs on the Karras schedule
    ("DDIM", "DDIM", "Uniform"),
    ("UniPC", "UniPC", "Uniform"),
    ("LCM", "LCM", "Uniform"),
)
SAMPLER_NAMES: tuple[str, ...] = tuple(ours for ours, _, _ in _SAMPLERS)
# What A1111's "Automatic" schedule type means for a sampler (its default); Uniform otherwise.
_AUTOMATIC = {
    "dpm++ 2m": "Karras",
    "dpm++ sde": "Karras",
    "dpm++ 2s a": "Karras",
    "dpm++ 2m sde": "Exponential",
}


@dataclass(frozen=True)
class Infotext:
    """A parsed ``parameters`` text: the prompts and the settings in order, values unquoted."""

    prompt: str = ""
    negative_prompt: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def quote(value: str) -> str:
    """A value as A1111 writes it: JSON-quoted when it holds a comma, a colon or a newline."""
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def format_infotext(prompt: str, negative_prompt: str, fields: Iterable[tuple[str, object]]) -> str:
    """The ``parameters`` text; fields whose value is None are left out."""
    settings = ", ".join(f"{key}: {quote(str(value))}" for key, value in fields if value is not None)
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{settings}".strip()


def parse_infotext(text: str) -> Infotext:
    """Read a ``parameters`` text back (A1111's rules, see the module docstring)."""
    *lines, last = text.strip().split("\n")
    items = _settings_items(last)
    if len(items) < 3:  # not a settings line: part of the prompt
        lines.append(last)
        items = []
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].strip()
        (negative if in_negative else prompt).append(line)
    return Infotext("\n".join(prompt), "\n".join(negative), dict(items))


def _is_key_char(c: str) -> bool:
    return c.isalnum() or c in "_ -/"


def _settings_items(line: str) -> list[tuple[str, str]]:
    """The ``Key: value`` items of a settings line, as A1111's ``re_param`` finds them: a key of
    two or more word, space, '-' or '/' characters starting with a word character, then a JSON
    string followed by a comma or the end, or else everything up to the next comma."""
    items: list[tuple[str, str]] = []
    i, n = 0, len(line)
    while i < n:
        colon = line.find(":", i)
        if colon < 0:
            break
        start = colon
        while start > i and _is_key_char(line[start - 1]):
            start -= 1
        while start < colon and not (line[start].isalnum() or line[start] == "_"):
            start += 1
        key = line[start:colon]
        if len(key) < 2:
            i = colon + 1
            continue
        j = colon + 1
        while j < n and line[j].isspace():
            j += 1
        value, i = _value_at(line, j)
        items.append((key.strip(), value))
    return items


def _value_at(line: str, j: int) -> tuple[str, int]:
    """The value starting at ``j`` and where the next item starts."""
    n = len(line)
    if j < n and line[j] == '"':
        k = j + 1
        while k < n and line[k] != '"':
            k += 2 if line[k] == "\\" else 1
        if j + 1 < k < n and (k + 1 == n or line[k + 1] == ","):
            raw = line[j : k + 1]
            try:
                return str(json.loads(raw)), k + 2
            except ValueError:
                return raw, k + 2
    end = line.find(",", j)
    end = n if end < 0 else end
    value = line[j:end].strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':  # as A1111's unquote
        try:
            value = str(json.loads(value))
        except ValueError:
            pass
    return value, end + 1


# -- samplers ------------------------------------------------------------------------------------------
def a1111_sampler(name: str) -> tuple[str, str]:
    """(Sampler, Schedule type) as A1111 writes them for one of our sampler names. The schedule is
    named whenever "Automatic" would mean something else in A1111 (its DPM++ 2M defaults to Karras)."""
    for ours, sampler, schedule in _SAMPLERS:
        if ours.lower() == name.lower():
            automatic = _AUTOMATIC.get(sampler.lower(), "Uniform")
            return sampler, "Automatic" if schedule == automatic == "Uniform" else schedule
    return name, "Automatic"


def sampler_from_a1111(sampler: str, schedule: str | None) -> tuple[str | None, str | None]:
    """Our sampler name for A1111's sampler and schedule type, and a notice for the user when it is
    not exactly what the image used. (None, notice) when we have no such sampler.

    ``schedule`` None means the text has no "Schedule type" (written before A1111 1.9): then a
    " Karras" suffix on the sampler names the schedule and anything else ran on the plain one.
    """
    base = " ".join(sampler.split())
    if base.lower().endswith(" karras"):
        base, schedule = base[: -len(" karras")], "Karras"
    if schedule is None:
        schedule = "Uniform"
    elif schedule.strip().lower() == "automatic":
        schedule = _AUTOMATIC.get(base.lower(), "Uniform")
    same_sampler = [(ours, sched) for ours, s, sched in _SAMPLERS if s.lower() == base.lower()]
    if not same_sampler:
        return None, f"the sampler {sampler!r} is not available here"
    for ours, sched in same_sampler:
        if sched.lower() == schedule.strip().lower():
            return ours, None
    ours = same_sampler[0][0]
    return ours, f"the schedule type {schedule!r} is not available for {base}; using {ours}"

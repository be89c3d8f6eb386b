"""Errors whose message is written for a person: what went wrong and what to do about it."""

from __future__ import annotations


class EngineError(Exception):
    """A run cannot go on; ``str(error)`` is shown to the artist as it is."""


class ModelError(EngineError):
    """A model cannot be found, is refused (pickle) or cannot be loaded."""


class InputError(EngineError):
    """The request itself is wrong (sizes, masks, unknown scheduler)."""

"""What every ``canvas-app`` command shares: the exit statuses, the one-line usage error, checks of
inputs, building the engine and running one request with a progress bar. Light to import (no torch):
every heavy import is inside the function that needs it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

PROG = "canvas-app"
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


def read_image(path: str, what: str) -> Any:
    from canvas_app.core.image_io import ImageReadError, read_image

    try:
        return read_image(path, "L" if what == "mask" else "auto")[0]
    except ImageReadError as error:
        raise UsageError(f"cannot read {what} image {path}: {error}") from None


def check_model(model: str, allow_pickle: bool) -> None:
    from canvas_app.engine.errors import ModelError
    from canvas_app.engine.models import resolve_source

    try:
        resolve_source(model, allow_pickle)
    except ModelError as error:
        raise UsageError(str(error)) from None


def check_scheduler(name: str) -> str:
    from canvas_app.engine.errors import InputError
    from canvas_app.engine.schedulers import canonical_name

    try:
        return canonical_name(name)
    except InputError as error:
        raise UsageError(str(error)) from None


def check_refine(value: float | None) -> float | None:
    if value is not None and not 0.0 < value <= 1.0:
        raise UsageError(f"--refine-strength must be in (0, 1], not {value}")
    return value


def make_engine(args: argparse.Namespace) -> Any:
    from canvas_app.engine.local import EngineSettings, LocalDiffusersEngine

    if getattr(args, "engine", None):
        from canvas_app.cli_remote import make_remote_engine  # it imports this module

        return make_remote_engine(args)

    try:
        from canvas_app.engine.devices import pick_device

        pick_device(args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    # Previews are not shown headless; skip their (small) cost.
    settings = EngineSettings(
        device=args.device, allow_pickle=args.allow_pickle, previews=False, infill=args.infill
    )
    if getattr(args, "compile", False):
        settings = replace(settings, compile=True)
    return LocalDiffusersEngine(settings)


class ProgressBar:
    """A one-line text progress bar on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.drawn = False

    def __call__(self, event: Any) -> None:
        from canvas_app.engine.api import Loading, Progress
        from canvas_app.engine.compiling import COMPILING_STAGE

        if self.quiet:
            return
        if isinstance(event, Loading) and event.stage == COMPILING_STAGE:
            # Minutes without a step: say why (the model loading itself is quick).
            sys.stderr.write(f"{COMPILING_STAGE}\n")
            sys.stderr.flush()
            return
        if not isinstance(event, Progress):
            return
        width = 30
        done = int(width * event.step / max(event.total, 1))
        bar = "#" * done + "." * (width - done)
        sys.stderr.write(f"\r[{bar}] step {event.step}/{event.total} tile {event.tile + 1}")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        """End the bar's line, if there is one (an error message then starts on a line of its own)."""
        if self.drawn:
            sys.stderr.write("\n")
            self.drawn = False


def run_engine(engine: Any, request: Any, quiet: bool) -> Any:
    """Run one request; returns Finished or raises SystemExit-worthy errors as (status, message)."""
    from canvas_app.engine.api import CancelToken, Finished

    bar = ProgressBar(quiet)
    events: list[Any] = []

    def emit(event: Any) -> None:
        events.append(event)
        bar(event)

    try:
        engine.generate(request, emit, CancelToken())
    except KeyboardInterrupt:
        bar.close()
        raise
    bar.close()
    last = events[-1] if events else None
    if isinstance(last, Finished):
        for notice in () if quiet else last.notices:
            print(f"{PROG}: note: {notice}", file=sys.stderr)
        return last
    message = getattr(last, "message", "the run ended without a result")
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return None


def output_paths(out: str, count: int) -> list[Path]:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, not {out}")
    if not path.parent.exists():
        raise UsageError(f"the folder {path.parent} does not exist")
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i + 1}{path.suffix}") for i in range(count)]


def request_default(name: str) -> Any:
    """The request's own default, so the CLI and the app agree."""
    from canvas_app.engine.api import GenerationRequest

    return GenerationRequest.__dataclass_fields__[name].default

"""``canvas-app generate --project``: generate a frame of a project and save the result into it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from canvas_app.cli_run import (
    EXIT_FAILED,
    UsageError,
    check_model,
    check_refine,
    check_scheduler,
    make_engine,
    run_engine,
)


def parse_frame(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"frame {text!r} is not X,Y,W,H") from None
    if w <= 0 or h <= 0 or any(v % 8 for v in (x, y, w, h)):
        raise UsageError(f"frame {text} must have a positive size and lie on the 8 px grid")
    return x, y, w, h


def generate_into_project(args: argparse.Namespace) -> int:
    """Generate the frame X,Y,W,H of a project (the frame there with that rectangle, or a new one)
    in the mode the document gives it, and save the first candidate into the project as a patch.
    The project is rewritten atomically, only after a successful run."""
    from canvas_app.cli import parse_loras, parse_regions  # cli imports this module: import back lazily
    from canvas_app.core.composite import accept_candidate
    from canvas_app.core.frame_plan import request_for_frame
    from canvas_app.core.project_file import ProjectError, load_project, save_project
    from canvas_app.engine.api import TilePlan

    # 1. Check the input and find (or add) the frame
    if not args.frame:
        raise UsageError("--project needs --frame X,Y,W,H")
    if args.out or args.init or args.mask:
        raise UsageError("--project takes its pixels from the project; drop --out/--init/--mask")
    if args.size:
        raise UsageError("--project takes its size from --frame; drop --size")
    x, y, w, h = parse_frame(args.frame)
    path = Path(args.project)
    if not path.is_file():
        raise UsageError(f"project not found: {path}")
    try:
        doc = load_project(path)
    except (ProjectError, OSError) as error:
        raise UsageError(f"cannot read project {path}: {error}") from None
    settings: dict[str, Any] = {}
    for key, value in (
        ("prompt", args.prompt),
        ("negative_prompt", args.negative),
        ("model", args.model),
        ("steps", args.steps),
        ("guidance", args.guidance),
        ("strength", args.strength),
        ("batch", args.batch),
        ("scheduler", check_scheduler(args.scheduler) if args.scheduler else None),
        ("large_frame", args.large_frame),
        ("refine_strength", check_refine(args.refine_strength)),
        ("masked_content", args.masked_content),
        ("color_correction", True if args.color_correction else None),
    ):
        if value is not None:
            settings[key] = value
    if args.region:  # given regions replace the frame's own
        settings["regions"] = parse_regions(args.region, (w, h))
    frame = next((f for f in doc.frames.values() if f.rect == (x, y, w, h)), None)
    try:
        if frame is None:
            frame = doc.add_frame(x=x, y=y, w=w, h=h, **settings)
        elif settings:
            frame = doc.update_frame(frame.id, **settings)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not frame.prompt:
        raise UsageError("the frame has no prompt; pass --prompt")
    if not getattr(args, "engine", None):
        check_model(frame.model, args.allow_pickle)
    request = request_for_frame(
        doc,
        frame,
        seed=args.seed,
        tile_plan=TilePlan(args.tile_size, args.overlap),
        loras=parse_loras(args.lora, args.allow_pickle),
    )
    # 2. Run, then write the patch and save
    finished = run_engine(make_engine(args), request, args.quiet)
    if finished is None:
        return EXIT_FAILED
    patch = accept_candidate(doc, frame.id, frame.rect, request, finished.candidates[0], finished.seeds[0])
    save_project(doc, path)
    if not args.quiet:
        print(f"{path}: {request.mode.value} frame {x},{y},{w},{h} -> patch {patch.id} (seed {patch.seed})")
    return 0

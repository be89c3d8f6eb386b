"""``canvas-app upscale``: an image made x2/x4 larger (Lanczos, then refined by the model in tiles)."""

from __future__ import annotations

import argparse
from typing import Any

from canvas_app.cli_run import (
    EXIT_FAILED,
    UsageError,
    check_model,
    make_engine,
    output_paths,
    read_image,
    request_default,
    run_engine,
)


def add_upscale_parser(sub: Any) -> None:
    from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH

    up = sub.add_parser("upscale", help="upscale an image x2/x4 (Lanczos, then refined by the model)")
    up.add_argument("input", help="the image to upscale (PNG, JPEG, ...)")
    up.add_argument("--scale", type=int, default=2, help="2 or 4 (default: 2)")
    up.add_argument("--out", required=True, help="output PNG")
    up.add_argument("--prompt", default="", help="what the image shows (guides the refinement)")
    up.add_argument("--negative", help="negative prompt (default: none)")
    up.add_argument(
        "--model", help="builtin, a diffusers folder, a .safetensors file or a hub id (default: builtin)"
    )
    up.add_argument(
        "--strength",
        type=float,
        help=f"how much the refinement redraws, in (0, 1] (default: {DEFAULT_UPSCALE_STRENGTH})",
    )
    up.add_argument("--steps", type=int, help=f"denoising steps (default: {request_default('steps')})")
    up.add_argument("--seed", type=int, help="seed (default: random)")
    up.add_argument(
        "--tile-size", type=int, default=0, help="tile edge in px (default: the model's native size)"
    )
    up.add_argument(
        "--overlap", type=int, default=32, help="overlap of neighbouring tiles in px (default: 32)"
    )
    up.add_argument(
        "--device", help="cuda, mps or cpu, optionally :fp16/:bf16/:fp32 (default: the best one available)"
    )
    up.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow pickle checkpoints: loading one can run arbitrary code (default: refused)",
    )
    up.add_argument("--quiet", action="store_true", help="print nothing but errors")
    up.set_defaults(infill="telea")


def upscale_png(args: argparse.Namespace) -> int:
    """Upscale an image x2/x4: Lanczos, then img2img in tiles at low strength (core.upscale)."""
    import random

    import numpy as np

    from canvas_app.core.export import save_png
    from canvas_app.core.image_metadata import png_text
    from canvas_app.core.limits import MAX_SEED
    from canvas_app.core.upscale import DEFAULT_UPSCALE_STRENGTH, upscale_request
    from canvas_app.engine.api import TilePlan

    (path,) = output_paths(args.out, 1)
    image = read_image(args.input, "input")
    strength = args.strength if args.strength is not None else DEFAULT_UPSCALE_STRENGTH
    if not 0.0 < strength <= 1.0:
        raise UsageError(f"--strength must be in (0, 1], not {strength}")
    model = args.model or "builtin"
    check_model(model, args.allow_pickle)
    try:
        request = upscale_request(
            image,
            args.scale,
            prompt=args.prompt,
            negative_prompt=args.negative or "",
            model=model,
            strength=strength,
            steps=args.steps if args.steps is not None else request_default("steps"),
            seed=random.randint(0, MAX_SEED) if args.seed is None else args.seed,
            tile_plan=TilePlan(args.tile_size, args.overlap),
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    finished = run_engine(make_engine(args), request, args.quiet)
    if finished is None:
        return EXIT_FAILED
    result = finished.candidates[0]
    if image.shape[2] == 4:  # keep the input's transparency, upscaled
        assert request.init_image is not None
        result = np.dstack([result, request.init_image[..., 3]])
    save_png(path, result, png_text(request, finished.seeds[0]))
    if not args.quiet:
        print(path)
    return 0

"""``canvas-app repair-seam``: check an inpainted image for a seam at its mask's edge and repair it.

The same check and repair as the app's "Repair Seam" (core.seams): the colour step across the
boundary of the mask, per segment, against the original's; the flagged segments' band is inpainted
again at low strength through the frame plan and composited by the same rules (pixels outside the
band's feather stay bit for bit). Prints the step before and after.
"""

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


def add_repair_seam_parser(sub: Any) -> None:
    rs = sub.add_parser(
        "repair-seam",
        help="find and repair a seam at the edge of an inpainted area",
        description="Check the colour step across the edge of MASK in an inpainted image; where it is "
        "clearly above the original's, inpaint a thin band along it again at low strength.",
    )
    rs.add_argument("input", help="the inpainted image (PNG, JPEG, ...)")
    rs.add_argument("--mask", required=True, help="the mask that was inpainted, white = regenerated")
    rs.add_argument(
        "--original",
        help="the image before the inpaint (default: none; the step is then judged against how much "
        "the surroundings change over the same distance)",
    )
    rs.add_argument("--out", required=True, help="output PNG")
    rs.add_argument("--prompt", default="", help="what the image shows (guides the repair)")
    rs.add_argument("--negative", help="negative prompt (default: none)")
    rs.add_argument(
        "--model", help="builtin, a diffusers folder, a .safetensors file or a hub id (default: builtin)"
    )
    rs.add_argument("--strength", type=float, help="how much the band is redrawn, in (0, 1] (default: 0.5)")
    rs.add_argument("--steps", type=int, help=f"denoising steps (default: {request_default('steps')})")
    rs.add_argument("--seed", type=int, help="seed (default: random)")
    rs.add_argument(
        "--feather", type=int, default=8, help="feather (px) the inpaint was composited with (default: 8)"
    )
    rs.add_argument(
        "--all", action="store_true", help="repair along the whole edge, not only the flagged segments"
    )
    rs.add_argument(
        "--device", help="cuda, mps or cpu, optionally :fp16/:bf16/:fp32 (default: the best one available)"
    )
    rs.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow pickle checkpoints: loading one can run arbitrary code (default: refused)",
    )
    rs.add_argument("--quiet", action="store_true", help="print nothing but errors")
    rs.set_defaults(infill="telea")


def _rgba(image: Any) -> Any:
    import numpy as np

    if image.shape[2] == 4:
        return image
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def repair_seam_png(args: argparse.Namespace) -> int:
    """Check ``args.input`` for a seam at the edge of ``args.mask``; repair it into ``args.out``."""
    import numpy as np

    from canvas_app.core.composite import composite, regen_mask
    from canvas_app.core.export import save_png
    from canvas_app.core.frame_plan import plan_image
    from canvas_app.core.image_metadata import png_text
    from canvas_app.core.seams import REPAIR_STRENGTH, check_seam

    # 1. Check everything before loading anything
    (path,) = output_paths(args.out, 1)
    image = read_image(args.input, "input")
    mask = read_image(args.mask, "mask")
    h, w = image.shape[:2]
    if mask.shape != (h, w):
        raise UsageError(f"the mask is {mask.shape[1]}x{mask.shape[0]}, the image {w}x{h}")
    if w % 8 or h % 8:
        raise UsageError(f"the image is {w}x{h}, not a multiple of 8")
    if not (mask >= 128).any():
        raise UsageError("the mask marks nothing (white = regenerated)")
    if args.feather < 0:
        raise UsageError(f"--feather must be >= 0, not {args.feather}")
    strength = args.strength if args.strength is not None else REPAIR_STRENGTH
    if not 0.0 < strength <= 1.0:
        raise UsageError(f"--strength must be in (0, 1], not {strength}")
    current = _rgba(image)
    if args.original:
        before = _rgba(read_image(args.original, "original"))
        if before.shape[:2] != (h, w):
            raise UsageError(f"the original is {before.shape[1]}x{before.shape[0]}, the image {w}x{h}")
    else:
        before = current.copy()
        before[mask >= 128, 3] = 0  # unknown: judged against the surroundings
    model = args.model or "builtin"
    check_model(model, args.allow_pickle)

    # 2. Check
    check = check_seam(before, current, mask, args.feather)
    measured = int((~np.isnan(check.after)).sum())
    say = (lambda _text: None) if args.quiet else print
    say(
        f"seam: {int(check.flagged.sum())} of {measured} edge segments flagged; "
        f"step ΔE00 {check.step('after'):.2f} (original {check.step('before'):.2f})"
    )
    band = check.band(every_segment=args.all)
    if not band.any():
        say("nothing to repair; no file written (--all repairs the whole edge)")
        return 0

    # 3. Repair: the band through the frame plan, composited by the accept's rules
    plan = plan_image(current, band, (w, h), args.seed, feather=args.feather)
    request = plan.request(
        prompt=args.prompt,
        negative_prompt=args.negative or "",
        model=model,
        strength=strength,
        steps=args.steps if args.steps is not None else request_default("steps"),
    )
    finished = run_engine(make_engine(args), request, args.quiet)
    if finished is None:
        return EXIT_FAILED
    repaired, _ = composite(
        current, finished.candidates[0], regen_mask(request), request.feather, request.color_match
    )
    say(f"repaired: step ΔE00 {check.remeasure(repaired):.2f} (was {check.step('after'):.2f})")
    save_png(path, repaired[..., : image.shape[2]], png_text(request, finished.seeds[0]))
    say(str(path))
    return 0

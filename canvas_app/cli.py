"""Command line: ``canvas-app`` (or ``canvas-app gui``) starts the desktop app; ``canvas-app
generate`` runs the same engine headless, into PNG files or into a project.

Bad input exits with status 2 and one line on stderr, before anything is written; a failed
generation exits with status 1; nothing partial is ever written.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canvas_app.cli_project import generate_into_project
from canvas_app.cli_remote import add_remote_arguments, add_serve_parser, serve_main
from canvas_app.cli_run import (
    EXIT_FAILED,
    EXIT_USAGE,
    PROG,
    UsageError,
    check_model,
    check_refine,
    check_scheduler,
    make_engine,
    output_paths,
    read_image,
    request_default,
    run_engine,
)
from canvas_app.cli_seams import add_repair_seam_parser, repair_seam_png
from canvas_app.cli_upscale import add_upscale_parser, upscale_png

LARGE_FRAME_CHOICES = ("two-pass", "tiled")  # core.request.LARGE_FRAME_MODES (not imported: startup cost)
# core.request.MASKED_CONTENT_MODES (not imported: startup cost; a test keeps them equal)
MASKED_CONTENT_CHOICES = ("original", "fill")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Generate and edit images on an infinite canvas.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser(
        "gui", help="start the desktop app (the default); see canvas-app gui --help", add_help=False
    )

    gen = sub.add_parser(
        "generate",
        help="generate images headless",
        description="Generate into PNG files (--out) or into a frame of a project (--project, --frame).",
        epilog="Negative coordinates work in either form: --frame -64,-64,128,128 or --frame=-64,-64,128,128.",
    )
    gen.add_argument("--prompt", help="what to generate (required unless the project frame has one)")
    gen.add_argument("--negative", help="negative prompt: what to keep out of the image (default: none)")
    gen.add_argument(
        "--model",
        help="builtin, a diffusers folder, a .safetensors file or a hub id in the local cache (default: builtin)",
    )
    gen.add_argument(
        "--size", help="WxH in pixels, multiples of 8 (default: the init image's size, else 128x128)"
    )
    gen.add_argument("--steps", type=int, help=f"denoising steps (default: {request_default('steps')})")
    gen.add_argument(
        "--guidance",
        type=float,
        help=f"classifier-free guidance (CFG) scale: how closely to follow the prompt (default: {request_default('guidance')})",
    )
    gen.add_argument(
        "--seed", type=int, help="seed of the first candidate; the others use seed+1, ... (default: random)"
    )
    gen.add_argument(
        "--scheduler",
        help="sampler: Euler, Euler a, DPM++ 2M, DPM++ 2M Karras, DPM++ SDE, DDIM, UniPC, LCM "
        f"(default: {request_default('scheduler')})",
    )
    gen.add_argument("--batch", type=int, help=f"number of candidates (default: {request_default('batch')})")
    gen.add_argument("--init", help="init image (img2img; with transparent pixels: outpaint)")
    gen.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="X,Y,W,H:PROMPT",
        help="a part of the frame with its own prompt (repeatable; pixels from the frame's top-left, "
        "negative X/Y reach past its edge); --prompt is the background (default: none)",
    )
    gen.add_argument(
        "--strength",
        type=float,
        help="how much of the init image to redraw, in (0, 1] (default: 0.75 for img2img, else 1)",
    )
    gen.add_argument("--mask", help="mask image, white = regenerate (inpaint; needs --init)")
    gen.add_argument(
        "--masked-content",
        choices=MASKED_CONTENT_CHOICES,
        help="what an inpaint starts from under the mask: original (the pixels there, noised: to change "
        "them) or fill (filled from the surroundings first: to remove something) (default: original)",
    )
    gen.add_argument(
        "--color-correction",
        action="store_true",
        help="keep the init image's low-frequency colours in the regenerated area (with --mask; for "
        "removing things from photos: it also undoes a colour the prompt asks for) (default: off)",
    )
    gen.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="merge a .safetensors LoRA at WEIGHT (default weight: 1); repeat for several",
    )
    gen.add_argument(
        "--tile-size",
        type=int,
        default=0,
        help="tile edge in px for frames larger than the model's native size (default: the native size)",
    )
    gen.add_argument(
        "--overlap", type=int, default=32, help="overlap of neighbouring tiles in px (default: 32)"
    )
    gen.add_argument(
        "--infill",
        default="telea",
        choices=("telea", "ns", "edge"),
        help="how empty pixels are filled before an outpaint: telea or ns (OpenCV inpainting), "
        "edge (edges extended, plus noise) (default: telea)",
    )
    gen.add_argument(
        "--device",
        help="cuda, mps or cpu, optionally :fp16/:bf16/:fp32 (default: the best one available; on a CPU, "
        "bf16 where the processor computes it natively, else fp32)",
    )
    gen.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the UNet: faster steps once compiled, but the first run of each tile size "
        "compiles for minutes on a CPU (kept in the cache folder for later runs; default: off, or "
        "CANVAS_APP_COMPILE=1)",
    )
    gen.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow .ckpt/.bin/.pt/.pth models and LoRAs: loading one can run arbitrary code (default: refused)",
    )
    gen.add_argument(
        "--quiet", action="store_true", help="print nothing but errors: no progress bar, notes or file names"
    )
    gen.add_argument(
        "--large-frame",
        choices=LARGE_FRAME_CHOICES,
        help="a frame larger than the model's native area: two-pass (default: compose at the native "
        "area, then refine at full size: one picture) or tiled (one pass in tiles: repeats, for textures)",
    )
    gen.add_argument(
        "--refine-strength", type=float, help="strength of the two-pass refining pass, 0..1 (default: 0.4)"
    )
    gen.add_argument("--out", help="output PNG (with --batch N: PATH-1.png ... PATH-N.png)")
    gen.add_argument("--project", help="a .canvas project: generate into it instead of a PNG")
    gen.add_argument(
        "--frame", help="X,Y,W,H of the frame in the project, on the 8 px grid; X and Y may be negative"
    )
    add_remote_arguments(gen)
    add_serve_parser(sub)

    add_upscale_parser(sub)
    add_repair_seam_parser(sub)
    return parser


# Options whose value may start with "-" (negative coordinates); argparse would take such a value
# for an option of its own.
_DASH_VALUE_OPTIONS = ("--frame", "--region")


def _join_dash_values(argv: list[str]) -> list[str]:
    """``--frame -64,-64,128,128`` becomes ``--frame=-64,-64,128,128``, which argparse accepts."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        item = argv[i]
        if item in _DASH_VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            value = argv[i + 1]
            if value[1:2].isdigit():
                out.append(f"{item}={value}")
                i += 2
                continue
        out.append(item)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("generate", "serve", "upscale", "repair-seam", "-h", "--help"):
        # The GUI (also "canvas-app gui ..."): its own options are parsed by the app.
        from canvas_app.app import main as app_main  # lazily: the GUI pulls in Qt

        return int(app_main(argv[1:] if argv and argv[0] == "gui" else argv) or 0)
    args = build_parser().parse_args(_join_dash_values(argv))
    quiet_libraries()
    try:
        if args.command == "serve":
            return serve_main(args)
        with warnings.catch_warnings():
            if args.quiet:
                warnings.simplefilter("ignore")
            if args.command == "upscale":
                return upscale_png(args)
            if args.command == "repair-seam":
                return repair_seam_png(args)
            if args.project:
                return generate_into_project(args)
            return generate_png(args)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def quiet_libraries() -> None:
    """Library chatter is not for a command-line user: diffusers' "Loading pipeline components" bar
    (we draw our own progress) and the libraries' log warnings (e.g. transformers' notes about an
    optional torchvision). Set before they are imported, and again on their loggers if they are."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    for name in ("transformers", "diffusers"):
        if name in sys.modules:
            logging_module = importlib.import_module(f"{name}.utils.logging")
            logging_module.set_verbosity_error()


# -- shared by both generate forms -------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    try:
        w_text, h_text = text.lower().split("x")
        w, h = int(w_text), int(h_text)
    except ValueError:
        raise UsageError(f"size {text!r} is not WxH") from None
    if w <= 0 or h <= 0 or w % 8 or h % 8:
        raise UsageError(f"size {w}x{h} is not a multiple of 8")
    return w, h


def parse_loras(items: list[str], allow_pickle: bool) -> tuple[tuple[str, float], ...]:
    """``PATH[:WEIGHT]`` items, each checked (it exists, and it is no pickle unless allowed)."""
    from canvas_app.engine.errors import ModelError
    from canvas_app.engine.lora import check_lora_file

    out = []
    for item in items:
        path, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head:
            try:
                path, weight = head, float(tail)
            except ValueError:
                path, weight = item, 1.0
        try:
            check_lora_file(Path(path), allow_pickle)
        except ModelError as error:
            raise UsageError(str(error)) from None
        out.append((path, weight))
    return tuple(out)


def parse_regions(items: list[str], size: tuple[int, int]) -> tuple[Any, ...]:
    """``X,Y,W,H:PROMPT`` items as regions of a frame of ``size`` (each must overlap it)."""
    from canvas_app.core import limits
    from canvas_app.core.regions import Region

    if len(items) > limits.MAX_REGIONS:
        raise UsageError(f"{len(items)} regions, at most {limits.MAX_REGIONS}")
    out = []
    for item in items:
        box, sep, prompt = item.partition(":")
        try:
            x, y, w, h = (int(v) for v in box.split(","))
        except ValueError:
            raise UsageError(f"region {item!r} is not X,Y,W,H:PROMPT") from None
        if not sep or not prompt.strip():
            raise UsageError(f"region {box} has no prompt (X,Y,W,H:PROMPT)")
        if w <= 0 or h <= 0:
            raise UsageError(f"region {box} needs a positive size")
        if x >= size[0] or y >= size[1] or x + w <= 0 or y + h <= 0:
            raise UsageError(f"region {box} lies outside the {size[0]}x{size[1]} frame")
        try:
            out.append(Region(x, y, w, h, prompt=prompt.strip()))
        except ValueError as error:
            raise UsageError(str(error)) from None
    return tuple(out)


# -- generate into PNG files ---------------------------------------------------------------------------
def generate_png(args: argparse.Namespace) -> int:
    import numpy as np

    from canvas_app.core.composite import composite, regen_mask
    from canvas_app.core.export import save_png
    from canvas_app.core.frame_plan import plan_image
    from canvas_app.core.image_metadata import png_text
    from canvas_app.engine.api import Mode, TilePlan

    # 1. Check everything before loading anything
    if args.frame:
        raise UsageError("--frame needs --project")
    if args.prompt is None:
        raise UsageError("--prompt is required")
    if not args.out:
        raise UsageError("--out is required (or --project)")
    batch = args.batch if args.batch is not None else 1
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    paths = output_paths(args.out, batch)
    model = args.model or "builtin"
    scheduler = check_scheduler(args.scheduler or request_default("scheduler"))
    init = read_image(args.init, "init") if args.init else None
    mask = read_image(args.mask, "mask") if args.mask else None
    if mask is not None and init is None:
        raise UsageError("--mask needs --init")
    if args.size:
        width, height = parse_size(args.size)
    elif init is not None:
        height, width = init.shape[:2]
        if width % 8 or height % 8:
            raise UsageError(f"the init image is {width}x{height}, not a multiple of 8; pass --size")
    else:
        width, height = 128, 128
    if init is not None and init.shape[:2] != (height, width):
        raise UsageError(f"the init image is {init.shape[1]}x{init.shape[0]}, not {width}x{height}")
    if mask is not None and mask.shape != (height, width):
        raise UsageError(f"the mask is {mask.shape[1]}x{mask.shape[0]}, the init image {width}x{height}")
    try:
        plan = plan_image(init, mask, (width, height), args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.masked_content and plan.regen is None:
        raise UsageError("--masked-content needs --mask (it says what the masked area starts from)")
    if args.color_correction and plan.regen is None:
        raise UsageError("--color-correction needs --mask (it corrects the regenerated area)")
    default_strength = 0.75 if plan.mode is Mode.IMG2IMG else 1.0
    strength = args.strength if args.strength is not None else default_strength
    if not 0.0 < strength <= 1.0:
        raise UsageError(f"--strength must be in (0, 1], not {strength}")
    if not getattr(args, "engine", None):  # a server checks its own models
        check_model(model, args.allow_pickle)
    loras = parse_loras(args.lora, args.allow_pickle)
    refine = check_refine(args.refine_strength)
    # The whole image is the frame (and the crop), so the regions' coordinates need no shift.
    regions = parse_regions(args.region, (width, height))
    request = plan.request(
        regions=regions,
        prompt=args.prompt,
        negative_prompt=args.negative or "",
        steps=args.steps if args.steps is not None else request_default("steps"),
        guidance=args.guidance if args.guidance is not None else request_default("guidance"),
        strength=strength,
        scheduler=scheduler,
        model=model,
        batch=batch,
        tile_plan=TilePlan(args.tile_size, args.overlap),
        loras=loras,
        large_frame=args.large_frame or request_default("large_frame"),
        refine_strength=refine if refine is not None else request_default("refine_strength"),
        masked_content=args.masked_content or request_default("masked_content"),
        color_correction=args.color_correction,
    )
    # 2. Run
    finished = run_engine(make_engine(args), request, args.quiet)
    if finished is None:
        return EXIT_FAILED
    # 3. Write every candidate (each file atomically)
    for path, image, seed in zip(paths, finished.candidates, finished.seeds, strict=True):
        if init is not None and plan.regen is not None:
            # Inpaint/outpaint: the decoded crop over the init image, as an accept would do it.
            current = (
                init if init.shape[2] == 4 else np.dstack([init, np.full(init.shape[:2], 255, np.uint8)])
            )
            image, _ = composite(current, image, regen_mask(request), request.feather, request.color_match)
            image = image[..., : init.shape[2]]
        save_png(path, image, png_text(request, seed))
        if not args.quiet:
            print(path)
    return 0

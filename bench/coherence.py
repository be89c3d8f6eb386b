"""Coherence bench: does a frame larger than the model's native size read as one picture?

Run from the repository root: ``python -m bench.coherence``. Options: ``--seeds 20``,
``--sizes 256``, ``--steps 20``, ``--refine 0.4`` (several: ``--refine 0.3 0.4 0.5``),
``--prompt "green hills under a blue sky"``, ``--model builtin``, ``--device cpu``,
``--grid docs/images/coherence-256.png``.

For each size and seed the real engine runs the prompt one-pass tiled (``large_frame="tiled"``)
and two-pass (compose at the native area, refine at full size) at each refine strength, and counts
the horizons in each result (:func:`count_horizons`). Printed: the distribution of horizon counts,
the share of seeds with exactly one, and the mean wall time of each way (and their ratio). The grid
shows every seed's result, one row per way.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Greenness G - (R + B) / 2 above this is ground: the built-in model's hills and meadows are 60-90,
# its skies (blue, orange, pink, grey, clouds, suns) at most ~10.
GREEN = 35.0
MIN_RUN = 4  # rows: a band thinner than this is noise, not sky or ground
STRIPS = 8


def _runs(green_rows: np.ndarray) -> list[bool]:
    """Row classes (True = ground) collapsed into runs of at least MIN_RUN rows."""
    runs: list[tuple[bool, int]] = []
    for value in green_rows:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((bool(value), 1))
    kept: list[bool] = []
    for value, length in runs:
        if length >= MIN_RUN and (not kept or kept[-1] != value):
            kept.append(value)
    return kept


def count_horizons(image: np.ndarray) -> int:
    """Horizons in an RGB image: going down, how often sky (not green) turns into ground (green).

    Counted in each of 8 vertical strips (a tiled run's tiles draw their horizons at different
    heights) on the rows' mean greenness; the image's count is the median over the strips, rounded.
    """
    rgb = image[..., :3].astype(np.float32)
    green = rgb[..., 1] - (rgb[..., 0] + rgb[..., 2]) / 2
    counts = []
    for strip in np.array_split(green, STRIPS, axis=1):
        rows = np.convolve(strip.mean(axis=1), np.ones(3) / 3, mode="same") > GREEN
        kept = _runs(rows)
        counts.append(sum(1 for a, b in zip(kept, kept[1:], strict=False) if not a and b))
    return int(round(float(np.median(counts))))


def generate(engine: Any, request: Any) -> tuple[np.ndarray, float]:
    from canvas_app.engine.api import CancelToken, Finished

    events: list[Any] = []
    start = time.perf_counter()
    engine.generate(request, events.append, CancelToken())
    elapsed = time.perf_counter() - start
    last = events[-1]
    if not isinstance(last, Finished):
        raise SystemExit(f"run failed: {getattr(last, 'message', last)}")
    return last.candidates[0], elapsed


def save_grid(
    path: Path, rows: list[tuple[str, list[np.ndarray], list[int]]], cell: int, label_w: int = 120
) -> None:
    """Rows of labelled pictures, each with its count below (red when not exactly one)."""
    pad = 2
    cols = max(len(images) for _, images, _ in rows)
    grid = Image.new("RGB", (label_w + cols * (cell + pad), len(rows) * (cell + 14 + pad)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (label, images, counts) in enumerate(rows):
        y = r * (cell + 14 + pad)
        draw.text((4, y + cell // 2), label, fill="black")
        for c, (image, count) in enumerate(zip(images, counts, strict=True)):
            x = label_w + c * (cell + pad)
            grid.paste(Image.fromarray(image).resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
            draw.text((x + 2, y + cell + 1), f"{count}", fill="black" if count == 1 else "red")
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--refine", type=float, nargs="*", default=[0.4], help="none: no two-pass runs")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here (to split a run)")
    parser.add_argument("--prompt", default="green hills under a blue sky")
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grid", help="PNG of all results (per size: -SIZE appended)")
    parser.add_argument("--no-tiled", action="store_true", help="skip the one-pass runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--tiled-seeds", type=int, help="seeds for the one-pass runs (default: --seeds; it is slow)"
    )
    parser.add_argument("--save", help="folder for every result as PNG (SIZE-WAY-SEED.png)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from canvas_app.engine.api import GenerationRequest
    from canvas_app.engine.local import LocalDiffusersEngine

    engine = LocalDiffusersEngine(device=args.device, previews=False)
    engine.load(args.model)
    # Two-pass first (its counts matter most and one-pass is slow); the grid shows one-pass on top.
    ways = [(f"two-pass {s:g}", "two-pass", s) for s in args.refine] + (
        [("one-pass tiled", "tiled", 0.4)] if not args.no_tiled else []
    )
    for size in args.sizes:
        print(f"\n{args.prompt!r} at {size}x{size}, {args.seeds} seeds, {args.steps} steps")
        rows = []
        times: dict[str, float] = {}
        for label, large, strength in ways:
            images, counts, seconds = [], [], []
            n_seeds = args.seeds if large != "tiled" else (args.tiled_seeds or args.seeds)
            for seed in range(args.first_seed, args.first_seed + n_seeds):
                request = GenerationRequest(
                    prompt=args.prompt,
                    width=size,
                    height=size,
                    steps=args.steps,
                    seed=seed,
                    model=args.model,
                    large_frame=large,
                    refine_strength=strength,
                )
                image, elapsed = generate(engine, request)
                images.append(image)
                counts.append(count_horizons(image))
                seconds.append(elapsed)
                if args.save:
                    Path(args.save).mkdir(parents=True, exist_ok=True)
                    name = f"{size}-{label.replace(' ', '_')}-{seed}.png"
                    Image.fromarray(image).save(Path(args.save) / name)
                print(f"    {label} seed {seed}: {counts[-1]} horizon(s), {elapsed:.1f} s", flush=True)
            hist = {n: counts.count(n) for n in sorted(set(counts))}
            one = counts.count(1) / len(counts)
            times[label] = float(np.mean(seconds))
            print(
                f"  {label:16s} horizons {hist}  exactly one: {one:.0%}  "
                f"mean {np.mean(counts):.2f}  time {times[label]:.2f} s/frame",
                flush=True,
            )
            rows.append((label, images, counts))
        if "one-pass tiled" in times:
            for label, t in times.items():
                if label != "one-pass tiled":
                    print(f"  time {label} / one-pass: {t / times['one-pass tiled']:.2f}")
        if args.grid:
            grid = Path(args.grid)
            rows = rows[-1:] + rows[:-1] if not args.no_tiled else rows
            save_grid(grid.with_name(f"{grid.stem}-{size}{grid.suffix}"), rows, min(size, 128))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Object count on large frames: does a prompt naming one object still give one object at 2x the
model's native size when the frame is composed, then refined (issue 15)?

    python -m bench.objects [--seeds 20] [--steps 10] [--size 256] [--grid PATH.png]

For each prompt and seed the built-in model draws the frame at its native 128 px and at ``--size``
two-pass (and, with ``--tiled``, one-pass tiled), and :func:`count_objects` counts the named object:
connected blobs of the object's colour as the built-in model's training renderer paints it
(``tools.builtin_model.scenes.COLORS``), at least ``MIN_AREA`` of the frame. Printed per prompt and
size: the count distribution and the one-object rate.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.coherence import save_grid
from tools.builtin_model.scenes import COLORS

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (prompt, object colour): the training captions' own phrasing ("a COLOUR KIND in the center",
# then the setting); colours far from the setting's so the blobs separate.
PROMPTS = [
    ("a yellow triangle in the center, black background", "yellow"),
    ("a red circle in the center, white background", "red"),
    ("a red house in the center, blue sky, hills", "red"),
]
# A pixel is the object's colour when that is the nearest palette colour and within this RGB distance
# of it (the model's colours drift by 20-50 from the renderer's).
COLOUR_DISTANCE = 80.0
# A blob smaller than this share of the frame is a speck, not an object: the renderer's smallest
# shape (22 px in a 128 px crop) is 3 % of it, a house's window or door far less.
MIN_AREA = 0.004


def _components(mask: np.ndarray) -> list[int]:
    """Sizes of the 4-connected components of a boolean mask (numpy only: no OpenCV here)."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    sizes = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, size = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        sizes.append(size)
    return sizes


def count_objects(image: np.ndarray, colour: str) -> int:
    """Blobs of ``colour`` (a name in the renderer's palette) covering at least MIN_AREA of the image."""
    rgb = image[..., :3].astype(np.float32)
    names = list(COLORS)
    palette = np.asarray([COLORS[n] for n in names], np.float32)
    distance = np.linalg.norm(rgb[:, :, None, :] - palette[None, None], axis=3)
    # The colour's pixels: nearest to it of the whole palette (orange is not yellow) and close to it.
    mask = (distance.argmin(axis=2) == names.index(colour)) & (distance.min(axis=2) < COLOUR_DISTANCE)
    min_px = MIN_AREA * mask.size
    return sum(1 for size in _components(mask) if size >= min_px)


def _generate(engine, request) -> tuple[np.ndarray, float]:
    from canvas_app.engine.api import CancelToken, Finished

    events: list = []
    start = time.perf_counter()
    engine.generate(request, events.append, CancelToken())
    if not isinstance(events[-1], Finished):
        raise SystemExit(f"run failed: {events[-1]}")
    return events[-1].candidates[0], time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tiled", action="store_true", help="also one-pass tiled at --size")
    parser.add_argument("--prompts", type=int, nargs="+", help="indices into PROMPTS (default: all)")
    parser.add_argument("--grid", help="PNG of every result, one row per prompt and way")
    parser.add_argument("--save", help="folder for every result as PNG")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from canvas_app.engine.api import GenerationRequest
    from canvas_app.engine.local import LocalDiffusersEngine

    engine = LocalDiffusersEngine(device="cpu", previews=False)
    engine.load("builtin")
    ways = [("128", 128, "two-pass"), (f"{args.size} two-pass", args.size, "two-pass")]
    if args.tiled:
        ways.append((f"{args.size} one-pass", args.size, "tiled"))
    rows = []
    chosen = [PROMPTS[i] for i in args.prompts] if args.prompts else PROMPTS
    for prompt, colour in chosen:
        print(f"\n{prompt!r} ({colour} blobs), {args.seeds} seeds, {args.steps} steps", flush=True)
        for label, size, large in ways:
            images, counts, seconds = [], [], []
            for seed in range(args.seeds):
                request = GenerationRequest(
                    prompt=prompt, width=size, height=size, steps=args.steps, seed=seed, large_frame=large
                )
                image, elapsed = _generate(engine, request)
                images.append(image)
                counts.append(count_objects(image, colour))
                seconds.append(elapsed)
                if args.save:
                    out = Path(args.save)
                    out.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(image).save(out / f"{prompt[:20].replace(' ', '_')}-{label}-{seed}.png")
            hist = {n: counts.count(n) for n in sorted(set(counts))}
            print(
                f"  {label:14s} objects {hist}  exactly one: {counts.count(1) / len(counts):.0%}  "
                f"({np.mean(seconds):.1f} s/frame)",
                flush=True,
            )
            rows.append((f"{prompt[:22]}\n{label}", images, counts))
    if args.grid:
        save_grid(Path(args.grid), rows, cell=96, label_w=150)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

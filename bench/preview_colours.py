"""Added time per live preview of colour correction (``images.PreviewColours``) next to the
preview's own cost (``previews.Previewer.render``), CPU, one thread:
``python bench/preview_colours.py [REPEATS]`` (default 2000). Frames of 128 and 512 px, VAE factors
4 (the built-in model) and 8 (SD); "first" includes the once-per-tile downscale of the reference;
"outpaint" has empty canvas in it (a ``known`` weight to downscale and apply)."""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
import torch

from canvas_app.engine.images import PreviewColours
from canvas_app.engine.previews import SD15_BIAS, SD15_FACTORS, Previewer


def per_call_us(repeats: int, fn, *args) -> float:
    fn(*args)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    return (time.perf_counter() - start) / repeats * 1e6


def main() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = np.random.default_rng(0)
    rgb_map = np.array(SD15_FACTORS + [SD15_BIAS], dtype=np.float32)
    print("frame  factor  preview  render_us  correct_us  first_us  outpaint_us")
    for frame in (128, 512):
        reference = rng.integers(0, 256, (frame, frame, 3), dtype=np.uint8)
        known = np.ones((frame, frame), bool)
        known[:, frame // 2 :] = False
        box = (0, 0, frame, frame)
        for factor in (4, 8):
            side = frame // factor
            x0 = torch.randn(1, 4, side, side)
            previewer = Previewer(rgb_map, 0.0)
            preview = previewer.render(x0)
            render = per_call_us(repeats, previewer.render, x0)
            inside = PreviewColours(reference, None)
            correct = per_call_us(repeats, inside, preview, box)
            start = time.perf_counter()
            PreviewColours(reference, None)(preview, box)
            first = (time.perf_counter() - start) * 1e6
            outer = PreviewColours(reference, known)
            outpaint = per_call_us(repeats, outer, preview, box)
            print(
                f"{frame:5d}  {factor:6d}  {side:4d} px  {render:9.1f}  {correct:10.1f}  {first:8.1f}  {outpaint:11.1f}"
            )


if __name__ == "__main__":
    main()

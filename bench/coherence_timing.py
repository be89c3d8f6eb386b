"""Interleaved timing of one-pass tiled vs two-pass (built-in model, CPU, one thread):
``python bench/coherence_timing.py [STEPS] [SIZE] [SEEDS]`` (defaults 10, 256, 3). Runs alternate, so both ways see the same load;
CPU seconds (process time) are reported next to wall seconds."""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from canvas_app.engine.api import CancelToken, GenerationRequest
from canvas_app.engine.local import LocalDiffusersEngine


def main() -> None:
    torch.set_num_threads(1)
    engine = LocalDiffusersEngine(device="cpu", previews=False)
    engine.load("builtin")
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    times: dict[str, list[tuple[float, float]]] = {"tiled": [], "two-pass": []}
    for seed in range(seeds):
        for large in times:
            request = GenerationRequest(
                prompt="green hills under a blue sky",
                width=size,
                height=size,
                steps=steps,
                seed=100 + seed,
                large_frame=large,
            )
            cpu, wall = time.process_time(), time.perf_counter()
            engine.generate(request, lambda _event: None, CancelToken())
            times[large].append((time.process_time() - cpu, time.perf_counter() - wall))
            print(large, seed, times[large][-1], flush=True)
    for large, values in times.items():
        print(
            f"{large}: CPU s {np.mean([c for c, _ in values]):.2f}, wall s {np.mean([w for _, w in values]):.1f}"
        )
    ratio = np.mean([c for c, _ in times["two-pass"]]) / np.mean([c for c, _ in times["tiled"]])
    print(f"CPU ratio two-pass / one-pass: {ratio:.2f}")


if __name__ == "__main__":
    main()

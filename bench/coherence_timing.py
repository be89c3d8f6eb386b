"""Interleaved timing of one-pass tiled vs two-pass at 256x256 (built-in model, CPU, one thread):
``python bench/coherence_timing.py [STEPS]``. Runs alternate, so both ways see the same load;
CPU seconds (process time) are reported next to wall seconds."""

import sys
import time

import torch

torch.set_num_threads(1)
from canvas_app.engine.api import CancelToken, GenerationRequest
from canvas_app.engine.local import LocalDiffusersEngine

e = LocalDiffusersEngine(device="cpu", previews=False)
e.load("builtin")
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
t = {"tiled": [], "two-pass": []}
for seed in range(3):
    for large in ("tiled", "two-pass"):
        r = GenerationRequest(
            prompt="green hills under a blue sky",
            width=256,
            height=256,
            steps=steps,
            seed=100 + seed,
            large_frame=large,
        )
        ev = []
        s = time.process_time()
        w = time.perf_counter()
        e.generate(r, ev.append, CancelToken())
        t[large].append((time.process_time() - s, time.perf_counter() - w))
        print(large, seed, t[large][-1], flush=True)
import numpy as np

for k, v in t.items():
    print(k, "cpu s", np.mean([a for a, _ in v]), "wall s", np.mean([b for _, b in v]))
print(
    "ratio cpu two-pass/one-pass",
    np.mean([a for a, _ in t["two-pass"]]) / np.mean([a for a, _ in t["tiled"]]),
)

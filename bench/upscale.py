"""Upscale x2 / x4 (issue 15): memory peak vs one tile's, and the refinement strength.

    python -m bench.upscale memory [--sizes 256:2 256:4 512:4]
    python -m bench.upscale strength [--strengths 0.2 0.3 0.4 0.5] [--grid PATH.png]

**memory**: every measurement runs in a fresh subprocess (so one run's freed memory cannot hide the
next one's). The child loads the built-in model, warms it up with one 1-step 128 px run, resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``), notes its RSS, runs the job, and reports VmHWM
minus that RSS: the memory the job itself added at its peak. The reference job is one tile: a
128x128 img2img (the model's native size, one UNet tile, one VAE call); the warm-up runs at 64 px. Steps do not change the
peak (one step holds what every step holds), so the upscales run ``--steps 4`` at strength 0.3
(1 denoising step over every tile). A second reference, one VAE tile: a 256x256 img2img (the VAE
encodes and decodes in tiles of at least 256 px, ``engine.images._vae_tile``). The children run
with ``MALLOC_MMAP_THRESHOLD_=131072`` so that freed blocks leave the RSS.

**strength**: a 128 px picture from the built-in model, upscaled x2 at each strength (same seed);
printed per strength: how far the result moves from the plain Lanczos upscale (mean absolute
difference, 0-255) and how much fine detail it adds (mean absolute Laplacian, the Lanczos upscale's
for reference), and a grid to look at.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "a red house in the center, blue sky, hills"


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _engine():
    import torch

    from canvas_app.engine.local import LocalDiffusersEngine

    torch.set_num_threads(1)
    engine = LocalDiffusersEngine(device="cpu", previews=False)
    engine.load("builtin")
    return engine


def _run(engine, request) -> np.ndarray:
    from canvas_app.engine.api import CancelToken, Finished

    events: list = []
    engine.generate(request, events.append, CancelToken())
    if not isinstance(events[-1], Finished):
        raise SystemExit(f"run failed: {events[-1]}")
    return events[-1].candidates[0]


def _picture(engine, size: int, seed: int = 0) -> np.ndarray:
    from canvas_app.engine.api import GenerationRequest

    return _run(engine, GenerationRequest(prompt=PROMPT, width=size, height=size, steps=10, seed=seed))


def child(job: str, steps: int) -> None:
    """One measurement (in its own process): prints a JSON line."""
    import time

    from PIL import Image

    from canvas_app.core.upscale import upscale_request
    from canvas_app.engine.api import GenerationRequest, Mode

    engine = _engine()
    rng = np.random.default_rng(0)
    # Warm-up (lazy initialisation) at 64 px: smaller than any job, so it pre-grows nothing.
    _run(engine, GenerationRequest(prompt=PROMPT, width=64, height=64, steps=1, seed=1))
    if job.startswith("decode"):  # the VAE decode alone: decode:SIZE (band-wise) or decode-old:SIZE
        _decode_job(engine, job)
        return
    if job in ("tile", "vae"):
        side = 128 if job == "tile" else 256
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        request = GenerationRequest(
            prompt=PROMPT, mode=Mode.IMG2IMG, width=side, height=side, init_image=image,
            steps=steps, strength=0.3, seed=2, large_frame="tiled",
        )  # fmt: skip
    else:
        size, scale = (int(v) for v in job.split(":"))
        noise = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(noise).resize((size, size)))  # smooth, like a picture
        request = upscale_request(image, scale, prompt=PROMPT, steps=steps, seed=2)
    del image
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    base = _rss_kib("VmRSS")
    start = time.perf_counter()
    _run(engine, request)
    peak = _rss_kib("VmHWM")
    print(json.dumps({"job": job, "added_mib": (peak - base) / 1024, "base_mib": base / 1024,
                      "seconds": time.perf_counter() - start}))  # fmt: skip


def _decode_job(engine, job: str) -> None:
    """Peak of decoding SIZE x SIZE pixels from random latents: with the engine's band-wise decode,
    or (``decode-old``) with the whole-image float blend and conversion the engine used before."""
    import time

    import torch

    from canvas_app.engine import images
    from canvas_app.engine.tiling import tiled_map

    kind, size = job.split(":")
    model = engine.load("builtin")
    f = model.vae_factor
    z = torch.randn(
        1, model.latent_channels, int(size) // f, int(size) // f, generator=torch.Generator().manual_seed(0)
    )
    Path("/proc/self/clear_refs").write_text("5")
    base = _rss_kib("VmRSS")
    start = time.perf_counter()
    with torch.inference_mode():
        if kind == "decode":
            images.decode(model, z, model.native_size)
        else:
            vae = model.vae
            edge, overlap = images._vae_tile(model, model.native_size)
            x = tiled_map(
                z / float(vae.config.scaling_factor), lambda t: vae.decode(t).sample, edge, overlap, f, True
            )
            ((x[0].float().clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    peak = _rss_kib("VmHWM")
    print(json.dumps({"job": job, "added_mib": (peak - base) / 1024, "base_mib": base / 1024,
                      "seconds": time.perf_counter() - start}))  # fmt: skip


def memory(sizes: list[str], steps: int) -> None:
    results = []
    jobs = sizes if all(j.startswith("decode") for j in sizes) else ["tile", "vae", *sizes]
    for job in jobs:
        out = (
            subprocess.run(
                [sys.executable, "-m", "bench.upscale", "child", job, "--steps", str(steps)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        results.append(json.loads(out))
        print(out, flush=True)
    tile = results[0]["added_mib"] if results[0]["job"] == "tile" else 1.0
    print(f"\n{'job':12s} {'peak added MiB':>15s} {'vs one tile':>12s} {'seconds':>8s}")
    for r in results:
        names = {"tile": "one tile", "vae": "one VAE tile"}
        name = names.get(r["job"]) or r["job"]
        print(f"{name:12s} {r['added_mib']:15.1f} {r['added_mib'] / tile:12.2f} {r['seconds']:8.1f}")
    print(f"(model loaded and warmed up: {results[0]['base_mib']:.0f} MiB RSS)")


def strength_sweep(strengths: list[float], seeds: int, steps: int, grid: str | None) -> None:
    from PIL import Image, ImageDraw

    from canvas_app.core.upscale import lanczos, upscale_request

    engine = _engine()
    rows = []
    for seed in range(seeds):
        small = _picture(engine, 128, seed)
        plain = lanczos(small, 2)
        row = [("lanczos", plain)]
        for s in strengths:
            request = upscale_request(small, 2, prompt=PROMPT, strength=s, steps=steps, seed=seed)
            row.append((f"{s:g}", _run(engine, request)))
        rows.append(row)
        for label, image in row:
            diff = np.abs(image.astype(np.int16) - plain.astype(np.int16)).mean()
            grey = image.astype(np.float32).mean(axis=2)
            lap = np.abs(
                4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
            )
            print(f"seed {seed} {label:8s} moved {diff:5.1f}  detail {lap.mean():5.2f}", flush=True)
    if grid:
        cell = 256
        img = Image.new("RGB", (len(rows[0]) * (cell + 2), len(rows) * (cell + 14)), "white")
        draw = ImageDraw.Draw(img)
        for r, row in enumerate(rows):
            for c, (label, image) in enumerate(row):
                img.paste(Image.fromarray(image), (c * (cell + 2), r * (cell + 14)))
                draw.text((c * (cell + 2) + 2, r * (cell + 14) + cell), label, fill="black")
        Path(grid).parent.mkdir(parents=True, exist_ok=True)
        img.save(grid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory")
    mem.add_argument("--sizes", nargs="+", default=["128:2", "128:4", "256:4"], help="SIZE:SCALE")
    mem.add_argument("--steps", type=int, default=4)
    one = sub.add_parser("child")
    one.add_argument("job")
    one.add_argument("--steps", type=int, default=4)
    sweep = sub.add_parser("strength")
    sweep.add_argument("--strengths", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5])
    sweep.add_argument("--seeds", type=int, default=3)
    sweep.add_argument("--steps", type=int, default=10)
    sweep.add_argument("--grid")
    args = parser.parse_args(argv)
    if args.what == "memory":
        memory(args.sizes, args.steps)
    elif args.what == "child":
        child(args.job, args.steps)
    else:
        strength_sweep(args.strengths, args.seeds, args.steps, args.grid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

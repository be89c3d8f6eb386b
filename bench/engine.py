"""Benchmark of the generation engine against a bare diffusers pipeline call.

Run from the repository root: ``python -m bench.engine`` (``--model PATH`` for another diffusers
folder; by default the built-in model, or a tiny random model when that is not installed;
``--device cuda`` etc.). Prints, side by side on the same model, size, steps, seed and scheduler:

- our engine (previews on every step) vs ``pipe(...)``: overhead ratio (goal <= 1.05);
- preview cost per step, as a share of the step time;
- time from request to the first preview;
- cancel latency in steps (cancel requested while step k is reported);
- tiled (4x native width) vs single-tile cost per pixel.

Times are CPU seconds of this process (``time.process_time``) on the CPU, where the machine may be
shared, and wall seconds on an accelerator (after synchronising it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _clock(device: str) -> Any:
    if device.startswith("cuda"):
        import torch

        def wall() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()

        return wall
    return time.process_time


def _tiny_model(root: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "engine"))
    from tiny_models import build_pipeline

    return str(build_pipeline(root / "tiny", vae_factor=4, unet_channels=4))


def _median(fn: Any, clock: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="diffusers folder (default: built-in, else a tiny random model)")
    parser.add_argument("--device", default=None, help="cuda, cpu, mps (+ :fp16/:fp32)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scheduler", default="Euler")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: CPU time is stable)")
    args = parser.parse_args(argv)

    import torch

    # Idle OpenMP threads spin and bill CPU time unevenly on a busy machine; one thread keeps the
    # CPU-time comparison fair.
    torch.set_num_threads(args.threads)

    from canvas_app.engine.api import Cancelled, CancelToken, Finished, GenerationRequest, Progress
    from canvas_app.engine.builtin_weights import from_pretrained
    from canvas_app.engine.local import LocalDiffusersEngine
    from canvas_app.engine.models import builtin_model_dir
    from canvas_app.engine.previews import Previewer
    from canvas_app.engine.schedulers import make_scheduler

    tmp = tempfile.TemporaryDirectory()
    if args.model:
        model = args.model
    elif (builtin_model_dir() / "model_index.json").is_file():
        model = str(builtin_model_dir())
    else:
        model = _tiny_model(Path(tmp.name))
    engine = LocalDiffusersEngine(device=args.device, preview_interval_s=0.0)
    device = engine.device()
    clock = _clock(device.device)
    loaded = engine.load(model)
    size = loaded.native_size
    steps = args.steps
    request = GenerationRequest(
        prompt="a house by a lake under a blue sky",
        negative_prompt="blurry",
        width=size,
        height=size,
        steps=steps,
        seed=1,
        guidance=5.0,
        scheduler=args.scheduler,
        model=model,
    )
    print(f"model: {model} ({loaded.source.name}), native {size}px, VAE factor {loaded.vae_factor}")
    print(
        f"device: {engine.describe_device()}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
        f"steps {steps}, scheduler {args.scheduler}"
    )
    print(f"clock: {'wall seconds (synchronised)' if device.device.startswith('cuda') else 'CPU seconds'}")

    # 1. Bare diffusers pipeline on the same components' files, same device and dtype.
    from diffusers import DiffusionPipeline

    bare = from_pretrained(DiffusionPipeline, model, device.dtype, local_files_only=True)
    bare.to(device.device)
    bare.set_progress_bar_config(disable=True)
    bare.scheduler, _ = make_scheduler(args.scheduler, dict(bare.scheduler.config))

    def run_bare() -> None:
        generator = torch.Generator("cpu").manual_seed(1)
        bare(
            request.prompt,
            negative_prompt=request.negative_prompt,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=request.guidance,
            generator=generator,
            output_type="np",
        )

    def run_ours(req: GenerationRequest = request) -> list[Any]:
        events: list[Any] = []
        engine.generate(req, events.append, CancelToken())
        assert isinstance(events[-1], Finished), events[-1]
        return events

    no_preview = LocalDiffusersEngine(device=args.device, previews=False)
    no_preview._cache = engine._cache  # share the loaded model

    def run_no_preview() -> None:
        events: list[Any] = []
        no_preview.generate(request, events.append, CancelToken())

    run_bare()
    run_ours()  # warm-up (and the preview map fit)
    # Interleaved, so a change in the machine's load hits all three alike.
    samples: dict[str, list[float]] = {"bare": [], "ours": [], "off": []}
    for _ in range(args.repeat):
        for key, fn in (("bare", run_bare), ("ours", run_ours), ("off", run_no_preview)):
            samples[key].append(_median(fn, clock, 1))
    t_bare, t_ours, t_nopreview = (statistics.median(samples[k]) for k in ("bare", "ours", "off"))

    # 2. Preview cost: x0 + map + copy to the host, at one tile's latent size.
    with torch.inference_mode():
        lat = torch.randn(
            1,
            loaded.latent_channels,
            size // loaded.vae_factor,
            size // loaded.vae_factor,
            device=loaded.unet.device,
            dtype=loaded.unet.dtype,
        )
        previewer = Previewer(loaded.extras["rgb_map"], 0.0)
        n = 50
        start = clock()
        for _ in range(n):
            previewer.render((lat - 0.5 * lat) / 0.9)
        t_preview = (clock() - start) / n
    t_step = t_ours / steps

    # 3. Time to first preview (wall clock: what the artist waits).
    first: list[float] = []
    t0, c0 = time.perf_counter(), clock()

    def on_first(event: Any) -> None:
        if isinstance(event, Progress) and event.preview is not None and not first:
            first.extend([time.perf_counter() - t0, clock() - c0])

    engine.generate(request, on_first, CancelToken())

    # 4. Cancel latency: cancel while step k is reported; count the steps reported after it.
    latencies = []
    for k in (1, steps // 2):
        token = CancelToken()
        seen: list[int] = []
        end: list[Any] = []

        def on_event(
            event: Any, k: int = k, token: CancelToken = token, seen: list[int] = seen, end: list[Any] = end
        ) -> None:
            if isinstance(event, Progress):
                seen.append(event.step)
                if event.step == k:
                    token.cancel()
            elif isinstance(event, Cancelled):
                end.append(event)

        engine.generate(request, on_event, token)
        latencies.append(max(seen) - k if end else float("nan"))

    # 5. Tiled vs single tile, per pixel: 4x the native width.
    wide = request.with_changes(width=4 * size)
    tiles = run_ours(wide)[0].tiles
    t_wide = _median(lambda: run_ours(wide), clock, max(1, args.repeat - 1))

    rows = [
        ("bare diffusers pipeline, s per image", f"{t_bare:.3f}"),
        ("our engine, previews every step, s per image", f"{t_ours:.3f}"),
        ("our engine, previews off, s per image", f"{t_nopreview:.3f}"),
        ("overhead ratio (ours with previews / bare)", f"{t_ours / t_bare:.3f}"),
        ("overhead ratio (ours without previews / bare)", f"{t_nopreview / t_bare:.3f}"),
        ("preview cost per step, share of step time", f"{100 * t_preview / t_step:.2f} %"),
        (
            "request to first preview, s (model loaded)",
            f"{first[1]:.3f} ({first[0]:.3f} wall)" if first else "none",
        ),
        ("cancel latency in steps (cancel at step 1, at step n/2)", ", ".join(f"{v:g}" for v in latencies)),
        (f"tiled 4x wide ({tiles} tiles) vs single tile, cost per pixel", f"{(t_wide / 4) / t_ours:.3f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

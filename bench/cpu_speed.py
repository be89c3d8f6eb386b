"""CPU speed and memory: our engine (automatic precision) vs a bare diffusers call in fp32.

Run from the repository root: ``python -m bench.cpu_speed`` (``--skip-sd15`` leaves out the heavy SD
1.5-shaped model, ``--skip-compile`` the torch.compile probe, ``--only NAME`` runs one part:
gen, unet, threads, compile, quality, sdxl, memory). Every measurement runs in its own subprocess so that its peak
resident memory (VmHWM) is its own; runs that are compared are interleaved (ours, bare, ours, ...)
so a change in the machine's load hits them alike, and the ratios are the figures to quote.

Parts:
- gen: same model, size, steps (Euler, guidance 5), seed: our engine with the automatic choice,
  our engine forced to cpu:bf16, and ``DiffusionPipeline.__call__`` in fp32 (what A1111 --no-half
  and ComfyUI --cpu do). Cases: the built-in model at 128 px (native), at 512 px (ours tiled, the
  bare call one 512 px pass), and an SD 1.5-shaped model with random weights built from the shipped
  config at 512 px, 2 steps.
- unet: one UNet call with guidance (batch 2): fp32, fp32 channels_last, bf16 autocast, bf16
  weights, fp32 on one thread; relative squared error of the bf16 outputs.
- threads: the eager built-in UNet with 1 and 2 torch threads, under OpenMP's default wait policy
  (spin), OMP_WAIT_POLICY=PASSIVE (what the engine sets) and a short GOMP_SPINCOUNT.
- compile: torch.compile (inductor) of the UNet at a fixed tile shape (the built-in model's 128 px
  tile: a 512 px frame is 25 of them; ``--skip-sd15`` leaves out an SD 1.5-shaped UNet at 256 px):
  the first call (the compile, cold cache), eager channels_last, steady state against eager, and
  the first call again in a new process with the cache warm.
- quality: the built-in model in fp32 and in bf16 for the same seeds, PSNR, and the side-by-side
  image docs/images/bf16_vs_fp32.png; also a bf16 VAE decode and bf16 latents, to justify keeping
  those fp32.
- sdxl: SDXL-shaped parameter counts (built on the meta device: no weights allocated) and the
  weights' memory in fp32 and bf16.
- memory: peak resident memory of loading an SD 1.5- and an SDXL-shaped model (random weights,
  fp16 on disk; the SDXL folder, 6.5 GB, is built once in ``--sdxl-dir``) through our engine with
  cpu:fp32 and cpu:bf16, one subprocess each (fp32 SDXL only with 15 GB available).

This file is the command line; the parts live in cpu_speed_report.py (what each part runs and
prints), cpu_speed_workers.py (the measurements, one process each), cpu_speed_models.py (the SD 1.5-
and SDXL-shaped folders) and cpu_speed_util.py (paths, memory, running a worker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from bench.cpu_speed_models import build_sd15
from bench.cpu_speed_report import (
    PARTS,
    part_compile,
    part_gen,
    part_memory,
    part_quality,
    part_sdxl,
    part_threads,
    part_unet,
)
from bench.cpu_speed_util import load_average
from bench.cpu_speed_workers import WORKERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=PARTS, help="run one part")
    parser.add_argument("--skip-sd15", action="store_true", help="leave out the SD 1.5-shaped model")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument(
        "--forced-bf16", action="store_true", help="also time cpu:bf16 runs (slow without native bf16)"
    )
    parser.add_argument(
        "--gen-compile", action="store_true", help="gen: also our engine with --compile (steady state)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--sd15-dir", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "canvas-bench-sd15")
    )
    parser.add_argument(
        "--sdxl-dir", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "canvas-bench-sdxl")
    )
    parser.add_argument("--skip-sdxl", action="store_true", help="memory: leave out the SDXL-shaped model")
    parser.add_argument("--case", choices=("128", "512", "512-sd15"), help="gen: run one case")
    parser.add_argument("--threads", type=int, help="torch threads in every measurement (OMP_NUM_THREADS)")
    opts = parser.parse_args(argv)
    if opts.threads:
        # On a machine shared with other jobs, idle OpenMP threads spin waiting for a descheduled
        # partner; one thread keeps the comparisons fair there.
        os.environ["OMP_NUM_THREADS"] = str(opts.threads)
    if opts.worker:
        if os.environ.get("CANVAS_BENCH_OOM_FIRST"):
            Path("/proc/self/oom_score_adj").write_text("1000")
        print(json.dumps(WORKERS[opts.worker](json.loads(opts.args or "{}"))), flush=True)
        return 0

    import torch

    from canvas_app.engine.devices import cpu_flags, native_bf16_flag
    from canvas_app.engine.models import builtin_model_dir

    builtin = str(builtin_model_dir())
    sd15 = None if opts.skip_sd15 else str(build_sd15(Path(opts.sd15_dir)))
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), native bf16: {native_bf16_flag(cpu_flags()) or 'no'}, "
        f"torch threads {torch.get_num_threads()}, load {load_average()}"
    )
    parts = [opts.only] if opts.only else list(PARTS)
    for part in parts:
        if part == "gen":
            part_gen(builtin, sd15, opts.repeat, opts.forced_bf16, opts.case, opts.gen_compile)
        elif part == "unet":
            part_unet(builtin, sd15, opts.repeat)
        elif part == "compile" and not opts.skip_compile:
            part_compile(builtin, sd15, opts.repeat)
        elif part == "threads":
            part_threads(builtin, opts.repeat)
        elif part == "quality":
            part_quality(builtin)
        elif part == "sdxl":
            part_sdxl()
        elif part == "memory":
            part_memory(sd15, None if opts.skip_sdxl else opts.sdxl_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

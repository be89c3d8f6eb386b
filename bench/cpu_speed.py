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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "canvas_app" / "engine" / "configs"
PROMPT, NEGATIVE = "a house by a lake under a blue sky", "blurry"


# -- helpers ----------------------------------------------------------------------------------------
def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident memory in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def build_sd15(folder: Path) -> Path:
    """An SD 1.5-shaped diffusers folder (shipped v1 configs, random weights, fp16 on disk like most
    distributions), built once and reused."""
    if (folder / "model_index.json").is_file():
        return folder
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from canvas_app.engine.clip_vocab import clip_tokenizer

    torch.manual_seed(0)
    v1 = CONFIGS / "v1"
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(v1 / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(v1 / "vae"))
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(v1 / "text_encoder"))
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(v1 / "scheduler"))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(dtype=torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_sdxl(folder: Path) -> Path:
    """An SDXL-shaped diffusers folder (shipped xl_base configs, random weights, fp16 on disk: 6.9 GB),
    built once and reused. The weights are created in fp16 directly, so building needs ~7 GB, not 14."""
    if (folder / "model_index.json").is_file():
        return folder
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from canvas_app.engine.clip_vocab import clip_tokenizer

    torch.manual_seed(0)
    xl = CONFIGS / "xl_base"
    kept = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(xl / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(xl / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(xl / "text_encoder"))
        text_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(xl / "text_encoder_2"))
    finally:
        torch.set_default_dtype(kept)
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(xl / "scheduler"))
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text,
        text_encoder_2=text_2,
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(pad_token="!"),
        unet=unet,
        scheduler=scheduler,
    )
    pipe.to(dtype=torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def run_worker(
    kind: str,
    args: dict[str, Any],
    threads: int | None = None,
    env_extra: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; returns its JSON result."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for key, value in (env_extra or {}).items():  # None: unset
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "bench.cpu_speed", "--worker", kind, json.dumps(args)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kind} {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- workers (each in its own process) -----------------------------------------------------------
def worker_gen(a: dict[str, Any]) -> dict[str, Any]:
    """Generate a.size px for a.steps steps, a.repeat times (after a.warmup untimed runs)."""
    import torch

    base = rss_mb("VmRSS")
    if a["who"] == "bare":
        from diffusers import DiffusionPipeline

        from canvas_app.engine.models import dtype_kwarg
        from canvas_app.engine.schedulers import make_scheduler

        pipe = DiffusionPipeline.from_pretrained(
            a["model"], local_files_only=True, **{dtype_kwarg(): torch.float32}
        )
        pipe.set_progress_bar_config(disable=True)
        pipe.scheduler, _ = make_scheduler("Euler", dict(pipe.scheduler.config))
        describe = "diffusers pipeline, float32"

        def once() -> None:
            pipe(
                PROMPT,
                negative_prompt=NEGATIVE,
                height=a["size"],
                width=a["size"],
                num_inference_steps=a["steps"],
                guidance_scale=5.0,
                generator=torch.Generator("cpu").manual_seed(1),
                output_type="np",
            )
    else:
        from canvas_app.engine.api import CancelToken, Finished, GenerationRequest
        from canvas_app.engine.local import LocalDiffusersEngine

        engine = LocalDiffusersEngine(
            device=a.get("device"), preview_interval_s=0.1, compile=bool(a.get("compile", False))
        )
        engine.load(a["model"])
        describe = engine.describe_device()
        request = GenerationRequest(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            width=a["size"],
            height=a["size"],
            steps=a["steps"],
            seed=1,
            guidance=5.0,
            scheduler="Euler",
            model=a["model"],
        )

        def once() -> None:
            events: list[Any] = []
            engine.generate(request, events.append, CancelToken())
            assert isinstance(events[-1], Finished), events[-1]

    loaded = rss_mb("VmRSS")
    if a.get("load_only"):
        return {"device": describe, "rss_loaded_mb": loaded, "peak_mb": rss_mb()}
    for _ in range(a.get("warmup", 0)):
        once()
    walls, cpus = [], []
    for _ in range(a.get("repeat", 1)):
        w, c = time.perf_counter(), time.process_time()
        once()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {
        "device": describe,
        "threads": torch.get_num_threads(),
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "rss_base_mb": base,
        "rss_loaded_mb": loaded,
        "peak_mb": rss_mb(),
    }


def _unet_inputs(model: str, size: int, batch: int = 2) -> tuple[Any, Any, Any, Any]:
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=torch.float32).eval()
    factor = 2 ** (
        len(json.loads((Path(model) / "vae" / "config.json").read_text())["block_out_channels"]) - 1
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, unet.config.in_channels, size // factor, size // factor, generator=g)
    ctx = torch.randn(batch, 77, unet.config.cross_attention_dim, generator=g)
    return unet, x, torch.tensor(500), ctx


def worker_unet(a: dict[str, Any]) -> dict[str, Any]:
    """One UNet call with guidance (batch 2) per variant, interleaved, median of a.repeat."""
    import copy

    import torch

    unet, x, t, ctx = _unet_inputs(a["model"], a["size"])
    with_bf16 = a.get("bf16", True)
    bf16 = copy.deepcopy(unet).to(torch.bfloat16) if with_bf16 else None
    cl = copy.deepcopy(unet).to(memory_format=torch.channels_last)
    threads = torch.get_num_threads()

    def fp32() -> Any:
        return unet(x, t, encoder_hidden_states=ctx).sample

    def fp32_cl() -> Any:
        return cl(x.contiguous(memory_format=torch.channels_last), t, encoder_hidden_states=ctx).sample

    def autocast() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return unet(x, t, encoder_hidden_states=ctx).sample.float()

    def weights() -> Any:
        assert bf16 is not None
        return bf16(x.bfloat16(), t, encoder_hidden_states=ctx.bfloat16()).sample.float()

    def one_thread() -> Any:
        torch.set_num_threads(1)
        try:
            return fp32()
        finally:
            torch.set_num_threads(threads)

    variants = {"fp32": fp32, "fp32 channels_last": fp32_cl}
    if with_bf16:
        variants.update({"bf16 autocast": autocast, "bf16 weights": weights})
    if threads > 1 and a.get("one_thread", True):
        variants["fp32, 1 thread"] = one_thread
    times: dict[str, list[float]] = {k: [] for k in variants}
    outs: dict[str, Any] = {}
    with torch.inference_mode():
        for k, fn in variants.items():  # warm-up (oneDNN primitive creation), keep the output
            outs[k] = fn().float()
        for _ in range(a.get("repeat", 1)):
            for k, fn in variants.items():
                start = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - start)
    ref = outs["fp32"]
    rse = {k: float(((o - ref) ** 2).sum() / (ref**2).sum()) for k, o in outs.items()}
    params = sum(p.numel() for p in unet.parameters())
    return {
        "threads": threads,
        "params": params,
        "times": {k: statistics.median(v) for k, v in times.items()},
        "rse": rse,
    }


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (inductor runs gcc in subprocesses)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def worker_compile(a: dict[str, Any]) -> dict[str, Any]:
    """torch.compile (inductor) of the UNet at one fixed tile shape, against eager, in one process.

    Variants: eager, eager channels_last, inductor (fixed shapes, as the engine compiles), and on
    request inductor with ``freezing`` (weights folded in as constants, pre-packed for oneDNN). Each
    compiled variant's first call (the compile, wall and CPU incl. gcc) is timed alone; then all
    variants are called in turn a.repeat times (median). ``first_only``: just the first calls (run
    again with the same TORCHINDUCTOR_CACHE_DIR, this is the cost with a warm cache).
    """
    import copy

    import torch

    unet, x, t, ctx = _unet_inputs(a["model"], a["size"], a.get("batch", 2))
    cl = copy.deepcopy(unet).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    # "inductor freezing" (weights folded in and pre-packed for oneDNN) is a second full compile:
    # asked for by name only.
    wanted = a.get("variants", ["inductor"])
    calls = {
        "eager": lambda: unet(x, t, encoder_hidden_states=ctx).sample,
        "eager channels_last": lambda: cl(x_cl, t, encoder_hidden_states=ctx).sample,
    }
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "first_call": {}, "rse": {}}
    with torch.inference_mode():
        ref = calls["eager"]()
        calls["eager channels_last"]()  # oneDNN primitive creation, outside the timing
        for name in wanted:
            # Options are taken when torch.compile is called (a config patch around the first
            # call is not seen), and they are part of the cache key.
            options = {"freezing": True} if "freezing" in name else None
            compiled = torch.compile(copy.deepcopy(unet), dynamic=False, options=options)
            w, c = time.perf_counter(), _cpu_s()
            result = compiled(x, t, encoder_hidden_states=ctx).sample
            out["first_call"][name] = {"wall": time.perf_counter() - w, "cpu": _cpu_s() - c}
            out["rse"][name] = float(((result - ref) ** 2).sum() / (ref**2).sum())
            calls[name] = lambda compiled=compiled: compiled(x, t, encoder_hidden_states=ctx).sample
        if a.get("first_only"):
            return out
        times: dict[str, list[float]] = {k: [] for k in calls}
        cpu: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(a.get("repeat", 5)):  # interleaved, so a change of load hits all alike
            for k, fn in calls.items():
                s, c = time.perf_counter(), time.process_time()
                fn()
                times[k].append(time.perf_counter() - s)
                cpu[k].append(time.process_time() - c)
    out["times"] = {k: statistics.median(v) for k, v in times.items()}
    out["cpu_times"] = {k: statistics.median(v) for k, v in cpu.items()}
    return out


def worker_threads(a: dict[str, Any]) -> dict[str, Any]:
    """The eager fp32 UNet call with 1 and with 2 torch threads, interleaved: wall and CPU time."""
    import torch

    unet, x, t, ctx = _unet_inputs(a["model"], a["size"], a.get("batch", 2))
    counts = a.get("counts", [1, 2])
    times: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    with torch.inference_mode():
        for n in counts:
            torch.set_num_threads(n)
            unet(x, t, encoder_hidden_states=ctx)
        for _ in range(a.get("repeat", 5)):
            for n in counts:
                torch.set_num_threads(n)
                w, c = time.perf_counter(), time.process_time()
                unet(x, t, encoder_hidden_states=ctx)
                times[n].append((time.perf_counter() - w, time.process_time() - c))
    return {
        str(n): {"wall": statistics.median(v[0] for v in vs), "cpu": statistics.median(v[1] for v in vs)}
        for n, vs in times.items()
    }


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def worker_quality(a: dict[str, Any]) -> dict[str, Any]:
    """The built-in model, fp32 vs bf16 (our cpu:bf16: bf16 UNet and text encoder, fp32 VAE and
    latents), and a bf16 VAE alone (not adopted)."""
    import copy

    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from canvas_app.engine.api import CancelToken, Finished, GenerationRequest
    from canvas_app.engine.local import LocalDiffusersEngine

    model, size, steps = a["model"], a["size"], a["steps"]
    prompts = a["prompts"]

    def generate(engine: Any, prompt: str, seed: int) -> Any:
        events: list[Any] = []
        request = GenerationRequest(
            prompt=prompt, width=size, height=size, steps=steps, seed=seed, guidance=7.5, model=model
        )
        engine.generate(request, events.append, CancelToken())
        assert isinstance(events[-1], Finished), events[-1]
        return events[-1].candidates[0]

    fp32_engine = LocalDiffusersEngine(device="cpu:fp32", previews=False)
    bf16_engine = LocalDiffusersEngine(device="cpu:bf16", previews=False)
    rows, result = [], {"bf16": [], "bf16_vae": []}
    for i, prompt in enumerate(prompts):
        seed = 100 + i
        ref = generate(fp32_engine, prompt, seed)
        ours = generate(bf16_engine, prompt, seed)
        result["bf16"].append(psnr(ref, ours))
        rows.append((prompt, ref, ours))
        # A bf16 VAE (not adopted), alone: the fp32 UNet's latents decoded by a bf16 copy of the VAE.
        pipe = fp32_engine.load(model).pipe
        kept = pipe.vae
        pipe.vae = copy.deepcopy(kept).to(torch.bfloat16)
        try:
            result["bf16_vae"].append(psnr(ref, generate(fp32_engine, prompt, seed)))
        finally:
            pipe.vae = kept
    # The side-by-side: fp32 | bf16 | difference x8, each scaled 2x (nearest) for viewing.
    scale, pad, label_h = 2, 6, 16
    cell = size * scale
    sheet = Image.new("RGB", (3 * cell + 4 * pad, len(rows) * (cell + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (prompt, ref, ours) in enumerate(rows):
        y = pad + r * (cell + label_h + pad)
        diff = np.clip(np.abs(ref.astype(np.int16) - ours.astype(np.int16)) * 8, 0, 255).astype(np.uint8)
        for c, (img, title) in enumerate(((ref, "fp32"), (ours, "bf16"), (diff, "|difference| x8"))):
            x = pad + c * (cell + pad)
            text = f"{title}: {prompt}" if c == 0 else title
            if c == 1:
                text += f"  (PSNR {result['bf16'][r]:.1f} dB)"
            draw.text((x, y), text, fill="black")
            sheet.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (x, y + label_h))
    out = Path(a["image"])
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return {k: [round(v, 2) for v in vals] for k, vals in result.items()}


def worker_sdxl(a: dict[str, Any]) -> dict[str, Any]:
    """Parameter counts of SDXL-shaped and SD 1.5-shaped components, built on the meta device."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    out = {}
    for name, folder in (("sd15", CONFIGS / "v1"), ("sdxl", CONFIGS / "xl_base")):
        with torch.device("meta"):
            parts = {
                "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")),
                "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
                "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")),
            }
            if (folder / "text_encoder_2").is_dir():
                config = CLIPTextConfig.from_pretrained(folder / "text_encoder_2")
                parts["text_encoder_2"] = CLIPTextModelWithProjection(config)
        out[name] = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
    return out


WORKERS = {
    "gen": worker_gen,
    "unet": worker_unet,
    "compile": worker_compile,
    "threads": worker_threads,
    "quality": worker_quality,
    "sdxl": worker_sdxl,
}


PARTS = ("sdxl", "memory", "quality", "unet", "threads", "compile", "gen")


# -- the report -------------------------------------------------------------------------------------
def part_gen(
    builtin: str,
    sd15: str | None,
    repeat: int,
    forced_bf16: bool = False,
    only_case: str | None = None,
    with_compile: bool = False,
) -> None:
    ours, bare = ("ours (auto)", {"who": "ours"}), ("bare fp32", {"who": "bare"})
    forced = ("ours cpu:bf16", {"who": "ours", "device": "cpu:bf16"})
    # Without native bf16 a bf16 convolution is far slower than fp32 (oneDNN's reference kernels),
    # so the forced-bf16 run is timed only with --forced-bf16 (and only at 128 px); the unet part
    # gives its ratio in seconds.
    first = [ours, bare, forced] if forced_bf16 else [ours, bare]
    # --gen-compile: our engine with the compiled UNet too; its compile happens in an untimed
    # warm-up run (the compile part measures that cost), so these are steady-state times.
    compiled = ("ours --compile", {"who": "ours", "compile": True})
    built_in_who = [ours, bare, compiled] if with_compile else [ours, bare]
    first = first + [compiled] if with_compile else first
    cases = [("built-in, 128 px native, 20 steps", builtin, 128, 20, repeat, 1, first)]
    tiled = (
        "built-in, 512 px (ours 25 tiles), 20 steps",
        builtin,
        512,
        20,
        max(1, repeat - 1),
        1 if with_compile else 0,
        built_in_who,
    )
    cases.append(tiled)
    if sd15:
        cases.append(("SD 1.5-shaped, 512 px, 2 steps", sd15, 512, 2, 1, 0, [ours, bare]))
    loaded_bf16: set[str] = set()
    for title, model, size, steps, rep, warm, who in cases:
        if only_case and str(size) + ("-sd15" if model == sd15 else "") != only_case:
            continue
        print(f"\n## gen: {title} (load {load_average()})", flush=True)
        results: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in who}
        for _ in range(rep):  # interleaved across processes
            for key, extra in who:
                args = {"model": model, "size": size, "steps": steps, "repeat": 1, "warmup": warm, **extra}
                results[key].append(run_worker("gen", args))
                r = results[key][-1]  # as it comes: a long run's partial results are not lost
                print(
                    f"  {key}: wall {r['wall']:.2f} s, cpu {r['cpu']:.2f} s, peak {r['peak_mb']:.0f} MiB",
                    flush=True,
                )
        base_wall = statistics.median(r["wall"] for r in results["bare fp32"])
        base_cpu = statistics.median(r["cpu"] for r in results["bare fp32"])
        for key, rs in results.items():
            wall = statistics.median(r["wall"] for r in rs)
            cpu = statistics.median(r["cpu"] for r in rs)
            print(
                f"{key:14s} wall {wall:8.2f} s (x{wall / base_wall:.2f} of bare)  cpu {cpu:8.2f} s "
                f"(x{cpu / base_cpu:.2f})  peak RSS {max(r['peak_mb'] for r in rs):7.0f} MiB (loaded "
                f"{rs[0]['rss_loaded_mb']:.0f}, after imports {rs[0]['rss_base_mb']:.0f})  "
                f"[{rs[0]['device']}; {rs[0]['threads']} threads]",
                flush=True,
            )
        if model not in loaded_bf16:
            loaded_bf16.add(model)
            # The bf16 model's memory, loaded only (a bf16 run takes far longer here).
            r = run_worker(
                "gen", {"model": model, "size": size, "steps": steps, "load_only": True, **forced[1]}
            )
            print(f"ours cpu:bf16, loaded only: peak RSS {r['peak_mb']:.0f} MiB [{r['device']}]", flush=True)
        print(f"(load after: {load_average()})")


def part_unet(builtin: str, sd15: str | None, repeat: int) -> None:
    cases = [("built-in UNet, 128 px, batch 2", builtin, 128, repeat * 3, True)]
    if sd15:
        cases.append(("SD 1.5-shaped UNet, 512 px, batch 2", sd15, 512, 1, False))
    for title, model, size, rep, small in cases:
        print(f"\n## unet: {title} (load {load_average()})", flush=True)
        r = run_worker(
            "unet", {"model": model, "size": size, "repeat": rep, "one_thread": small, "bf16": small}
        )
        base = r["times"]["fp32"]
        print(f"{r['params'] / 1e6:.0f}M parameters, {r['threads']} threads")
        for k, v in r["times"].items():
            print(
                f"{k:20s} {v:8.3f} s  (x{v / base:.2f} of fp32)  rel. sq. error {r['rse'][k]:.1e}", flush=True
            )
        print(f"(load after: {load_average()})")


def part_compile(builtin: str, sd15: str | None, repeat: int) -> None:
    """Per tile shape: a cold compile (fresh inductor cache), the steady state against eager, then
    the first call again in a new process with the cache warm (what the app's next start pays)."""
    import tempfile

    cases = [
        ("built-in UNet, 128 px tile (native; 512 px = 25 such tiles), batch 2", builtin, 128, repeat * 3)
    ]
    if sd15:
        cases.append(("SD 1.5-shaped UNet, 256 px, batch 2", sd15, 256, max(2, repeat)))
    for title, model, size, rep in cases:
        print(f"\n## compile: {title}, inductor (load {load_average()})", flush=True)
        with tempfile.TemporaryDirectory(prefix="canvas-inductor-") as cache:
            env = {"TORCHINDUCTOR_CACHE_DIR": cache}
            r = run_worker("compile", {"model": model, "size": size, "repeat": rep}, env_extra=env)
            warm = run_worker("compile", {"model": model, "size": size, "first_only": True}, env_extra=env)
        eager = r["times"]["eager"]
        print(f"{r['threads']} threads; median of {rep} interleaved calls")
        cpu_eager = r["cpu_times"]["eager"]
        for name, v in r["times"].items():
            c = r["cpu_times"][name]
            line = (
                f"{name:22s} {v * 1000:9.1f} ms per call (x{v / eager:.2f} of eager), CPU {c * 1000:7.1f} ms "
                f"(x{c / cpu_eager:.2f})"
            )
            first = r["first_call"].get(name)
            if first:
                again = warm["first_call"][name]
                saved = eager - v
                line += (
                    f"; first call {first['wall']:.1f} s wall / {first['cpu']:.1f} s CPU (cold cache), "
                    f"{again['wall']:.1f} s / {again['cpu']:.1f} s (warm cache); rel. sq. error {r['rse'][name]:.1e}; "
                    + (
                        f"pays after {first['wall'] / saved:.0f} calls cold, {again['wall'] / saved:.0f} warm"
                        if saved > 0
                        else "never pays"
                    )
                )
            print(line, flush=True)
        print(f"(load after: {load_average()})")


def part_threads(builtin: str, repeat: int) -> None:
    """1 vs 2 torch threads for the eager built-in UNet under OpenMP's default wait policy (a thread
    that waits for its partner spins ~300,000 times before it sleeps), OMP_WAIT_POLICY=PASSIVE (it
    sleeps at once: what the engine sets, engine/devices.py) and a short spin (GOMP_SPINCOUNT)."""
    print(f"\n## threads: built-in UNet, 128 px, batch 2, eager fp32 (load {load_average()})", flush=True)
    cases: list[dict[str, str | None]] = [{}, {"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "10000"}]
    for case in cases:
        # The parent's own setting (the engine's default) must not leak into the other cases.
        env = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, **case}
        title = " ".join(f"{k}={v}" for k, v in env.items() if v) or "OpenMP defaults"
        r = run_worker("threads", {"model": builtin, "size": 128, "repeat": repeat * 3}, env_extra=env)
        one = r["1"]["wall"]
        for n, v in r.items():
            print(
                f"{title:28s} {n} thread(s): wall {v['wall'] * 1000:7.1f} ms (x{v['wall'] / one:.2f} of 1 "
                f"thread), CPU {v['cpu'] * 1000:7.1f} ms",
                flush=True,
            )
    print(f"(load after: {load_average()})")


def part_memory(sd15: str | None, sdxl_dir: str | None) -> None:
    """Peak resident memory of loading an SD 1.5- and an SDXL-shaped model (random weights, fp16 on
    disk) through our engine, cpu:fp32 against cpu:bf16, one subprocess each (load only: on a CPU
    without native bf16 a bf16 step is far too slow to time, and an SDXL step at 1024 px takes
    minutes). A run adds the activations on top: see the gen part for SD 1.5 at 512 px."""
    cases = [("SD 1.5-shaped", sd15)] if sd15 else []
    if sdxl_dir:
        cases.append(("SDXL-shaped", str(build_sdxl(Path(sdxl_dir)))))
    for title, model in cases:
        print(f"\n## memory: {title}, loaded by our engine (load {load_average()})", flush=True)
        for device in ("cpu:fp32", "cpu:bf16"):
            free = mem_available_mb()
            if title.startswith("SDXL") and device == "cpu:fp32" and free < 15_000:
                # 13 GiB of fp32 weights plus the fp16 file being read: not on a machine this full.
                print(f"{device}: skipped, only {free:.0f} MiB available", flush=True)
                continue
            args = {
                "who": "ours",
                "model": model,
                "size": 512,
                "steps": 1,
                "load_only": True,
                "device": device,
            }
            # If memory runs out, the kernel is to end this measurement, not another job.
            r = run_worker("gen", args, env_extra={"CANVAS_BENCH_OOM_FIRST": "1"})
            print(
                f"{device}: loaded {r['rss_loaded_mb']:7.0f} MiB, peak while loading {r['peak_mb']:7.0f} MiB "
                f"[{r['device']}]",
                flush=True,
            )


def part_quality(builtin: str) -> None:
    print(f"\n## quality: built-in model, fp32 vs bf16, 128 px, 20 steps (load {load_average()})", flush=True)
    prompts = [
        "a red house by a lake",
        "a blue car on a road in the desert",
        "a yellow tree on a hill at sunset",
    ]
    image = ROOT / "docs" / "images" / "bf16_vs_fp32.png"
    r = run_worker(
        "quality", {"model": builtin, "size": 128, "steps": 20, "prompts": prompts, "image": str(image)}
    )
    print(f"PSNR vs fp32, our bf16 (fp32 VAE and latents): {r['bf16']} dB")
    print(f"PSNR vs fp32, bf16 VAE alone (not adopted):     {r['bf16_vae']} dB")
    print(f"side by side: {image.relative_to(ROOT)}")


def part_sdxl() -> None:
    print("\n## memory of the weights, from parameter counts (meta device)", flush=True)
    r = run_worker("sdxl", {})
    for name, parts in r.items():
        total = sum(parts.values())
        detail = ", ".join(f"{k} {v / 1e6:.0f}M" for k, v in parts.items())
        print(
            f"{name}: {total / 1e9:.2f}B parameters ({detail}): fp32 {total * 4 / 2**30:.2f} GiB, bf16 {total * 2 / 2**30:.2f} GiB"
        )


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

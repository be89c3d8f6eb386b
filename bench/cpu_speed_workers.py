"""The measurements of bench/cpu_speed.py, each run in its own process (``run_worker``) so that its
peak resident memory is its own: a dict of arguments in, a JSON-able dict of results out."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.cpu_speed_util import CONFIGS, NEGATIVE, PROMPT, cpu_s, rss_mb


def worker_gen(a: dict[str, Any]) -> dict[str, Any]:
    """Generate a.size px for a.steps steps, a.repeat times (after a.warmup untimed runs)."""
    import torch

    base = rss_mb("VmRSS")
    if a["who"] == "bare":
        from diffusers import DiffusionPipeline

        from canvas_app.engine.builtin_weights import from_pretrained
        from canvas_app.engine.schedulers import make_scheduler

        pipe = from_pretrained(DiffusionPipeline, a["model"], torch.float32, local_files_only=True)
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

    from canvas_app.engine import builtin_weights

    if builtin_weights.has_int8_unet(Path(model)):  # the built-in model's own format
        unet = builtin_weights.load_unet(Path(model) / "unet", torch.float32)
    else:
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
            w, c = time.perf_counter(), cpu_s()
            result = compiled(x, t, encoder_hidden_states=ctx).sample
            out["first_call"][name] = {"wall": time.perf_counter() - w, "cpu": cpu_s() - c}
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


def worker_quality(a: dict[str, Any]) -> dict[str, Any]:
    """The built-in model, fp32 vs bf16 (our cpu:bf16: bf16 UNet and text encoder, fp32 VAE and
    latents), and a bf16 VAE alone (not adopted)."""
    import copy

    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from canvas_app.core.colour import psnr
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

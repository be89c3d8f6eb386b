"""The report of bench/cpu_speed.py: one function per part runs its measurements (interleaved, each
in its own process) and prints them with the ratios to quote."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.cpu_speed_models import build_sdxl
from bench.cpu_speed_util import ROOT, load_average, mem_available_mb, run_worker

PARTS = ("sdxl", "memory", "quality", "unet", "threads", "compile", "gen")


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

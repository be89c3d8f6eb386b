"""Remote (Ray Serve, 127.0.0.1) vs. local engine on the same machine and the same request.

    python -m bench.remote [--steps 20] [--runs 3] [--size 128] [--threads 1]

Starts one Ray cluster with one replica (as ``canvas-app serve`` does), warms both engines up, then
measures per image: wall time (median of --runs), time to the first preview and to Started, the
mean gap between streamed events, and cancel latency (in steps: the step the server confirms minus
the step at which the client cancelled; and in milliseconds). Also the cluster's start time and its
memory (RSS of Ray's processes). Both engines use --threads torch threads: the replica gets
num_cpus=threads, which is what Ray sets its OMP threads from.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TOKEN = "bench-token-0123456789abcdef"


def timed_run(engine: Any, request: Any, cancel_at: int | None = None) -> dict[str, float]:
    from canvas_app.engine.api import Cancelled, CancelToken, Finished, Progress, Started

    cancel = CancelToken()
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    stamps: list[float] = []

    def emit(event: Any) -> None:
        now = time.perf_counter() - t0
        stamps.append(now)
        if isinstance(event, Started):
            marks.setdefault("started", now)
        if isinstance(event, Progress):
            if event.preview is not None:
                marks.setdefault("first_preview", now)
            if cancel_at is not None and event.step == cancel_at and not cancel.cancelled:
                marks["cancel_step"] = event.step
                marks["cancel_t"] = now
                cancel.cancel()
        if isinstance(event, Cancelled):
            marks["stopped_step"] = event.step
            marks["stopped_t"] = now
        if isinstance(event, Finished):
            marks["done"] = now

    engine.generate(request, emit, cancel)
    marks["total"] = time.perf_counter() - t0
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    marks["event_gap"] = statistics.mean(gaps) if gaps else 0.0
    return marks


def ray_rss_mib() -> float:
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ")
            if b"ray" not in cmd or b"bench.remote" in cmd:
                continue
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--port", type=int, default=8799)
    p.add_argument("--throughput", action="store_true", help="replicas x concurrent clients, and fairness")
    args = p.parse_args()
    if args.throughput:
        throughput(args)
        return

    import torch

    from canvas_app.engine.api import GenerationRequest
    from canvas_app.engine.local import LocalDiffusersEngine
    from canvas_app.engine.remote import RemoteEngine
    from canvas_app.serve import launch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    server = launch.start(
        TOKEN, port=args.port, device="cpu", num_cpus=max(2, args.threads), cpus_per_replica=args.threads
    )
    remote = RemoteEngine(server.url, TOKEN)
    print(f"cluster + deployment up in {time.perf_counter() - t0:.1f} s; {remote.describe_device()}")
    local = LocalDiffusersEngine(device="cpu", preview_interval_s=0.1)
    try:
        request = GenerationRequest(
            prompt="a red house by a lake", width=args.size, height=args.size, steps=args.steps, seed=1
        )
        warm = request.with_changes(steps=2)
        timed_run(local, warm)
        timed_run(remote, warm)
        print(f"memory of Ray's processes (incl. the replica with its model): {ray_rss_mib():.0f} MiB")
        rows: dict[str, list[dict[str, float]]] = {"local": [], "remote": []}
        for _ in range(args.runs):  # interleaved, so load on the machine hits both alike
            rows["local"].append(timed_run(local, request))
            rows["remote"].append(timed_run(remote, request))
        med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in rows.items()}
        print(
            f"\n{args.size}x{args.size}, {args.steps} steps, {args.threads} thread(s), median of {args.runs}"
        )
        print("| | local | remote | remote / local |\n|---|---:|---:|---:|")
        for key, label in (
            ("total", "time per image (s)"),
            ("started", "time to Started (s)"),
            ("first_preview", "time to first preview (s)"),
            ("event_gap", "mean gap between events (ms)"),
        ):
            scale = 1000 if key == "event_gap" else 1
            a, b = med["local"].get(key, float("nan")) * scale, med["remote"].get(key, float("nan")) * scale
            print(f"| {label} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
        cancels = [timed_run(remote, request.with_changes(steps=200), cancel_at=5) for _ in range(args.runs)]
        local_cancels = [
            timed_run(local, request.with_changes(steps=200), cancel_at=5) for _ in range(args.runs)
        ]
        for name, runs in (("local", local_cancels), ("remote", cancels)):
            steps = [r["stopped_step"] - r["cancel_step"] for r in runs]
            ms = [(r["stopped_t"] - r["cancel_t"]) * 1000 for r in runs]
            print(
                f"cancel latency {name}: {steps} steps after the cancel, {statistics.median(ms):.0f} ms (median)"
            )
    finally:
        server.stop()


def throughput(args: argparse.Namespace) -> None:
    """Images per minute with 1 and 2 replicas and 1, 2, 4 clients; and how long a second artist's
    short run waits while a long run is going."""
    import threading

    from canvas_app.engine.api import GenerationRequest
    from canvas_app.engine.remote import RemoteEngine
    from canvas_app.serve import launch

    request = GenerationRequest(prompt="a house", width=args.size, height=args.size, steps=args.steps, seed=1)
    server = None
    try:
        for replicas in (1, 2):
            server = launch.start(
                TOKEN, port=args.port, device="cpu", num_cpus=2, replicas=replicas, cpus_per_replica=1
            )
            remote = RemoteEngine(server.url, TOKEN)
            for _ in range(replicas * 2):  # every replica loads the model before the clock starts
                timed_run(remote, request.with_changes(steps=2))
            for clients in (1, 2, 4):
                per_client = max(1, 4 // clients)
                t0 = time.perf_counter()
                threads = [
                    threading.Thread(
                        target=lambda r=remote, n=per_client: [timed_run(r, request) for _ in range(n)]
                    )
                    for _ in range(clients)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                minutes = (time.perf_counter() - t0) / 60
                print(f"| {replicas} | {clients} | {clients * per_client / minutes:.1f} |", flush=True)
            # Fairness: a long run starts, a short one arrives 1 s later.
            result: dict[str, float] = {}
            long_run = threading.Thread(
                target=lambda out=result, r=remote: out.update(
                    long=timed_run(r, request.with_changes(steps=args.steps * 5))["total"]
                )
            )
            long_run.start()
            time.sleep(1.0)
            short = timed_run(remote, request.with_changes(steps=2, seed=9))
            long_run.join()
            print(
                f"fairness, {replicas} replica(s): short run (2 steps) took {short['total']:.1f} s, "
                f"started after {short.get('started', float('nan')):.1f} s, beside a {result['long']:.1f} s run",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()

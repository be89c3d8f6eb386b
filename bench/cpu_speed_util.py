"""Shared pieces of bench/cpu_speed.py: paths, the prompt, memory and load readings, and running one
measurement in a fresh interpreter (``python -m bench.cpu_speed --worker KIND ARGS``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "canvas_app" / "engine" / "configs"
PROMPT, NEGATIVE = "a house by a lake under a blue sky", "blurry"


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


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (inductor runs gcc in subprocesses)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

"""Measure a built bundle: size on disk, the biggest parts, and how long it takes to start.

    python packaging/measure_bundle.py [BUNDLE_DIR] [--runs N] [--steps N]

Prints a Markdown table for docs/benchmarks.md. Each command runs with a fresh HOME, offscreen Qt
and no network; times are wall-clock medians of ``--runs`` runs after one warm-up run (so the
files are in the page cache, as on a second start), and the first (cold) run is reported too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree_size(path: Path) -> tuple[int, int]:
    """Bytes and number of regular files under ``path`` (symlinks not followed, not counted)."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
                files += 1
    return total, files


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def timed(cmd: list[str], home: Path, timeout: int = 900) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    if cmd[0] == sys.executable:
        env["PYTHONPATH"] = str(ROOT)  # the source run uses this checkout
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - start, result


def repeat(cmd: list[str], home: Path, runs: int) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(cold seconds, warm median seconds, last result)."""
    cold, result = timed(cmd, home)
    if result.returncode != 0:
        return cold, float("nan"), result
    warm = []
    for _ in range(runs):
        seconds, result = timed(cmd, home)
        warm.append(seconds)
    return cold, statistics.median(warm), result


def measure_starts(prefix: list[str], label: str, runs: int, steps: int) -> list[tuple[str, str]]:
    """Start-up and one-generation times of ``prefix`` (the bundle's executable or python -m canvas_app)."""
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="canvas-app-measure-") as tmp:
        home = Path(tmp)
        cold, warm, result = repeat([*prefix, "--help"], home, runs)
        rows.append(
            (f"{label}: `canvas-app --help` (interpreter start)", f"{warm:.2f} s (cold {cold:.2f} s)")
        )

        cold, warm, result = repeat([*prefix, "gui", "--quit-after-show", "--report-startup"], home, runs)
        if result.returncode == 0:
            rows.append(
                (f"{label}: GUI start until the window is shown", f"{warm:.2f} s (cold {cold:.2f} s)")
            )
            shown = next((ln for ln in result.stdout.splitlines() if ln.startswith("window shown")), "")
            if shown:
                rows.append((f"{label}: the app's own report", shown))
        else:
            rows.append((f"{label}: GUI start", f"not measured: exit {result.returncode}: {_tail(result)}"))

        cmd = [*prefix, "generate", "--prompt", "a red house", "--seed", "1", "--steps", str(steps)]
        cold, warm, result = repeat([*cmd, "--quiet", "--out", str(home / "x.png")], home, max(1, runs - 1))
        if result.returncode == 0:
            rows.append(
                (f"{label}: `generate` one image, {steps} steps", f"{warm:.2f} s (cold {cold:.2f} s)")
            )
        else:
            rows.append((f"{label}: `generate`", f"failed: exit {result.returncode}: {_tail(result)}"))
    return rows


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1][:200] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", default=str(ROOT / "dist" / "canvas-app"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compare-source", action="store_true", help="also time python -m canvas_app")
    args = parser.parse_args(argv)
    bundle = Path(args.bundle)
    exe = bundle / "canvas-app"
    if not exe.is_file():
        print(f"no bundle at {bundle}: run packaging/build.sh first", file=sys.stderr)
        return 1

    rows: list[tuple[str, str]] = []
    total, files = tree_size(bundle)
    rows.append(("bundle size on disk", f"{mib(total)} in {files} files"))
    internal = bundle / "_internal"
    parts = {
        "torch": ["torch"],
        "PySide6 (Qt)": ["PySide6", "shiboken6"],
        "OpenCV": ["cv2", "opencv_python_headless.libs"],
        "transformers + diffusers": ["transformers", "diffusers"],
        "built-in models": ["resources/models"],
    }
    for label, names in parts.items():
        size = sum(tree_size(internal / n)[0] for n in names if (internal / n).exists())
        rows.append((f"  of which {label}", mib(size)))

    rows += measure_starts([str(exe)], "bundle", args.runs, args.steps)
    if args.compare_source:
        rows += measure_starts([sys.executable, "-m", "canvas_app"], "source", args.runs, args.steps)

    print("| measure | value |\n| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Canvas benchmark: render time, brush dab cost, window start time, GUI stalls during a run.

    QT_QPA_PLATFORM=offscreen python bench/canvas.py [--quick]

Prints one line per measurement. Goals (issue 5): median frame under 16 ms for a 1920x1080 view of
1000 painted tiles at 100%, 25% and 5%; longest GUI event-loop stall under 50 ms while the engine
runs. The stall is measured with the real engine: the built-in model when installed, else a tiny
random pipeline built on the spot (the engine's test helper).
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

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QPointF, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from canvas_app.core.document import Document  # noqa: E402
from canvas_app.core.raster import TILE_SIZE  # noqa: E402
from canvas_app.ui import refcount_guard  # noqa: E402
from canvas_app.ui.workspace import Workspace  # noqa: E402


def painted_document(tiles: int) -> Document:
    doc = Document()
    rng = np.random.default_rng(0)
    cols = int(np.ceil(np.sqrt(tiles * 16 / 9)))
    base = rng.integers(0, 255, (TILE_SIZE, TILE_SIZE, 4), dtype=np.uint8)
    base[..., 3] = 255
    for i in range(tiles):
        tile = np.roll(base, i * 7, axis=1).copy()
        doc.image.set_tile(i % cols, i // cols, tile)
    return doc


def bench_render(frames: int) -> None:
    doc = painted_document(1000)
    ws = Workspace(doc)
    view = ws.view
    view.resize(1920, 1080)
    view.show()
    QApplication.processEvents()
    bounds = doc.image.tile_bounds()
    assert bounds is not None
    x, y, w, h = bounds
    for zoom in (1.0, 0.25, 0.05):
        view.set_zoom(zoom)
        view.center_on(QPointF(x + w / 2, y + h / 2))
        t0 = time.perf_counter()
        view.viewport().repaint()
        first = (time.perf_counter() - t0) * 1000
        times, cpu = [], []
        for i in range(frames):
            # Pan a little each frame so every frame is a full repaint of a moving view.
            view.pan_by_view(3 if i % 2 else -3, 0)
            t0, c0 = time.perf_counter(), time.process_time()
            view.viewport().repaint()
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        drawn = ws.scene.image_item.tiles_drawn
        print(
            f"render 1920x1080, 1000 tiles, zoom {zoom * 100:>5.0f}%: median {statistics.median(times):6.2f} ms, "
            f"p95 {sorted(times)[int(0.95 * len(times)) - 1]:6.2f} ms, CPU median {statistics.median(cpu):6.2f} ms, "
            f"first (cold cache) {first:7.1f} ms, "
            f"pixmaps drawn {drawn}"
        )


def bench_brush(dabs: int) -> None:
    ws = Workspace(Document())
    ws.view.resize(1280, 800)
    ws.view.show()
    QApplication.processEvents()
    for family, size in (("mask", 48.0), ("paint", 16.0), ("paint", 200.0)):
        ws.set_brush(family, size=size)
        settings = ws.brush(family)
        layer = "mask" if family == "mask" else "image"
        step = settings.size * settings.spacing
        # The same stroke into a document nobody watches: the core's share of the cost.
        bare = Document().begin_stroke(settings, layer)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for i in range(dabs):
            bare.move_to(100 + i * step, 300 + 40 * np.sin(i / 20))
        t_core = time.perf_counter() - t0
        session = ws.doc.begin_stroke(settings, layer)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for i in range(dabs):
            session.move_to(100 + i * step, 300 + 40 * np.sin(i / 20))
        t_dabs = time.perf_counter() - t0
        session.end()
        t1 = time.perf_counter()
        ws.view.viewport().repaint()
        t_paint = time.perf_counter() - t1
        print(
            f"brush {family:5s} {size:5.0f} px: {t_dabs / dabs * 1000:6.3f} ms per dab with the canvas "
            f"watching ({t_core / dabs * 1000:6.3f} ms in the core alone); repaint after stroke {t_paint * 1000:5.1f} ms"
        )


def bench_startup(runs: int) -> None:
    code = "from canvas_app.app import main; main(['--quit-after-show'])"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    for label, prefix in (("without torch", ""), ("with torch imported first", "import torch; ")):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", prefix + code], cwd=ROOT, env=env, check=True, capture_output=True
            )
            times.append(time.perf_counter() - t0)
        print(
            f"window start ({label}): median {statistics.median(times) * 1000:7.0f} ms over {runs} runs (process start to window shown and closed)"
        )


def bench_stall() -> None:
    from canvas_app.app import make_engine_factory
    from canvas_app.engine.api import GenerationRequest
    from canvas_app.workers import EngineWorker

    builtin = ROOT / "resources" / "models" / "builtin"
    if (builtin / "model_index.json").is_file():
        model, size, label = "builtin", 256, "built-in model, 256x256 (4 tiles)"
    else:
        sys.path.insert(0, str(ROOT / "tests" / "engine"))
        from tiny_models import build_pipeline

        model = str(build_pipeline(Path(tempfile.mkdtemp()) / "sd4", vae_factor=4, unet_channels=4))
        size, label = 128, "tiny random pipeline, 128x128 (built-in model not installed)"
    worker = EngineWorker(make_engine_factory("cpu", 0.1))
    previews = []
    worker.progress.connect(lambda ev: previews.append(ev))
    done = []
    worker.finished.connect(lambda ev: done.append(ev))
    worker.failed.connect(lambda ev: done.append(ev))
    # Warm-up run: engine construction, torch import and model load happen here, not in the measurement.
    worker.submit(GenerationRequest(model=model, width=size, height=size, steps=2))
    while not done:
        QApplication.processEvents()
        time.sleep(0.005)
    if not hasattr(done[0], "candidates"):
        print(f"stall: the engine failed: {done[0].message}")
        worker.shutdown()
        return
    done.clear()
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        last[0] = now

    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(tick)
    timer.start()
    t0 = time.perf_counter()
    worker.submit(GenerationRequest(model=model, width=size, height=size, steps=20, prompt="a red house"))
    app = QApplication.instance()
    while not done:
        app.processEvents()
        time.sleep(0.0005)
    run = time.perf_counter() - t0
    timer.stop()
    worker.shutdown()
    gaps.sort()
    print(
        f"GUI event loop during a 20-step run ({label}): longest stall {gaps[-1]:.1f} ms, "
        f"p99 {gaps[int(len(gaps) * 0.99) - 1]:.1f} ms, run {run:.1f} s, previews shown {len(previews)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer frames and runs")
    parser.add_argument("--skip-stall", action="store_true")
    args = parser.parse_args()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    _app = QApplication.instance() or QApplication([])
    refcount_guard.install()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"canvas bench · Qt platform {os.environ['QT_QPA_PLATFORM']} · {os.cpu_count()} CPUs · load average {load:.1f}"
    )
    bench_render(20 if args.quick else 60)
    bench_brush(200 if args.quick else 1000)
    bench_startup(1 if args.quick else 3)
    if not args.skip_stall:
        bench_stall()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

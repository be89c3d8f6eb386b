"""Benchmark of the core document: sparse vs dense storage, save/load time, brush throughput.

Run from the repository root: ``python -m bench.core`` (``--quick`` for a smaller run). Prints, side by side, the memory and
save time of a sparse canvas and of the same pixels stored densely over their bounding box, then
the brush throughput (dabs per second) on a canvas of 1000 painted tiles.
"""

from __future__ import annotations

import argparse
import io
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from canvas_app.core.brush import BrushSettings, Stroke
from canvas_app.core.document import Document
from canvas_app.core.project_file import load_project, save_project
from canvas_app.core.raster import TILE_SIZE

# CPU time of this process, not wall time: the benchmark machine is shared with a training job,
# and CPU time is what stays comparable between runs there (all work here is single-threaded).
clock = time.process_time


def timed(fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    """Best CPU time of ``repeat`` calls (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def photo_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth gradients plus mild noise: compresses like a generated image, not like pure noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([xx * 255, yy * 255, (1 - xx) * 200, np.full_like(xx, 255)], axis=2)
    noise = rng.normal(0, 6, (size, size, 4)).astype(np.float32)
    noise[..., 3] = 0
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def sparse_vs_dense(span: int, tmp: Path) -> None:
    """Four 512x512 pastes at the corners of a ``span`` x ``span`` bounding box."""
    rng = np.random.default_rng(0)
    doc = Document()
    for x, y in [(0, 0), (span - 512, 0), (0, span - 512), (span - 512, span - 512)]:
        doc.paste(x, y, photo_like(rng, 512))
    bounds = doc.bounds()
    assert bounds is not None
    sparse_path = tmp / "sparse.canvas"
    # One cold save: a second save of the same document reuses the tiles' PNG encodings.
    sparse_save = timed(lambda: save_project(doc, sparse_path), 1)
    sparse_load = timed(lambda: load_project(sparse_path), 2)
    dense = doc.image.read(*bounds)
    dense_path = tmp / "dense.png"

    def save_dense() -> None:
        buf = io.BytesIO()
        Image.fromarray(dense).save(buf, format="PNG", compress_level=1)
        dense_path.write_bytes(buf.getvalue())

    dense_save = timed(save_dense, 1)
    dense_load = timed(lambda: np.asarray(Image.open(dense_path)), 1)
    print(f"\n## Sparse vs dense: 4 pastes of 512x512 at the corners of {span}x{span} px")
    print(f"{'':24}{'sparse (tiles)':>18}{'dense (bbox)':>18}{'ratio':>10}")
    rows = [
        ("memory (MiB)", doc.image.nbytes / 2**20, dense.nbytes / 2**20),
        ("file size (MiB)", sparse_path.stat().st_size / 2**20, dense_path.stat().st_size / 2**20),
        ("save CPU time (s)", sparse_save, dense_save),
        ("load CPU time (s)", sparse_load, dense_load),
    ]
    for name, sparse_value, dense_value in rows:
        print(f"{name:24}{sparse_value:18.3f}{dense_value:18.3f}{dense_value / sparse_value:9.1f}x")


def far_apart(tmp: Path) -> None:
    """Two 512x512 pastes ten million pixels apart vs. side by side."""
    rng = np.random.default_rng(1)
    pixels = photo_like(rng, 512)
    near, far = Document(), Document()
    near.paste(0, 0, pixels)
    near.paste(512, 0, pixels)
    far.paste(0, 0, pixels)
    far_xy = 39_062 * TILE_SIZE  # 9,999,872: ten million pixels away, on the tile grid
    far.paste(far_xy, far_xy, pixels)
    save_project(near, tmp / "near.canvas")
    save_project(far, tmp / "far.canvas")
    bounds = far.bounds()
    assert bounds is not None
    dense_bytes = bounds[2] * bounds[3] * 4
    print("\n## Two 512x512 pastes side by side vs. ten million pixels apart")
    print(f"{'':24}{'side by side':>18}{'10M px apart':>18}")
    print(f"{'tiles':24}{len(near.image):18d}{len(far.image):18d}")
    print(f"{'memory (MiB)':24}{near.image.nbytes / 2**20:18.2f}{far.image.nbytes / 2**20:18.2f}")
    size_near = (tmp / "near.canvas").stat().st_size / 2**20
    size_far = (tmp / "far.canvas").stat().st_size / 2**20
    print(f"{'file size (MiB)':24}{size_near:18.2f}{size_far:18.2f}")
    print(f"(dense storage of the far canvas's bounding box would need {dense_bytes / 2**40:.0f} TiB)")


def brush_throughput(tiles: int, strokes: int, tmp: Path) -> None:
    """Dabs per second on a canvas of ``tiles`` painted tiles, raw and through the document."""
    rng = np.random.default_rng(2)
    side = int(np.ceil(np.sqrt(tiles)))
    doc = Document()
    for i in range(tiles):
        doc.image.set_tile(i % side, i // side, photo_like(rng, TILE_SIZE))  # distinct pixels per tile
    extent = side * TILE_SIZE
    # Each stroke: 8 pointer positions within 1500 px of a random point of the canvas.
    centres = rng.uniform(750, extent - 750, (strokes, 1, 2))
    paths = [c + rng.uniform(-750, 750, (8, 2)) for c in centres]
    print(f"\n## Brush on a canvas of {len(doc.image)} painted tiles ({extent}x{extent} px)")
    print(f"{'brush':34}{'dabs':>8}{'dabs/CPU s':>12}")
    for size, hardness, layer in [
        (16, 0.8, "image"),
        (64, 0.5, "image"),
        (200, 0.3, "image"),
        (64, 0.5, "mask"),
    ]:
        settings = BrushSettings(size=size, hardness=hardness, color=(200, 30, 30))
        dabs = 0
        start = clock()
        for path in paths:
            session = doc.begin_stroke(settings, layer=layer)  # type: ignore[arg-type]
            for x, y in path:
                session.move_to(float(x), float(y))
            session.end()
            dabs += session.dabs
        elapsed = clock() - start
        name = f"{layer} size {size} hardness {hardness} (+undo)"
        print(f"{name:34}{dabs:8d}{dabs / elapsed:12.0f}")
    raw = Stroke(doc.image, BrushSettings(size=32))
    start = clock()
    for x, y in paths[0]:
        raw.move_to(float(x), float(y))
    elapsed = clock() - start
    print(f"{'image size 32, no document':34}{raw.dabs:8d}{raw.dabs / elapsed:12.0f}")
    print(f"history after these strokes holds {doc.history.nbytes / 2**20:.0f} MiB of tiles")
    path = tmp / "big.canvas"
    print(f"\n## Saving this canvas ({len(doc.image)} image + {len(doc.mask)} mask tiles)")
    print(f"{'':34}{'CPU s':>10}{'wall s':>10}")
    for name, action in [
        ("first save", lambda: save_project(doc, path)),
        (
            "save again after one stroke",
            lambda: (doc.stroke(BrushSettings(size=30), [(50, 50), (90, 60)]), save_project(doc, path)),
        ),
        ("load", lambda: load_project(path)),
    ]:
        wall = time.perf_counter()
        cpu = timed(action, 1)
        print(f"{name:34}{cpu:10.2f}{time.perf_counter() - wall:10.2f}")
    print(f"file size {path.stat().st_size / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller canvases, fewer strokes")
    args = parser.parse_args()
    print(
        f"# canvas_app core benchmark on {platform.machine()} {platform.processor() or ''} "
        f"python {platform.python_version()} numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        sparse_vs_dense(4096 if args.quick else 8192, tmp)
        far_apart(tmp)
        brush_throughput(200 if args.quick else 1000, 5 if args.quick else 20, tmp)


if __name__ == "__main__":
    main()

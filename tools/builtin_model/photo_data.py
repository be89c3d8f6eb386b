"""Training and measurement data for the photo VAE: free photographs plus the renderer's scenes.

The photographs are not in the repository (tens of MB); ``collect`` copies them out of installed
Debian packages (listed with authors and licences in photo_sources.tsv) into ``train/`` and
``heldout/`` folders. Training takes random crops at several scales, so the VAE sees both the fine
grain of a photo at full resolution and the dense detail of a photo shrunk onto a canvas.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SOURCES = Path(__file__).with_name("photo_sources.tsv")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
# Long sides of the copies training crops are cut from: a 64 px crop of the 256 px copy holds a
# quarter of the picture, one of the 1,536 px copy a close-up of texture.
PYRAMID = (256, 384, 512, 768, 1024, 1536)
EVAL_LONG_SIDE = 512  # held-out photos are measured at the size of a photo dropped on a canvas
SCENE_TRAIN_SEED = 50_000_000  # training scenes; the card's VAE figure uses seeds from 40,000,000


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    path: str
    author: str
    licence: str
    kind: str
    split: str


def read_sources(path: Path = SOURCES) -> list[Source]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [Source(**row) for row in csv.DictReader(lines, delimiter="\t")]


def collect(out: Path, roots: list[Path]) -> list[Path]:
    """Copy every listed photo found under one of ``roots`` (``/`` for installed packages, or a
    folder where a .deb was unpacked with ``dpkg -x``) to ``out/<split>/<name><suffix>``."""
    written, missing = [], []
    for src in read_sources():
        found = next((r / src.path.lstrip("/") for r in roots if (r / src.path.lstrip("/")).is_file()), None)
        if found is None:
            missing.append(f"{src.name} ({src.package}: {src.path})")
            continue
        target = out / src.split / (src.name + found.suffix.lower())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, target)
        written.append(target)
    if missing:
        print("not found (install the package or pass --root):\n  " + "\n  ".join(missing))
    return written


def image_files(folders: list[Path]) -> list[Path]:
    files = sorted(p for f in folders for p in f.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no photographs in {', '.join(map(str, folders))}")
    return files


def load_rgb(path: Path, long_side: int | None = None, multiple: int = 4) -> np.ndarray:
    """An RGB uint8 array, shrunk (never enlarged) to ``long_side`` and cropped to a multiple of the
    VAE factor so that the round trip compares like with like."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if long_side and max(im.size) > long_side:
            scale = long_side / max(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        arr = np.array(im)
    h, w = arr.shape[0] // multiple * multiple, arr.shape[1] // multiple * multiple
    return np.ascontiguousarray(arr[:h, :w])


class PhotoCrops:
    """Random crops of the training photos at several scales, with flips and colour jitter."""

    def __init__(self, files: list[Path], pyramid: tuple[int, ...] = PYRAMID) -> None:
        self.levels: list[np.ndarray] = []
        self.count = len(files)
        for path in files:
            native = load_rgb(path, None, 1)
            for side in pyramid:
                if side <= max(native.shape[:2]):
                    self.levels.append(load_rgb(path, side, 1))
            if max(native.shape[:2]) < pyramid[0]:
                self.levels.append(native)

    def sample(self, rng: np.random.Generator, n: int, crop: int) -> np.ndarray:
        out = np.empty((n, crop, crop, 3), np.float32)
        for i in range(n):
            img = self.levels[rng.integers(len(self.levels))]
            y = rng.integers(0, img.shape[0] - crop + 1)
            x = rng.integers(0, img.shape[1] - crop + 1)
            patch = img[y : y + crop, x : x + crop].astype(np.float32) / 255.0
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[i] = jitter(patch, rng)
        return out


def jitter(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild exposure, saturation and white-balance changes (half the time): more colours than the
    few dozen photos hold, none the camera could not have taken."""
    if rng.random() < 0.5:
        return patch
    grey = patch.mean(axis=2, keepdims=True)
    patch = grey + (patch - grey) * rng.uniform(0.7, 1.3)
    patch = np.clip(patch * rng.uniform(0.8, 1.2) * rng.uniform(0.94, 1.06, size=3), 0.0, 1.0)
    return patch ** rng.uniform(0.85, 1.15)


def colour_fields(rng: np.random.Generator, n: int, crop: int) -> np.ndarray:
    """Smooth two-colour gradients (a wall, a sky, skin) of colours drawn from the whole RGB cube,
    with a little grain: every colour a photo can hold, where the scenes have a few dozen."""
    out = np.empty((n, crop, crop, 3), np.float32)
    ramp = np.linspace(0.0, 1.0, crop, dtype=np.float32)
    for i in range(n):
        a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
        b = a + (b - a) * rng.uniform(0.0, 0.5)  # mostly gentle gradients
        t = ramp[:, None] if rng.random() < 0.5 else ramp[None, :]
        field = a + (b - a) * t[..., None]
        out[i] = np.clip(field + rng.normal(0, 0.01, (crop, crop, 3)), 0.0, 1.0)
    return out


def mosaic(tiles: np.ndarray, side: int) -> np.ndarray:
    """(n * side * side, c, c, 3) tiles -> (n, side * c, side * c, 3) pictures of side x side tiles.

    The VAE normalises each picture as a whole (GroupNorm), so a colour's round trip depends on what
    else the picture holds: a brown alone comes back brown, next to grass 250 px away it comes back
    green. Single-subject crops never teach it otherwise; pictures made of unrelated tiles do."""
    n = len(tiles) // (side * side)
    c = tiles.shape[1]
    grid = tiles[: n * side * side].reshape(n, side, side, c, c, 3)
    return grid.transpose(0, 1, 3, 2, 4, 5).reshape(n, side * c, side * c, 3)


class ScenePool:
    """Rendered scenes (the built-in model's own world), drawn once and cropped at random."""

    def __init__(self, count: int, seed: int = SCENE_TRAIN_SEED) -> None:
        from tools.builtin_model.scenes import render_scene

        self.scenes = np.stack([render_scene(seed + i)[1] for i in range(count)])

    def sample(self, rng: np.random.Generator, n: int, crop: int) -> np.ndarray:
        _, h, w, _ = self.scenes.shape
        idx = rng.integers(0, len(self.scenes), n)
        ys, xs = rng.integers(0, h - crop + 1, n), rng.integers(0, w - crop + 1, n)
        out = np.empty((n, crop, crop, 3), np.uint8)
        for k, (i, y, x) in enumerate(zip(idx, ys, xs)):
            out[k] = self.scenes[i, y : y + crop, x : x + crop]
        flip = rng.random(n) < 0.5
        out[flip] = out[flip, :, ::-1]
        return out.astype(np.float32) / 255.0


def eval_scenes(n: int = 64) -> np.ndarray:
    """The model card's VAE test set: full 256 x 128 scenes never used in training."""
    from tools.builtin_model.scenes import render_scene

    return np.stack([render_scene(40_000_000 + i)[1] for i in range(n)])

"""Fill on photographs: the built-in inpainting model, through the app's own path, against OpenCV's
Telea fill, on held-out photos with random masks ("remove this").

Run from the repository root: ``python -m bench.photo_fill PHOTO_DIR`` (the 8 held-out photos of
``tools/builtin_model/photo_vae.py collect``: ``work_tmp/photos/heldout``). Options: ``--masks 2``
per photo, ``--steps 20``, ``--model builtin`` (repeatable: a diffusers folder is measured too),
``--prompt ""``, ``--grid docs/images/photo-fill.png``, ``--json``.

Each photo is scaled to a long side of 512 px (a photo dropped on a canvas) and pasted on a canvas.
Per mask: a 64 px frame at a random place, a brushed blob inside it (strokes and ellipses, 10 to 35 %
of the frame), planned by ``core.frame_plan`` (32 px context), run by the real engine, accepted by
``core.composite``; Telea (radius 5) fills the same mask on the same photo. Measured inside the mask:

- **mean-colour error**: CIEDE2000 between the mean CIELAB colour of the fill and of the original;
- **per-pixel error**: mean CIEDE2000 of fill and original pixel by pixel (a smooth fill scores
  well here: it is the mean of every plausible fill);
- **texture**: the mean Sobel gradient magnitude of L* (2 px inside the mask's edge, so the mask's
  border is not counted) and the high-frequency energy (RMS of L* minus its Gaussian blur, sigma
  1.5 px) of fill and original; the table gives their ratio summed over all fills (1: as much texture
  as the original, 0: a flat fill) and the texture error, the mean |fill - original| of the gradient
  magnitude per fill (L* units per pixel; 0 is best). Ratios per fill are not averaged: over a clear
  sky the original's texture is near zero and any ratio explodes.

``--vae CHECKPOINT`` (a ``photo_vae train`` checkpoint) adds a model: the built-in inpainting UNet
with that VAE, through the same engine path (a model folder assembled in a temporary directory).

``--variant`` (repeatable) says how each model fills, one row per model and variant:
``CONTENT[+colour][@STRENGTH]``. CONTENT is the frame's masked content (``original``: the pixels
under the mask, noised; ``fill``: filled from the surroundings first, the engine's infill), ``+colour``
turns the frame's colour correction on (the low frequencies of what the run started from), STRENGTH is
the frame's strength (default 0.75, a new frame's). Default: ``original``, ``fill``, ``fill+colour``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from canvas_app.core.composite import accept_candidate  # noqa: E402
from canvas_app.core.document import Document  # noqa: E402
from canvas_app.core.frame_plan import plan_frame  # noqa: E402
from canvas_app.core.request import DEFAULT_STRENGTH  # noqa: E402

LONG_SIDE, FRAME, PADDING = 512, 64, 32


# -- colour and texture ---------------------------------------------------------------------------
def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb[..., :3].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).astype(np.float64)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    from canvas_app.core.colour import ciede2000 as de00

    return de00(lab1, lab2)


def texture(light: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """Mean gradient magnitude and high-frequency RMS of an L* image over ``inside``."""
    gx = cv2.Sobel(light, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(light, cv2.CV_64F, 0, 1, ksize=3)
    high = light - cv2.GaussianBlur(light, (0, 0), 1.5)
    return float(np.hypot(gx, gy)[inside].mean()), float(np.sqrt((high[inside] ** 2).mean()))


def measure(fill: np.ndarray, original: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Colour and texture of ``fill`` against ``original`` inside ``mask`` (bool), both HxWx3 uint8."""
    lf, lo = lab(fill), lab(original)
    mean_de = float(ciede2000(lf[mask].mean(0), lo[mask].mean(0)))
    pixel_de = float(ciede2000(lf[mask], lo[mask]).mean())
    inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    inside = inside if inside.sum() >= 16 else mask
    (gf, hf), (go, ho) = texture(lf[..., 0], inside), texture(lo[..., 0], inside)
    return dict(
        mean_colour_de=mean_de,
        pixel_de=pixel_de,
        gradient_fill=gf,
        gradient_original=go,
        high_freq_fill=hf,
        high_freq_original=ho,
        texture_error=abs(gf - go),
    )


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    def total(key: str) -> float:
        return float(sum(r[key] for r in rows))

    return {
        "mean_colour_de": float(np.mean([r["mean_colour_de"] for r in rows])),
        "pixel_de": float(np.mean([r["pixel_de"] for r in rows])),
        "gradient_ratio": total("gradient_fill") / max(total("gradient_original"), 1e-6),
        "high_freq_ratio": total("high_freq_fill") / max(total("high_freq_original"), 1e-6),
        "texture_error": float(np.mean([r["texture_error"] for r in rows])),
    }


# -- masks ----------------------------------------------------------------------------------------
def random_blob(rng: np.random.Generator, size: int = FRAME) -> np.ndarray:
    """A brushed blob inside a ``size`` frame: a few thick strokes and an ellipse, 10-35 % of it."""
    while True:
        m = np.zeros((size, size), np.uint8)
        cx, cy = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        axes = tuple(int(v) for v in rng.integers(5, size // 4, 2))
        cv2.ellipse(m, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        x, y = cx, cy
        for _ in range(int(rng.integers(1, 4))):
            nx = int(np.clip(x + rng.integers(-size // 3, size // 3 + 1), 6, size - 7))
            ny = int(np.clip(y + rng.integers(-size // 3, size // 3 + 1), 6, size - 7))
            cv2.line(m, (x, y), (nx, ny), 255, int(rng.integers(6, 14)))
            x, y = nx, ny
        share = (m > 0).mean()
        if 0.10 <= share <= 0.35:
            return m


def load_photo(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = LONG_SIDE / max(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return np.array(im)


# -- fills ----------------------------------------------------------------------------------------
def telea(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.inpaint(bgr, mask, 5, cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB)


def parse_variant(text: str) -> dict[str, Any]:
    """``CONTENT[+colour][@STRENGTH]`` -> masked_content, color_correction, strength."""
    body, _, strength = text.partition("@")
    content, _, extra = body.partition("+")
    if content not in ("original", "fill") or extra not in ("", "colour"):
        raise SystemExit(f"--variant {text!r}: expected original|fill, optionally +colour and @STRENGTH")
    return {
        "masked_content": content,
        "color_correction": extra == "colour",
        "strength": float(strength) if strength else DEFAULT_STRENGTH,
    }


def engine_fill(
    engine: Any,
    photo: np.ndarray,
    rect: tuple[int, int],
    blob: np.ndarray,
    args: argparse.Namespace,
    model: str,
    seed: int,
    variant: dict[str, Any] | None = None,
) -> np.ndarray:
    """What the artist gets: the photo on a canvas, a frame, a brushed mask, Generate, Accept."""
    from canvas_app.engine.api import CancelToken, Finished

    variant = variant or parse_variant("original")
    doc = Document()
    doc.paste(0, 0, photo)
    fx, fy = rect
    frame = doc.add_frame(
        x=fx,
        y=fy,
        w=FRAME,
        h=FRAME,
        prompt=args.prompt,
        steps=args.steps,
        model=model,
        strength=variant["strength"],
        masked_content=variant["masked_content"],
        color_correction=variant["color_correction"],
    )
    doc.set_mask(fx, fy, blob)
    plan = plan_frame(doc, frame, context_padding=PADDING, seed=seed)
    req = plan.request(frame)
    events: list[Any] = []
    engine.generate(req, events.append, CancelToken())
    if not isinstance(events[-1], Finished):
        raise SystemExit(f"inpaint failed: {events[-1]}")
    accept_candidate(doc, frame.id, frame.rect, req, events[-1].candidates[0], events[-1].seeds[0])
    return doc.image.read(0, 0, photo.shape[1], photo.shape[0])[..., :3]


def model_with_vae(checkpoint: Path, tmp: Path) -> Path:
    """The built-in inpainting pipeline as one diffusers folder, with the VAE of ``checkpoint``
    (stored as it would ship) and the built-in text encoder and tokenizer."""
    from canvas_app.resources import builtin_inpaint_model_dir, builtin_model_dir
    from tools.builtin_model.photo_vae import vae_from_checkpoint
    from tools.builtin_model.shipped_weights import save_shipped

    base, inpaint = builtin_model_dir(), builtin_inpaint_model_dir()
    out = tmp / f"builtin-inpaint-{checkpoint.stem}"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model_index.json", "latent_rgb.json", "scheduler", "unet"):
        if not (out / name).exists():
            (out / name).symlink_to((inpaint / name).resolve())
    for name in ("text_encoder", "tokenizer"):
        if not (out / name).exists():
            (out / name).symlink_to((base / name).resolve())
    save_shipped(vae_from_checkpoint(checkpoint, base / "vae"), out / "vae")
    return out


def grid(rows: list[list[np.ndarray]], labels: list[str], path: Path, cell: int = 160) -> None:
    """One row per fill: original, mask, then each method, each a crop around the frame."""
    import textwrap

    from PIL import Image, ImageDraw

    head = 30
    out = Image.new("RGB", (cell * len(labels), head + cell * len(rows)), "white")
    draw = ImageDraw.Draw(out)
    for j, label in enumerate(labels):
        draw.multiline_text((j * cell + 4, 2), textwrap.fill(label, 25), fill="black", spacing=2)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            tile = Image.fromarray(img).resize((cell, cell), Image.NEAREST)
            out.paste(tile, (j * cell, head + i * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)


def table(summary: dict[str, dict[str, float]]) -> str:
    lines = [
        "| fill | mean-colour ΔE00 | per-pixel ΔE00 | gradient ratio | high-freq ratio | texture error | s/fill |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m, s in summary.items():
        lines.append(
            f"| {m} | {s['mean_colour_de']:.2f} | {s['pixel_de']:.2f} | {s['gradient_ratio']:.2f} | "
            f"{s['high_freq_ratio']:.2f} | {s['texture_error']:.2f} | {s['seconds_per_fill']:.2f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from canvas_app.engine.local import LocalDiffusersEngine

    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no photos in {args.photos}")
    engine = LocalDiffusersEngine(device=args.device, previews=False)
    models = {m: m for m in args.model}
    if args.vae:
        models[f"builtin + {Path(args.vae).stem}"] = str(model_with_vae(Path(args.vae), args.tmp))
    # One row per model and variant: (model, variant) by row label.
    runs = {
        (f"{label} {v}" if len(args.variant) > 1 or v != "original" else label): (model, parse_variant(v))
        for label, model in models.items()
        for v in args.variant
    }
    methods = ["telea", *runs]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    rows = []
    photos = {path.stem: load_photo(path) for path in files[: args.count]}
    rngs = {name: np.random.default_rng([zlib.crc32(name.encode()), args.seed]) for name in photos}
    report: dict[str, Any] = {}
    # Masks outer, photos inner: a run stopped early has measured every photo once.
    for k in range(args.masks):
        for name, photo in photos.items():
            rng = rngs[name]
            blob = random_blob(rng)
            fx = int(rng.integers(PADDING, photo.shape[1] - FRAME - PADDING)) // 8 * 8
            fy = int(rng.integers(PADDING, photo.shape[0] - FRAME - PADDING)) // 8 * 8
            mask = np.zeros(photo.shape[:2], np.uint8)
            mask[fy : fy + FRAME, fx : fx + FRAME] = blob
            inside = mask > 0
            fills = {}
            t = time.perf_counter()
            fills["telea"] = telea(photo, mask)
            seconds["telea"] += time.perf_counter() - t
            for label, (model, variant) in runs.items():
                t = time.perf_counter()
                fills[label] = engine_fill(engine, photo, (fx, fy), blob, args, model, k, variant)
                seconds[label] += time.perf_counter() - t
            for m in methods:
                results[m].append({"photo": name, "mask": k, **measure(fills[m], photo, inside)})
            y0, x0 = max(fy - PADDING, 0), max(fx - PADDING, 0)
            crop = (slice(y0, fy + FRAME + PADDING), slice(x0, fx + FRAME + PADDING))
            shown = photo.copy()
            shown[inside] = (shown[inside] * 0.4 + np.array([255, 0, 255]) * 0.6).astype(np.uint8)
            if k == 0:  # the grid shows each photo's first mask
                rows.append([photo[crop], shown[crop], *(fills[m][crop] for m in methods)])
            print(
                f"{name[:24]:24s} mask {k}: "
                + "\n    ".join(
                    f"{m:34s} ΔE mean {results[m][-1]['mean_colour_de']:5.2f} px {results[m][-1]['pixel_de']:5.2f} "
                    f"grad {results[m][-1]['gradient_fill']:4.1f}/{results[m][-1]['gradient_original']:4.1f}"
                    for m in methods
                ),
                flush=True,
            )
            # Written after every fill, so that a run stopped early keeps what it measured.
            summary = {
                m: summarise(results[m]) | {"seconds_per_fill": seconds[m] / len(results[m])} for m in methods
            }
            report = {"summary": summary, "fills": results, "steps": args.steps, "prompt": args.prompt}
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=1))
            if args.grid:
                grid(rows, ["original", "mask", *methods], Path(args.grid))
    print(table(report["summary"]))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path, help="a folder of held-out photographs")
    parser.add_argument("--photos", dest="count", type=int, default=8)
    parser.add_argument("--masks", type=int, default=2, help="random masks per photo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--prompt", default="")
    parser.add_argument(
        "--model", action="append", default=None, help="model(s) to fill with (default: builtin)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="CONTENT[+colour][@STRENGTH], repeatable (default: original, fill, fill+colour)",
    )
    parser.add_argument("--vae", help="a photo_vae checkpoint: also fill with the built-in UNet and this VAE")
    parser.add_argument("--tmp", type=Path, default=Path("work_tmp/photo_fill"), help="for --vae's folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--grid", default="docs/images/photo-fill.png")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    args.model = args.model or ["builtin"]
    args.variant = args.variant or ["original", "fill", "fill+colour"]
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

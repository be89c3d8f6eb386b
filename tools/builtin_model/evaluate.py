"""Measure the shipped built-in model: prompt adherence (seen and held-out), guidance, inpainting,
outpainting continuity, speed; and draw the sample grid.

    python -m tools.builtin_model.evaluate --out docs/builtin-eval.json --grid docs/images/builtin-samples.png

``--only inpaint`` (or another part) measures that part alone and updates its entries in ``--out``,
keeping the others (after a change that touches only that part, e.g. the inpainting text encoder).
"""

from __future__ import annotations

import argparse
import json
import random
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tools.builtin_model import shape_judge
from tools.builtin_model.classifier import ATTRIBUTES, CROP, WEIGHTS, AttributeClassifier, crop_labels
from tools.builtin_model.scenes import (
    BACKGROUND_COLORS,
    HALF_INSIDE,
    HELD_OUT,
    HOUSE_COLORS,
    MOON_COLORS,
    SCENE_W,
    SHAPE_COLORS,
    SKY_COLORS,
    SUN_COLORS,
    TREE_COLORS,
    caption_for_crop,
    is_held_out,
    object_phrase,
    render_scene,
)

PALETTES = {"house": HOUSE_COLORS, "tree": TREE_COLORS, "sun": SUN_COLORS, "moon": MOON_COLORS}
LANDSCAPE_KINDS = ("house", "tree", "sun", "moon")
SHAPE_KINDS = ("circle", "square", "triangle")
PARTS = ("adherence", "inpaint", "vae", "speed", "grid")


def prompt_for(attrs: dict[str, str]) -> str:
    return f"{object_phrase(attrs['kind'], attrs['color'], 1, attrs['position'])}, {attrs['setting']}" + (
        ", hills" if attrs["setting"].endswith("sky") else ""
    )


def seen_attributes(rng: random.Random) -> dict[str, str]:
    while True:
        if rng.random() < 0.55:
            kind = rng.choice(LANDSCAPE_KINDS)
            color = rng.choice(PALETTES[kind])
            setting = f"{rng.choice(SKY_COLORS)} sky"
        else:
            kind = rng.choice(SHAPE_KINDS)
            bg = rng.choice(BACKGROUND_COLORS)
            color = rng.choice([c for c in SHAPE_COLORS if c != bg])
            setting = f"{bg} background"
        position = rng.choice(["left", "center", "right"])
        if not is_held_out(kind, color, position):
            return {"setting": setting, "kind": kind, "color": color, "position": position}


def held_out_attributes(rng: random.Random) -> dict[str, str]:
    combo = rng.choice(sorted(HELD_OUT))
    kind, color = combo[0], combo[1]
    position = combo[2] if len(combo) == 3 else rng.choice(["left", "center", "right"])
    if kind in SHAPE_KINDS:
        setting = f"{rng.choice([b for b in BACKGROUND_COLORS if b != color])} background"
    else:
        setting = f"{rng.choice(SKY_COLORS)} sky"
    return {"setting": setting, "kind": kind, "color": color, "position": position}


def accuracy(predicted: list[dict[str, str]], wanted: list[dict[str, str]]) -> dict[str, float]:
    out = {}
    for key in ATTRIBUTES:
        # Celestial objects have no position word when centred; score position only where it is said.
        pairs = [
            (p[key], w[key])
            for p, w in zip(predicted, wanted)
            if key != "position" or w["kind"] not in ("sun", "moon") or w["position"] != "center"
        ]
        out[key] = float(np.mean([a == b for a, b in pairs]))
    return out


def chance() -> dict[str, float]:
    return {k: 1.0 / len(v) for k, v in ATTRIBUTES.items()}


class Generator:
    def __init__(self, base_dir: Path, inpaint_dir: Path, steps: int) -> None:
        import torch
        from diffusers import (
            EulerAncestralDiscreteScheduler,
            StableDiffusionInpaintPipeline,
            StableDiffusionPipeline,
        )

        from canvas_app.engine.builtin_weights import from_pretrained

        self.torch = torch
        self.steps = steps
        self.base = from_pretrained(StableDiffusionPipeline, base_dir)
        self.base.scheduler = EulerAncestralDiscreteScheduler.from_config(self.base.scheduler.config)
        self.base.set_progress_bar_config(disable=True)
        self.inpaint = None
        if inpaint_dir.exists():
            # The inpainting folder ships only its UNet: VAE, text encoder and tokenizer are the base's.
            self.inpaint = from_pretrained(
                StableDiffusionInpaintPipeline,
                inpaint_dir,
                vae=self.base.vae,
                text_encoder=self.base.text_encoder,
                tokenizer=self.base.tokenizer,
            )
            self.inpaint.scheduler = EulerAncestralDiscreteScheduler.from_config(
                self.inpaint.scheduler.config
            )
            self.inpaint.set_progress_bar_config(disable=True)

    def txt2img(self, prompts: list[str], guidance: float, seed: int) -> np.ndarray:
        out = []
        for i in range(0, len(prompts), 10):
            gen = [self.torch.Generator().manual_seed(seed + i + j) for j in range(len(prompts[i : i + 10]))]
            res = self.base(
                prompts[i : i + 10],
                height=CROP,
                width=CROP,
                num_inference_steps=self.steps,
                guidance_scale=guidance,
                generator=gen,
                output_type="np",
            )
            out.append((res.images * 255).round().astype(np.uint8))
        return np.concatenate(out)

    def inpaint_one(self, prompt: str, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        res = self.inpaint(
            prompt,
            image=Image.fromarray(image),
            mask_image=Image.fromarray(mask),
            height=CROP,
            width=CROP,
            num_inference_steps=self.steps,
            guidance_scale=7.5,
            generator=self.torch.Generator().manual_seed(seed),
            output_type="np",
        )
        return (res.images[0] * 255).round().astype(np.uint8)


def horizon_row(image: np.ndarray, cols: slice) -> float:
    """Median over ``cols`` of the row where the hills begin.

    Reads greenness, G - (R + B) / 2: every sky colour of the renderer (blue, orange, pink, purple,
    gray, black) is far less green than the hills below it, while clouds, suns and moons are not green
    at all. Per column: the first row, from the top, greener than halfway between the sky (top rows)
    and the greenest ground below the middle.
    """
    rgb = image[:, cols].astype(np.float32)
    green = rgb[..., 1] - (rgb[..., 0] + rgb[..., 2]) / 2
    kernel = np.ones(3, np.float32) / 3
    rows = []
    for col in green.T:
        col = np.convolve(col, kernel, mode="same")
        sky, ground = np.median(col[2:20]), np.percentile(col[64:-2], 90)
        above = np.nonzero(col[16:-2] > (sky + ground) / 2)[0]
        rows.append(16 + above[0] if len(above) else len(col))
    return float(np.median(rows))


def inpaint_cases(n: int) -> list[tuple[np.ndarray, np.ndarray, dict[str, str], dict[str, str]]]:
    """Crops whose only object is a shape: (crop, mask over the object, its labels, the labels asked
    for: another kind and another colour)."""
    rng, cases = random.Random(3), []
    seed = 20_000_000
    while len(cases) < n:
        seed += 1
        scene, pixels = render_scene(seed)
        if scene.kind != "shapes" or len(scene.objects) != 1:
            continue
        obj = scene.objects[0]
        crop_x = int(min(max(0, obj.center_x - CROP / 2), SCENE_W - CROP))
        labels = crop_labels(scene, crop_x)
        if not labels:
            continue
        x0, y0, x1, y1 = obj.box
        mask = np.zeros((CROP, CROP), np.uint8)
        mask[max(0, y0 - 6) : y1 + 6, max(0, x0 - crop_x - 6) : x1 - crop_x + 6] = 255
        bg = labels["setting"].split()[0]
        want = dict(
            labels,
            kind=rng.choice([k for k in SHAPE_KINDS if k != labels["kind"]]),
            color=rng.choice([c for c in SHAPE_COLORS if c not in (bg, labels["color"])]),
        )
        cases.append((pixels[:, crop_x : crop_x + CROP].copy(), mask, labels, want))
    return cases


def eval_inpaint(gen: Generator, clf: AttributeClassifier, n: int) -> dict:
    """Mask the only object of a crop and ask for another kind or colour there; judged by the
    classifier and by shape_judge (which needs no fit)."""
    cases = inpaint_cases(n)
    results = [gen.inpaint_one(prompt_for(w), img, m, 100 + i) for i, (img, m, _, w) in enumerate(cases)]
    acc = accuracy(clf.predict(np.stack(results)), [w for *_, w in cases])
    shapes = [shape_judge.judge(r, m) for r, (_, m, _, _) in zip(results, cases)]
    return {
        "cases": n,
        "kind": acc["kind"],
        "color": acc["color"],
        "kind_by_shape_judge": float(np.mean([s["kind"] == w["kind"] for s, (*_, w) in zip(shapes, cases)])),
        "color_by_shape_judge": float(
            np.mean([s["color"] == w["color"] for s, (*_, w) in zip(shapes, cases)])
        ),
        "images": results[:4],
        "inputs": [(img, m, w) for img, m, _, w in cases[:4]],
    }


def eval_outpaint(gen: Generator, n: int) -> dict:
    """Keep the left half of a landscape, generate the right half from the crop's complete caption, and
    compare where the hills begin just left and just right of the seam.

    Two references beside it: the renderer's own right half (how much real hills move in 16 px) and
    the outpainted halves paired with other scenes' left halves (a result that ignores the left).
    """
    lefts, outs, truths, seed = [], [], [], 30_000_000
    while len(outs) < n:
        seed += 1
        scene, pixels = render_scene(seed)
        if scene.kind != "landscape":
            continue
        crop = pixels[:, 64:192].copy()
        mask = np.zeros((CROP, CROP), np.uint8)
        mask[:, 64:] = 255
        caption = caption_for_crop(scene, 64, CROP, min_inside=HALF_INSIDE)
        out = gen.inpaint_one(caption, crop, mask, 200 + len(outs))
        lefts.append(horizon_row(crop, slice(56, 64)))
        truths.append(horizon_row(crop, slice(64, 72)))
        outs.append(horizon_row(out, slice(64, 72)))
    lefts_a, outs_a, truths_a = np.array(lefts), np.array(outs), np.array(truths)
    return {
        "cases": n,
        "seam_hills_offset_px": float(np.mean(np.abs(outs_a - lefts_a))),
        "renderer_hills_offset_px": float(np.mean(np.abs(truths_a - lefts_a))),
        "other_scene_hills_offset_px": float(np.mean(np.abs(outs_a - np.roll(lefts_a, 1)))),
    }


def sample_grid(gen: Generator, path: Path, prompts: list[str]) -> None:
    images = gen.txt2img(prompts, guidance=7.5, seed=11)
    cols, cell, label_h = 4, CROP * 2, 30
    rows = (len(prompts) + cols - 1) // cols
    grid = Image.new("RGB", (cols * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (img, prompt) in enumerate(zip(images, prompts)):
        x, y = (i % cols) * cell, (i // cols) * (cell + label_h)
        grid.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (x, y))
        for line_no, line in enumerate(textwrap.wrap(prompt, 44)[:2]):
            draw.text((x + 4, y + cell + 2 + 13 * line_no), line, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def vae_reconstruction(gen: Generator, path: Path, n: int = 64) -> dict:
    """PSNR of the shipped VAE on scenes it never saw, and a picture of originals over reconstructions."""
    import torch

    pixels = np.stack([render_scene(40_000_000 + i)[1] for i in range(n)])
    vae = gen.base.vae
    with torch.inference_mode():
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
        rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    rec_u8 = ((rec + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    mse = ((rec_u8.astype(np.float64) - pixels) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))
    path.parent.mkdir(parents=True, exist_ok=True)
    top = np.concatenate(list(pixels[:4]), axis=1)
    bottom = np.concatenate(list(rec_u8[:4]), axis=1)
    Image.fromarray(np.concatenate([top, bottom], axis=0)).resize(
        (top.shape[1] * 2, top.shape[0] * 4), Image.NEAREST
    ).save(path)
    return {"scenes": n, "psnr_db_mean": float(psnr.mean()), "psnr_db_min": float(psnr.min())}


def step_time(gen: Generator, size: int) -> float:
    import torch

    unet = gen.base.unet
    f = gen.base.vae_scale_factor
    z = torch.randn(2, 4, size // f, size // f)
    h = torch.randn(2, gen.base.tokenizer.model_max_length, unet.config.cross_attention_dim)
    with torch.inference_mode():
        unet(z, 500, h)
        t0 = time.perf_counter()
        for _ in range(3):
            unet(z, 500, h)
    return (time.perf_counter() - t0) / 3


def engine_step_time(model_dir: Path, size: int) -> dict:
    """Seconds per denoising step of the app's engine at ``size`` x ``size`` (tiled above the native
    size): the difference of a 6-step and a 2-step run, so loading, text encoding and decoding cancel
    out."""
    from canvas_app.engine.api import CancelToken, Failed, GenerationRequest, Started
    from canvas_app.engine.local import LocalDiffusersEngine

    engine = LocalDiffusersEngine()

    def run(steps: int) -> tuple[float, list]:
        events: list = []
        request = GenerationRequest(
            prompt="a red house on the left, blue sky, hills",
            model=str(model_dir),
            width=size,
            height=size,
            steps=steps,
            seed=1,
        )
        t0 = time.perf_counter()
        engine.generate(request, events.append, CancelToken())
        failed = [e.message for e in events if isinstance(e, Failed)]
        if failed:
            raise RuntimeError(failed[0])
        return time.perf_counter() - t0, events

    run(1)  # load the model
    short, _ = run(2)
    long, events = run(6)
    tiles = next(e.tiles for e in events if isinstance(e, Started))
    return {"size": size, "tiles": tiles, "seconds_per_step": (long - short) / 4}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("resources/models"))
    parser.add_argument("--n", type=int, default=100, help="prompts per set")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("docs/builtin-eval.json"))
    parser.add_argument("--grid", type=Path, default=Path("docs/images/builtin-samples.png"))
    parser.add_argument(
        "--classifier",
        type=Path,
        default=WEIGHTS,
        help="fitted classifier weights (the shipped ones by default): loaded when the file exists, else fitted and saved there",
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="measure only this part (repeatable) and update its entries in --out, keeping the rest",
    )
    parser.add_argument(
        "--inpaint-text-encoder",
        type=Path,
        help="a CLIPTextModel folder to run the inpainting UNet with instead of the base's shared one "
        "(e.g. the fine-tuned copy it was trained with, from git history), for a side-by-side run",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or PARTS)
    t0 = time.time()
    clf = AttributeClassifier()
    try:
        clf_accuracy = clf.load(args.classifier)
    except (FileNotFoundError, RuntimeError):  # none yet, or one fitted by an older network
        clf_accuracy = clf.fit()
        clf.save(args.classifier, clf_accuracy)
    report: dict = json.loads(args.out.read_text()) if args.only and args.out.exists() else {}
    report.update({"classifier_accuracy_on_renders": clf_accuracy, "chance": chance()})
    gen = Generator(args.models / "builtin", args.models / "builtin-inpaint", args.steps)
    if args.inpaint_text_encoder is not None and gen.inpaint is not None:
        from transformers import CLIPTextModel

        gen.inpaint.text_encoder = CLIPTextModel.from_pretrained(args.inpaint_text_encoder)
        report["inpaint_text_encoder"] = str(args.inpaint_text_encoder)
    rng = random.Random(5)
    seen = [seen_attributes(rng) for _ in range(args.n)]
    held = [held_out_attributes(rng) for _ in range(args.n)]
    if "adherence" in parts:
        for name, attrs in (("seen", seen), ("held_out", held)):
            images = gen.txt2img([prompt_for(a) for a in attrs], guidance=7.5, seed=1000)
            report[f"{name}_guidance7_5"] = accuracy(clf.predict(images), attrs)
        for guidance in (5.0, 1.0):
            images = gen.txt2img([prompt_for(a) for a in seen], guidance=guidance, seed=1000)
            report[f"seen_guidance{guidance:g}"] = accuracy(clf.predict(images), seen)
    if gen.inpaint is not None and "inpaint" in parts:
        inpaint = eval_inpaint(gen, clf, max(10, args.n // 2))
        report["inpaint"] = {k: v for k, v in inpaint.items() if k not in ("images", "inputs")}
        report["outpaint"] = eval_outpaint(gen, max(10, args.n // 4))
    if "vae" in parts:
        report["vae"] = vae_reconstruction(gen, args.grid.with_name("builtin-vae.png"))
    if "speed" in parts:
        report["seconds_per_step_cfg"] = {"128": step_time(gen, 128), "512_single_pass": step_time(gen, 512)}
        report["engine_seconds_per_step"] = [engine_step_time(args.models / "builtin", s) for s in (128, 512)]
    if "grid" in parts:
        sample_grid(gen, args.grid, [prompt_for(a) for a in seen[:12]] + [prompt_for(a) for a in held[:4]])
    report["eval_seconds" if parts == set(PARTS) else f"eval_seconds_{'_'.join(sorted(parts))}"] = (
        time.time() - t0
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What storing the built-in model's UNets as int8 costs: images and file sizes, side by side.

The UNets ship as int8 with one fp16 scale per output channel (symmetric, absmax), biases and norms
fp16 (``canvas_app.engine.builtin_weights``); until session 9 they shipped as fp16. This bench runs
the same prompts and seeds through both UNets of a reference model folder (``--models``: the fp16
files, e.g. ``git archive daa0132 resources/models | tar -x -C /tmp/fp16``) and through those weights
rounded by the shipped format (used in fp32, as the engine runs them on a CPU), and reports per image
PSNR and the largest pixel difference, and the sizes of the files each format writes (int8 ones
really written, to a temporary folder). The VAE and text encoder stay as shipped. It also says
whether the shipped int8 files (resources/models) are exactly that rounding of the reference.

    python -m bench.weight_precision --models /tmp/fp16/resources/models --prompts 8 --steps 20 \
        --grid docs/images/int8_vs_fp16.png

``--adherence 100`` also runs evaluate.py's first adherence row (seen prompts, guidance 7.5) with
both UNets and the shipped attribute classifier: per attribute, how often each is right and how often
the two agree.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from canvas_app.core.colour import psnr

SHIPPED = Path("resources/models")
MODELS = SHIPPED  # the reference UNets; --models


def int8_per_channel(state: dict) -> tuple[dict, dict]:
    """(weights rounded as the shipped int8 format stores them, in fp32; the tensors its file holds)."""
    import torch

    from canvas_app.engine.builtin_weights import dequantize, quantize

    stored = quantize(state)
    return dequantize(stored, torch.float32), stored


def shipped_is_this_rounding(name: str, reference: dict) -> bool:
    """Whether the shipped int8 UNet of ``name`` is exactly the rounding of ``reference``'s weights."""
    import torch

    from canvas_app.engine.builtin_weights import load_unet

    shipped = load_unet(SHIPPED / name / "unet", torch.float32).state_dict()
    rounded = int8_per_channel(reference)[0]
    return shipped.keys() == rounded.keys() and all(torch.equal(shipped[k], v) for k, v in rounded.items())


def unet_file(folder: Path) -> Path:
    """The reference folder's UNet weights, in whichever format it holds them."""
    from canvas_app.engine.builtin_weights import INT8_UNET_FILE

    (path,) = [p for p in (folder / "unet").glob("*.safetensors") if p.name != INT8_UNET_FILE] or [
        folder / "unet" / INT8_UNET_FILE
    ]
    return path


def prompts(n: int, seed: int = 0) -> list[str]:
    from tools.builtin_model.evaluate import prompt_for, seen_attributes

    rng = random.Random(seed)
    return [prompt_for(seen_attributes(rng)) for _ in range(n)]


def pipelines():
    from diffusers import (
        EulerAncestralDiscreteScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
    )
    from diffusers.utils import logging as diffusers_logging

    from canvas_app.engine.builtin_weights import from_pretrained

    diffusers_logging.disable_progress_bar()
    base = from_pretrained(StableDiffusionPipeline, MODELS / "builtin")
    shared = {"vae": base.vae, "text_encoder": base.text_encoder, "tokenizer": base.tokenizer}
    inpaint = from_pretrained(StableDiffusionInpaintPipeline, MODELS / "builtin-inpaint", **shared)
    for pipe in (base, inpaint):
        pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
    return base, inpaint


def run(
    base, inpaint, texts: list[str], steps: int, inits: list[np.ndarray] | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """txt2img of each prompt (seed i), then an inpaint of the middle 64 px square of image i (of
    ``inits`` when given: both variants fill the same images) with prompt i+1, seed i."""
    import torch
    from PIL import Image

    made, filled = [], []
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 32:96] = 255
    for i, text in enumerate(texts):
        common = {"num_inference_steps": steps, "guidance_scale": 7.5, "output_type": "np"}
        image = base(text, height=128, width=128, generator=torch.Generator().manual_seed(i), **common)
        made.append((image.images[0] * 255).round().astype(np.uint8))
    for i in range(len(texts)):
        init = Image.fromarray((inits or made)[i])
        out = inpaint(
            texts[(i + 1) % len(texts)],
            image=init,
            mask_image=Image.fromarray(mask),
            height=128,
            width=128,
            strength=1.0,
            generator=torch.Generator().manual_seed(i),
            **common,
        )
        filled.append((out.images[0] * 255).round().astype(np.uint8))
    return made, filled


def adherence(n: int, steps: int) -> dict[str, dict[str, float]]:
    """evaluate.py's first adherence row (its first ``n`` seen prompts and seeds, guidance 7.5) with
    the shipped fp16 UNet and with its int8 rounding, judged by the shipped attribute classifier."""
    from tools.builtin_model.classifier import WEIGHTS, AttributeClassifier
    from tools.builtin_model.evaluate import Generator, accuracy, prompt_for, seen_attributes

    clf = AttributeClassifier()
    clf.load(WEIGHTS)
    rng = random.Random(5)  # evaluate.py's
    seen = [seen_attributes(rng) for _ in range(n)]
    gen = Generator(MODELS / "builtin", MODELS / "builtin-inpaint", steps)
    judged = {}
    for name in ("fp16", "int8"):
        if name == "int8":
            gen.base.unet.load_state_dict(int8_per_channel(gen.base.unet.state_dict())[0])
        images = gen.txt2img([prompt_for(a) for a in seen], guidance=7.5, seed=1000)
        judged[name] = clf.predict(images)
    result = {name: accuracy(predicted, seen) for name, predicted in judged.items()}
    result["same answer"] = {
        key: float(np.mean([a[key] == b[key] for a, b in zip(judged["fp16"], judged["int8"], strict=True)]))
        for key in seen[0]
        if key in judged["fp16"][0]
    }
    return result


def compare(ref: list[np.ndarray], other: list[np.ndarray]) -> dict:
    values = [psnr(a, b) for a, b in zip(ref, other, strict=True)]
    diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(ref, other, strict=True)]
    return {
        "psnr_db": [round(float(v), 1) for v in values],
        "mean_psnr_db": round(float(np.mean(values)), 2),
        "min_psnr_db": round(float(np.min(values)), 2),
        "max_abs_diff": int(max(d.max() for d in diffs)),
        "mean_abs_diff": round(float(np.mean([d.mean() for d in diffs])), 3),
    }


def sizes(int8_files: dict[str, Path]) -> list[tuple[str, int, int]]:
    rows = []
    for name, path in int8_files.items():
        rows.append((name, unet_file(MODELS / name).stat().st_size, path.stat().st_size))
    return rows


def grid(rows: list[list[np.ndarray]], path: Path) -> None:
    from PIL import Image

    cell = 128
    sheet = Image.new("RGB", (cell * len(rows[0]), cell * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(Image.fromarray(image), (c * cell, r * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=SHIPPED, help="the reference (fp16) model folders")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--adherence", type=int, default=0, help="also judge N of evaluate.py's seen prompts with both UNets"
    )
    parser.add_argument("--grid", type=Path, help="fp16 | int8 | difference x8, txt2img then inpaint")
    args = parser.parse_args(argv)
    import torch
    from safetensors.torch import save_file

    global MODELS
    MODELS = args.models
    torch.set_num_threads(args.threads)
    texts = prompts(args.prompts)
    base, inpaint = pipelines()
    start = time.perf_counter()
    made16, filled16 = run(base, inpaint, texts, args.steps)
    seconds = time.perf_counter() - start
    int8_files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, pipe in (("builtin", base), ("builtin-inpaint", inpaint)):
            same = shipped_is_this_rounding(name, pipe.unet.state_dict())
            print(f"shipped {name}/unet is exactly this rounding of {MODELS / name}/unet: {same}")
            rounded, stored = int8_per_channel(pipe.unet.state_dict())
            int8_files[name] = Path(tmp) / f"{name}.safetensors"
            save_file(stored, int8_files[name])
            pipe.unet.load_state_dict(rounded)
        size_rows = sizes(int8_files)
    made8, filled8 = run(base, inpaint, texts, args.steps, made16)

    print(
        f"{len(texts)} prompts, {args.steps} steps, 128 px, Euler a, guidance 7.5; fp16 run {seconds:.0f} s"
    )
    for label, ref, other in (("txt2img", made16, made8), ("inpaint", filled16, filled8)):
        result = compare(ref, other)
        print(
            f"{label}: int8 vs fp16 PSNR mean {result['mean_psnr_db']} dB, min {result['min_psnr_db']} dB, "
            f"max |diff| {result['max_abs_diff']}, mean |diff| {result['mean_abs_diff']}; per image {result['psnr_db']}"
        )
    total16 = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    saved = 0
    for name, fp16, int8 in size_rows:
        print(f"{name}/unet: fp16 {fp16:,} B, int8 {int8:,} B ({int8 / fp16:.2f}x)")
        saved += fp16 - int8
    print(
        f"all model files: {total16:,} B = {total16 / 1e6:.2f} MB = {total16 / 2**20:.2f} MiB now; with int8 UNets "
        f"{total16 - saved:,} B = {(total16 - saved) / 1e6:.2f} MB = {(total16 - saved) / 2**20:.2f} MiB"
    )
    for i, text in enumerate(texts):
        print(f"  {i}: {text}")
    if args.grid:
        rows = []
        for ref, other in ((made16, made8), (filled16, filled8)):
            for a, b in list(zip(ref, other, strict=True))[:4]:
                diff = np.clip(np.abs(a.astype(int) - b.astype(int)) * 8, 0, 255).astype(np.uint8)
                rows.append([a, b, diff])
        grid(rows, args.grid)
        print(f"wrote {args.grid}")
    if args.adherence:
        start = time.perf_counter()
        result = adherence(args.adherence, args.steps)
        print(
            f"adherence, {args.adherence} seen prompts, guidance 7.5 ({time.perf_counter() - start:.0f} s):"
        )
        for name, row in result.items():
            print(f"  {name}: " + ", ".join(f"{key} {value:.0%}" for key, value in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

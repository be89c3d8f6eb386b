"""Regional prompts on the built-in model: does each region get its object, and what does it cost?

    python bench/regions.py [--n 50] [--steps 20] [--methods multidiffusion,attention]

A 384x128 frame (three 128 px thirds, the model's native size, so each third is exactly one crop the
classifier reads). Background "blue sky, green hills"; a region over the left third "a red house",
one over the right third "a yellow sun". The built-in model's attribute classifier
(tools/builtin_model/classifier.py) judges the left and right crops: kind and colour right, and the
other region's object absent. The same frame with one prompt naming both objects and their places is
the baseline. A second set does shapes on a plain background. Cost: seconds per run with 0..3
regions (same seed and size), interleaved so machine load hits every k alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from canvas_app.core.regions import Region
from canvas_app.engine.api import CancelToken, Finished, GenerationRequest
from tools.builtin_model.classifier import WEIGHTS

W, H, THIRD = 384, 128, 128
SETS = {
    "house_sun": {
        "background": "blue sky, green hills",
        "left": ("a red house", "house", "red"),
        "right": ("a yellow sun", "sun", "yellow"),
        "single": "a red house on the left, a yellow sun on the right, blue sky, green hills",
    },
    "shapes": {
        "background": "white background",
        "left": ("a red circle", "circle", "red"),
        "right": ("a blue square", "square", "blue"),
        "single": "a red circle on the left, a blue square on the right, white background",
    },
}


def generate(engine, request: GenerationRequest) -> np.ndarray:
    events: list = []
    engine.generate(request, events.append, CancelToken())
    if not isinstance(events[-1], Finished):
        raise RuntimeError(f"generation failed: {events[-1]}")
    return events[-1].candidates[0]


def regions_for(spec: dict) -> tuple[Region, ...]:
    return (
        Region(0, 0, THIRD, H, prompt=spec["left"][0]),
        Region(W - THIRD, 0, THIRD, H, prompt=spec["right"][0]),
    )


def judge(clf, images: list[np.ndarray], spec: dict) -> dict[str, float]:
    """Shares of images where each region's crop shows its object (kind and colour) and where the
    other region's object (its kind) is absent from that crop."""
    lefts = clf.predict(np.stack([im[:, :THIRD] for im in images]))
    rights = clf.predict(np.stack([im[:, W - THIRD :] for im in images]))
    _, lk, lc = spec["left"]
    _, rk, rc = spec["right"]
    left_ok = [p["kind"] == lk and p["color"] == lc for p in lefts]
    right_ok = [p["kind"] == rk and p["color"] == rc for p in rights]
    left_clean = [p["kind"] != rk for p in lefts]
    right_clean = [p["kind"] != lk for p in rights]
    mean = lambda xs: round(float(np.mean(xs)), 3)  # noqa: E731
    return {
        "left_kind_and_colour": mean(left_ok),
        "right_kind_and_colour": mean(right_ok),
        "both_right": mean([a and b for a, b in zip(left_ok, right_ok, strict=True)]),
        "left_colour": mean([p["color"] == lc for p in lefts]),
        "right_colour": mean([p["color"] == rc for p in rights]),
        "left_without_right_object": mean(left_clean),
        "right_without_left_object": mean(right_clean),
        "left_kinds": dict(sorted(_count(p["kind"] for p in lefts).items())),
        "right_kinds": dict(sorted(_count(p["kind"] for p in rights).items())),
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def cost(engine, model: str, steps: int, repeats: int, method: str) -> dict[str, float]:
    """Seconds of whole runs (the default two-pass path for this frame) with 0..3 regions."""
    extra = [Region(128, 0, 128, H, prompt="a green tree")]
    base = GenerationRequest(
        prompt="blue sky, green hills",
        width=W,
        height=H,
        steps=steps,
        seed=3,
        model=model,
        regions_method=method,
    )
    spec = SETS["house_sun"]
    all_regions = (*regions_for(spec), *extra)
    times: dict[int, list[float]] = {k: [] for k in range(4)}
    generate(engine, base)  # warm-up
    for _ in range(repeats):
        for k in range(4):
            t0 = time.perf_counter()
            generate(engine, base.with_changes(regions=all_regions[:k]))
            times[k].append(time.perf_counter() - t0)
    median = {k: statistics.median(v) for k, v in times.items()}
    out = {f"seconds_k{k}": round(median[k], 2) for k in range(4)}
    for k in range(1, 4):
        out[f"ratio_k{k}"] = round(median[k] / median[0], 3)
    out["added_per_region"] = round((median[3] / median[0] - 1) / 3, 3)
    return out


def unet_cost(model_dir: str, repeats: int) -> dict[str, float]:
    """Seconds per UNet call of the built-in model on one 128 px tile, interleaved: multidiffusion
    sends batches of 2 (negative + prompt) to 5 rows (+ 1..3 regions); masked attention always 2
    rows, with the tokens of 1 + k prompts in every cross-attention layer. CPU seconds of this
    process (one thread), not wall time: on a machine shared with other jobs the wall clock mostly
    measures the others. And the rows each tile of the bench's frame sends with multidiffusion (a
    region only joins the tiles it reaches)."""
    import torch

    from canvas_app.engine import region_attention
    from canvas_app.engine.local import LocalDiffusersEngine
    from canvas_app.engine.regions import prepare
    from canvas_app.engine.tiling import plan_tiles

    model = LocalDiffusersEngine(device="cpu").load(model_dir)
    unet, factor = model.unet, model.vae_factor
    region_attention.install(unet)
    side = model.native_size // factor
    length = int(model.pipe.tokenizer.model_max_length)
    x = torch.randn(1, unet.config.in_channels, side, side)
    text = torch.randn(1, length, unet.config.cross_attention_dim)
    t = torch.tensor(500)

    def attention_call(k: int) -> None:
        weights = torch.zeros(k + 1, 1, side, side)
        for i in range(k + 1):  # vertical stripes, one per prompt
            weights[i, :, :, i * side // (k + 1) : (i + 1) * side // (k + 1)] = 1
        tokens = region_attention.TileTokens([(i * length, (i + 1) * length) for i in range(k + 1)], weights)
        unet(
            x.expand(2, -1, -1, -1),
            t,
            encoder_hidden_states=text.repeat(2, k + 1, 1),
            cross_attention_kwargs={"regions": tokens},
        )

    calls = {
        f"batch{n}": (
            lambda n=n: unet(x.expand(n, -1, -1, -1), t, encoder_hidden_states=text.expand(n, -1, -1))
        )
        for n in range(2, 6)
    }
    calls |= {f"attention{k}": (lambda k=k: attention_call(k)) for k in range(1, 4)}
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for call in calls.values():  # warm-up
            call()
        for _ in range(repeats):
            for name, call in calls.items():
                t0 = time.process_time()
                call()
                times[name].append(time.process_time() - t0)
        spec = SETS["house_sun"]
        prompts = prepare(model, spec["background"], "", regions_for(spec), 7.5, W, H)
    median = {name: statistics.median(v) for name, v in times.items()}
    out: dict = {f"unet_cpu_seconds_{name}": round(v, 4) for name, v in median.items()}
    for k in range(1, 4):
        out[f"multidiffusion_unet_ratio_{k}_regions"] = round(median[f"batch{k + 2}"] / median["batch2"], 3)
        out[f"attention_unet_ratio_{k}_regions"] = round(median[f"attention{k}"] / median["batch2"], 3)
    tiles = plan_tiles(W // factor, H // factor, side, 32 // factor)
    rows = []
    for tile in tiles:
        local = prompts.weights[:, :, tile.y : tile.y + tile.h, tile.x : tile.x + tile.w]
        rows.append(2 + sum(1 for i in range(1, local.shape[0]) if float(local[i].max()) > 0))
    out["multidiffusion_rows_per_tile_two_regions"] = rows
    return out


def grid(rows: list[list[np.ndarray]], path: Path) -> None:
    """Each row one seed, each column one way of making it (e.g. single prompt, multidiffusion,
    attention); tick marks at the region edges."""
    from PIL import Image, ImageDraw

    gap = 8
    cols = len(rows[0])
    img = Image.new("RGB", (cols * (W + gap) + gap, len(rows) * (H + gap) + gap), (40, 40, 40))
    draw = ImageDraw.Draw(img)
    for i, row in enumerate(rows):
        y = gap + i * (H + gap)
        for j, picture in enumerate(row):
            left = gap + j * (W + gap)
            img.paste(Image.fromarray(picture), (left, y))
            for x in (THIRD, W - THIRD):
                draw.line([(left + x, y), (left + x, y + 5)], fill=(255, 255, 255))
                draw.line([(left + x, y + H - 6), (left + x, y + H - 1)], fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    from canvas_app.engine.local import LocalDiffusersEngine
    from tools.builtin_model.classifier import AttributeClassifier

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resources/models/builtin")
    parser.add_argument("--n", type=int, default=50, help="seeds per set")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sets", default="house_sun,shapes")
    parser.add_argument("--methods", default="multidiffusion,attention", help="regions_method values")
    parser.add_argument("--classifier", type=Path, default=WEIGHTS, help="attribute classifier weights")
    parser.add_argument("--cost-steps", type=int, default=10)
    parser.add_argument("--cost-repeats", type=int, default=3, help="whole runs per k (0: none)")
    parser.add_argument("--unet-repeats", type=int, default=10, help="UNet calls per batch size (0: none)")
    parser.add_argument("--baseline-n", type=int, default=None, help="seeds of the single prompt (default n)")
    parser.add_argument(
        "--images", type=Path, default=Path("bench-out/regions"), help="generated images (reused)"
    )
    parser.add_argument("--generate-only", action="store_true", help="make the images, judge nothing")
    parser.add_argument(
        "--judge-only", action="store_true", help="judge the seeds whose images exist, generate nothing"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/regions-bench.json"))
    parser.add_argument(
        "--grid",
        type=Path,
        default=Path("docs/images/regions-grid.png"),
        help="regions-grid-SET.png beside it",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (on a busy CPU one is fastest)")
    args = parser.parse_args(argv)
    import torch

    # On a shared machine idle OpenMP threads spin; one thread runs several times faster there.
    torch.set_num_threads(args.threads)

    baseline_n = args.n if args.baseline_n is None else args.baseline_n
    report: dict = {
        "size": f"{W}x{H}",
        "large_frame": "two-pass (the default: compose at 224x72, refine 4 tiles at strength 0.4)",
        "steps": args.steps,
    }
    engine = LocalDiffusersEngine(device="cpu", previews=False)

    def image(request: GenerationRequest, path: Path) -> np.ndarray:
        from PIL import Image

        if path.exists():
            return np.asarray(Image.open(path).convert("RGB"))
        out = generate(engine, request)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out).save(path)
        return out

    methods = args.methods.split(",")
    names = args.sets.split(",") if args.n > 0 else []
    # Seed by seed across sets and methods, so a run cut short has the same seeds for every column.
    made: dict[str, dict[str, list[np.ndarray]]] = {
        name: {m: [] for m in [*methods, "single"]} for name in names
    }
    t0 = time.time()
    for seed in range(args.n):
        for name in names:
            spec = SETS[name]
            base = GenerationRequest(
                prompt=spec["background"], width=W, height=H, steps=args.steps, seed=seed, model=args.model
            )
            stem = args.images / f"{name}-s{args.steps}-{seed:03d}"
            if args.judge_only and not all(stem.with_suffix(f".{m}.png").exists() for m in methods):
                continue
            for method in methods:
                request = base.with_changes(regions=regions_for(spec), regions_method=method)
                made[name][method].append(image(request, stem.with_suffix(f".{method}.png")))
            if seed < baseline_n and (not args.judge_only or stem.with_suffix(".single.png").exists()):
                made[name]["single"].append(
                    image(base.with_changes(prompt=spec["single"]), stem.with_suffix(".single.png"))
                )
        print("seed", seed, round(time.time() - t0), flush=True)
    if args.generate_only:
        return 0
    clf = AttributeClassifier()
    if names:  # the shipped weights (tools/builtin_model/classifier.py says how to rebuild them)
        report["classifier_accuracy_on_renders"] = clf.load(args.classifier)
    for name in names:
        spec, columns = SETS[name], made[name]
        report[name] = {m: judge(clf, columns[m], spec) for m in methods}
        report[name]["single_prompt"] = judge(clf, columns["single"], spec) if columns["single"] else None
        print(name, json.dumps(report[name]), flush=True)
        rows = min(8, len(columns[methods[0]]))
        blank = np.full((H, W, 3), 64, np.uint8)  # seeds without a single-prompt picture
        shown = ["single", *methods] if columns["single"] else methods
        grid(
            [[columns[c][i] if i < len(columns[c]) else blank for c in shown] for i in range(rows)],
            args.grid if name == "house_sun" else args.grid.with_name(f"regions-grid-{name}.png"),
        )
        report[name]["grid_columns"] = shown
        report[name]["seeds"] = len(columns[methods[0]])
        report[name]["single_prompt_seeds"] = len(columns["single"])
    if args.unet_repeats > 0:
        report["unet_cost"] = unet_cost(args.model, args.unet_repeats)
        print("unet cost", json.dumps(report["unet_cost"]), flush=True)
    for method in methods if args.cost_repeats > 0 else []:
        report[f"cost_{method}"] = cost(engine, args.model, args.cost_steps, args.cost_repeats, method)
        print("cost", method, json.dumps(report[f"cost_{method}"]), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

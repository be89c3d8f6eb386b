"""Regional prompts on the built-in model: does each region get its object, and what does it cost?

    python bench/regions.py [--n 50] [--steps 20] [--classifier checkpoints/classifier.pt]

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


def cost(engine, model: str, steps: int, repeats: int) -> dict[str, float]:
    extra = [Region(128, 0, 128, H, prompt="a green tree")]
    base = GenerationRequest(
        prompt="blue sky, green hills", width=W, height=H, steps=steps, seed=3, model=model
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
    """Seconds per UNet call of the built-in model on one 128 px tile for batches of 2 (negative +
    prompt) to 5 rows (+ 1..3 regions), interleaved; and the rows each tile of the bench's frame
    sends (a region only joins the tiles it reaches)."""
    import torch

    from canvas_app.engine.local import LocalDiffusersEngine
    from canvas_app.engine.regions import prepare
    from canvas_app.engine.tiling import plan_tiles

    model = LocalDiffusersEngine(device="cpu").load(model_dir)
    unet, factor = model.unet, model.vae_factor
    side = model.native_size // factor
    x = torch.randn(1, unet.config.in_channels, side, side)
    text = torch.randn(1, 77, unet.config.cross_attention_dim)
    t = torch.tensor(500)
    times: dict[int, list[float]] = {n: [] for n in range(2, 6)}
    with torch.inference_mode():
        unet(x.expand(2, -1, -1, -1), t, encoder_hidden_states=text.expand(2, -1, -1))  # warm-up
        for _ in range(repeats):
            for n in times:
                t0 = time.perf_counter()
                unet(x.expand(n, -1, -1, -1), t, encoder_hidden_states=text.expand(n, -1, -1))
                times[n].append(time.perf_counter() - t0)
        spec = SETS["house_sun"]
        prompts = prepare(model, spec["background"], "", regions_for(spec), 7.5, W, H)
    out = {f"unet_seconds_batch{n}": round(statistics.median(v), 4) for n, v in times.items()}
    base = statistics.median(times[2])
    for n in range(3, 6):
        out[f"unet_ratio_{n - 2}_regions"] = round(statistics.median(times[n]) / base, 3)
    tiles = plan_tiles(W // factor, H // factor, side, 32 // factor)
    rows = []
    for tile in tiles:
        local = prompts.weights[:, :, tile.y : tile.y + tile.h, tile.x : tile.x + tile.w]
        rows.append(2 + sum(1 for i in range(1, local.shape[0]) if float(local[i].max()) > 0))
    out["rows_per_tile_two_regions"] = rows
    out["row_ratio_two_regions"] = round(sum(rows) / (2 * len(tiles)), 3)
    return out


def grid(rows: list[tuple[np.ndarray | None, np.ndarray]], path: Path) -> None:
    """Each row one seed: the single prompt on the left (when made), the regions on the right (region
    edges marked)."""
    from PIL import Image, ImageDraw

    gap = 8
    cols = 2 if all(single is not None for single, _ in rows) else 1
    img = Image.new("RGB", (cols * (W + gap) + gap, len(rows) * (H + gap) + gap), (40, 40, 40))
    draw = ImageDraw.Draw(img)
    for i, (single, regional) in enumerate(rows):
        y = gap + i * (H + gap)
        left = gap
        if cols == 2:
            img.paste(Image.fromarray(single), (gap, y))
            left = 2 * gap + W
        img.paste(Image.fromarray(regional), (left, y))
        for x in (THIRD, W - THIRD):  # tick marks at the region edges
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
    parser.add_argument("--classifier", type=Path, default=Path("checkpoints/classifier.pt"))
    parser.add_argument("--fit-scenes", type=int, default=800, help="scenes to fit a missing classifier on")
    parser.add_argument("--fit-epochs", type=int, default=4)
    parser.add_argument("--cost-steps", type=int, default=10)
    parser.add_argument("--cost-repeats", type=int, default=3, help="whole runs per k (0: none)")
    parser.add_argument("--unet-repeats", type=int, default=10, help="UNet calls per batch size (0: none)")
    parser.add_argument("--baseline-n", type=int, default=None, help="seeds of the single prompt (default n)")
    parser.add_argument(
        "--images", type=Path, default=Path("bench-out/regions"), help="generated images (reused)"
    )
    parser.add_argument("--generate-only", action="store_true", help="make the images, judge nothing")
    parser.add_argument("--out", type=Path, default=Path("docs/regions-bench.json"))
    parser.add_argument("--grid", type=Path, default=Path("docs/images/regions-grid.png"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (on a busy CPU one is fastest)")
    args = parser.parse_args(argv)
    import torch

    # On a shared machine idle OpenMP threads spin; one thread runs several times faster there.
    torch.set_num_threads(args.threads)

    baseline_n = args.n if args.baseline_n is None else args.baseline_n
    report: dict = {
        "size": f"{W}x{H}",
        "seeds": args.n,
        "single_prompt_seeds": baseline_n,
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

    results = {}
    for name in args.sets.split(",") if args.n > 0 else []:
        spec = SETS[name]
        singles, regionals = [], []
        t0 = time.time()
        for seed in range(args.n):
            base = GenerationRequest(
                prompt=spec["background"], width=W, height=H, steps=args.steps, seed=seed, model=args.model
            )
            stem = args.images / f"{name}-s{args.steps}-{seed:03d}"
            regionals.append(
                image(base.with_changes(regions=regions_for(spec)), stem.with_suffix(".regions.png"))
            )
            if seed < baseline_n:
                singles.append(
                    image(base.with_changes(prompt=spec["single"]), stem.with_suffix(".single.png"))
                )
            print(name, seed, round(time.time() - t0), flush=True)
        results[name] = (spec, singles, regionals, round((time.time() - t0) / 60, 1))
    if args.generate_only:
        return 0
    clf = AttributeClassifier()
    if results:
        try:
            report["classifier_accuracy_on_renders"] = clf.load(args.classifier)
        except FileNotFoundError:  # none yet: fit one (the recipe of tools/builtin_model/classifier.py)
            accuracy = clf.fit(n_scenes=args.fit_scenes, epochs=args.fit_epochs)
            clf.save(args.classifier, accuracy)
            report["classifier_accuracy_on_renders"] = accuracy
    for name, (spec, singles, regionals, minutes) in results.items():
        report[name] = {
            "regions": judge(clf, regionals, spec),
            "single_prompt": judge(clf, singles, spec) if singles else None,
            "minutes_to_generate": minutes,
        }
        print(name, json.dumps(report[name]), flush=True)
        if name == "house_sun":
            padded = (
                singles + [None] * (len(regionals) - len(singles)) if singles else [None] * len(regionals)
            )
            grid(list(zip(padded[:8], regionals[:8], strict=True)), args.grid)
    if args.unet_repeats > 0:
        report["unet_cost"] = unet_cost(args.model, args.unet_repeats)
        print("unet cost", json.dumps(report["unet_cost"]), flush=True)
    if args.cost_repeats > 0:
        report["cost"] = cost(engine, args.model, args.cost_steps, args.cost_repeats)
        print("cost", json.dumps(report["cost"]), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

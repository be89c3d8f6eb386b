"""Check the attribute classifier on the built-in model's own images before trusting it as a judge.

    python -m tools.builtin_model.classifier_check [--seeds 1] [--out bench-out/classifier-check]

Generates one picture per prompt and seed ("a yellow sun, blue sky, hills", ...: the kinds and
colours the benchmarks ask for, one object each, 128 px, 20 steps), has the classifier judge each,
and draws a grid with the prompt and the verdict under every picture. Agreement with the prompt is a
lower bound of the classifier's accuracy (the model sometimes draws something else): look at the
grid to see which side a disagreement is on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tools.builtin_model.classifier import WEIGHTS, AttributeClassifier

# (kind, colour, setting): the objects of bench/regions.py first, then the rest of the vocabulary.
CASES = [
    ("house", "red", "blue sky"),
    ("sun", "yellow", "blue sky"),
    ("circle", "red", "white background"),
    ("square", "blue", "white background"),
    ("house", "yellow", "blue sky"),
    ("sun", "orange", "pink sky"),
    ("moon", "white", "black sky"),
    ("moon", "yellow", "purple sky"),
    ("tree", "green", "blue sky"),
    ("triangle", "green", "white background"),
    ("circle", "blue", "yellow background"),
    ("square", "red", "gray background"),
]


def prompt(kind: str, color: str, setting: str) -> str:
    return f"a {color} {kind}, {setting}" + (", hills" if setting.endswith("sky") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("resources/models/builtin"))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--out", type=Path, default=Path("bench-out/classifier-check"))
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    cases = [(c, s) for s in range(args.seeds) for c in CASES]
    args.out.mkdir(parents=True, exist_ok=True)
    paths = [args.out / f"{k}-{c}-{s}.png" for (k, c, _), s in cases]
    missing = [i for i, p in enumerate(paths) if not p.exists()]
    if missing:
        from tools.builtin_model.evaluate import Generator

        gen = Generator(args.model, Path("/nonexistent"), args.steps)
        for i in missing:  # one at a time: each picture saved as soon as it exists
            (kind, color, setting), seed = cases[i]
            image = gen.txt2img([prompt(kind, color, setting)], guidance=7.5, seed=100 + seed)[0]
            Image.fromarray(image).save(paths[i])
    if args.generate_only:
        return 0
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    clf = AttributeClassifier()
    clf.load(args.weights)
    predicted = clf.predict(images)
    rows = []
    for ((kind, color, setting), seed), p in zip(cases, predicted, strict=True):
        rows.append(
            {"prompt": prompt(kind, color, setting), "seed": seed, "kind": p["kind"], "color": p["color"]}
        )
    report = {
        "images": len(rows),
        "kind_agrees_with_prompt": float(
            np.mean([p["kind"] == k for ((k, _, _), _), p in zip(cases, predicted)])
        ),
        "color_agrees_with_prompt": float(
            np.mean([p["color"] == c for ((_, c, _), _), p in zip(cases, predicted)])
        ),
        "verdicts": rows,
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    _grid(images, rows, args.out / "grid.png")
    print(json.dumps({k: v for k, v in report.items() if k != "verdicts"}))
    for row in rows:
        print(row)
    return 0


def _grid(images: np.ndarray, rows: list[dict], path: Path) -> None:
    cols, cell, label = 6, 128, 28
    n = len(images)
    grid = Image.new("RGB", (cols * cell, ((n + cols - 1) // cols) * (cell + label)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (img, row) in enumerate(zip(images, rows, strict=True)):
        x, y = (i % cols) * cell, (i // cols) * (cell + label)
        grid.paste(Image.fromarray(img), (x, y))
        draw.text((x + 2, y + cell + 1), row["prompt"].split(",")[0], fill="black")
        draw.text((x + 2, y + cell + 14), f"-> {row['color']} {row['kind']}", fill="black")
    grid.save(path)


if __name__ == "__main__":
    raise SystemExit(main())

"""A small attribute classifier trained on the renderer's own images; it judges generated images.

Four heads: the setting (sky or background colour), the main object's kind, its colour, and its
position. The main object is the largest group the crop shows, as in the captions. Where two groups
are about the same size the main object is a coin toss, so such crops teach only the setting.

Generated images are softer and slightly colour-shifted compared with the renders, so training
blurs, tints and adds grain to every batch. The network uses BatchNorm: with GroupNorm, which
normalises each image on its own, a small shape on a flat background barely registered (circle,
square or triangle: 40% right on its own training crops after five epochs, against 100% after eight
with BatchNorm).

Generated objects also come larger than rendered ones (a regional "sun" fills its third), so a share
of the crops is zoomed in on the main object (1.2-2.2x); those teach kind and colour, not position.
Trained weights ship beside this file (``WEIGHTS``, half precision, about 0.5 MB): rebuilding them
takes a few CPU minutes (``python -m tools.builtin_model.classifier``), and the numbers in
docs/benchmarks.md are those of these weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.builtin_model.scenes import (
    BACKGROUND_COLORS,
    COLORS,
    HALF_INSIDE,
    SCENE_W,
    SKY_COLORS,
    crop_groups,
    render_scene,
    setting_phrase,
    visible_objects,
)

CROP = 128
WEIGHTS = Path(__file__).with_name("classifier-weights.pt")
# Share of training crops zoomed in on their main object, and the zoom range.
ZOOM_SHARE = 0.35
ZOOM_RANGE = (1.2, 2.2)
# Half resolution: 4x cheaper to train than full (what makes the fit fit in CPU minutes); the
# smallest shapes are still 11 px there, and the per-kind recall the fit reports shows circles,
# squares, suns and crescent moons apart.
INPUT = 64
# The main object is clear when its group's largest object has this many times the area of any
# other group's (objects at least half inside count as other groups).
CLEAR_RATIO = 1.5
ATTRIBUTES: dict[str, list[str]] = {
    "setting": [f"{c} sky" for c in SKY_COLORS] + [f"{c} background" for c in BACKGROUND_COLORS],
    "kind": ["house", "tree", "sun", "moon", "circle", "square", "triangle"],
    "color": sorted(COLORS),
    "position": ["left", "center", "right"],
}


def crop_labels(scene, crop_x: int) -> dict[str, str] | None:
    groups = crop_groups(scene, crop_x, CROP)
    if not groups:
        return None
    kind, color, _, position = groups[0]
    return {"setting": setting_phrase(scene), "kind": kind, "color": color, "position": position}


def main_object_is_clear(scene, crop_x: int) -> bool:
    """Whether the largest group of the crop is clearly larger than everything else it shows."""
    groups = crop_groups(scene, crop_x, CROP)
    if not groups:
        return False
    main = groups[0][:2]
    areas: dict[tuple[str, str], int] = {}
    for obj in visible_objects(scene, crop_x, CROP, HALF_INSIDE):
        areas[(obj.kind, obj.color)] = max(obj.area, areas.get((obj.kind, obj.color), 0))
    others = [a for key, a in areas.items() if key != main]
    return not others or areas.get(main, 0) >= CLEAR_RATIO * max(others)


def main_object_box(scene, crop_x: int) -> tuple[int, int, int, int] | None:
    """The box of the largest object of the crop's main group (scene pixels)."""
    groups = crop_groups(scene, crop_x, CROP)
    if not groups:
        return None
    kind, color = groups[0][:2]
    objs = [o for o in visible_objects(scene, crop_x, CROP) if (o.kind, o.color) == (kind, color)]
    return max(objs, key=lambda o: o.area).box


def _zoomed(pixels: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A square window around ``box`` (jittered) of CROP / zoom pixels, resized to CROP."""
    from PIL import Image

    side = int(round(CROP / rng.uniform(*ZOOM_RANGE)))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    jitter = max(0, side // 2 - max(box[2] - box[0], box[3] - box[1]) // 2 - 2)
    x0 = int(np.clip(cx - side / 2 + rng.integers(-jitter, jitter + 1), 0, pixels.shape[1] - side))
    y0 = int(np.clip(cy - side / 2 + rng.integers(-jitter, jitter + 1), 0, pixels.shape[0] - side))
    window = Image.fromarray(pixels[y0 : y0 + side, x0 : x0 + side])
    return np.asarray(window.resize((CROP, CROP), Image.Resampling.BICUBIC))


def labelled_crops(
    seeds: range, rng: np.random.Generator, per_scene: int = 2, zoom_share: float = 0.0
) -> tuple[np.ndarray, list[dict[str, str]], np.ndarray, np.ndarray]:
    """Crops, their labels, whether each crop's main object is clear, and whether its position label
    holds (not for crops zoomed in on the main object)."""
    images, labels, clear, placed = [], [], [], []
    for seed in seeds:
        scene, pixels = render_scene(seed, include_held_out=True)
        for crop_x in rng.choice(np.arange(0, SCENE_W - CROP + 1, 4), per_scene, replace=False):
            lab = crop_labels(scene, int(crop_x))
            if not lab:
                continue
            is_clear = main_object_is_clear(scene, int(crop_x))
            box = main_object_box(scene, int(crop_x))
            if zoom_share > 0 and is_clear and box is not None and rng.random() < zoom_share:
                images.append(_zoomed(pixels, box, rng))
                placed.append(False)
            else:
                images.append(pixels[:, crop_x : crop_x + CROP])
                placed.append(True)
            labels.append(lab)
            clear.append(is_clear)
    return np.stack(images), labels, np.array(clear), np.array(placed)


def _network():
    import torch
    import torch.nn as nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)
        )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(block(3, 24), block(24, 48), block(48, 96), block(96, 128))
            # A coarse 3x3 layout, for position, beside the strongest response anywhere, for what
            # the object is wherever it stands.
            self.pool = nn.AdaptiveAvgPool2d((3, 3))
            self.heads = nn.ModuleDict({k: nn.Linear(128 * 10, len(v)) for k, v in ATTRIBUTES.items()})

        def forward(self, x):
            f = self.features(x)
            h = torch.cat([f.amax(dim=(2, 3)), self.pool(f).flatten(1)], dim=1)
            return {k: head(h) for k, head in self.heads.items()}

    return Net()


def _prepare(images: np.ndarray):
    import torch

    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    if x.shape[-1] != INPUT:
        x = torch.nn.functional.interpolate(x, size=(INPUT, INPUT), mode="area")
    return x


def augment(x, gen):
    """Blur, per-channel gain and offset, and grain: renders made to look like generated images."""
    import torch

    n = len(x)
    sigma = float(torch.rand((), generator=gen)) * 2.0 * x.shape[-1] / 128  # up to 2 px at full size
    if sigma > 0.3:
        r = torch.arange(-3, 4, dtype=torch.float32)
        k = torch.exp(-(r**2) / (2 * sigma**2))
        k = k / k.sum()
        x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, 7).expand(3, 1, 1, 7), padding=(0, 3), groups=3)
        x = torch.nn.functional.conv2d(x, k.view(1, 1, 7, 1).expand(3, 1, 7, 1), padding=(3, 0), groups=3)
    gain = 1 + (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.25
    offset = (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.2
    return x * gain + offset + 0.03 * torch.randn(x.shape, generator=gen)


class AttributeClassifier:
    def __init__(self) -> None:
        self.net = _network()

    def fit(
        self, n_scenes: int = 1200, epochs: int = 14, seed: int = 7, checkpoint: Path | None = None
    ) -> dict[str, dict[str, float]]:
        """Train on fresh renders (held-out combinations included); return per-attribute accuracy on
        a test split of renders the classifier never saw: on crops whose main object is clear (what
        it judges: prompts name one object) and on all crops. With ``checkpoint``, the state is saved
        there after every epoch and a later call with the same arguments resumes from it."""
        import torch

        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        images, labels, clear, placed = labelled_crops(
            range(10_000_000, 10_000_000 + n_scenes), rng, per_scene=3, zoom_share=ZOOM_SHARE
        )
        x = _prepare(images)
        y = {k: torch.tensor([v.index(lab[k]) for lab in labels]) for k, v in ATTRIBUTES.items()}
        object_weight = torch.from_numpy(clear.astype(np.float32))
        position_weight = torch.from_numpy((clear & placed).astype(np.float32))
        n_test = len(x) // 10
        steps = epochs * ((len(x) - n_test + 63) // 64)
        opt = torch.optim.AdamW(self.net.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
        done = 0
        if checkpoint is not None and checkpoint.exists():
            state = torch.load(checkpoint, weights_only=False)
            if state["args"] == [n_scenes, epochs, seed]:
                self.net.load_state_dict(state["net"])
                opt.load_state_dict(state["opt"])
                sched.load_state_dict(state["sched"])
                gen.set_state(state["gen"])
                torch.set_rng_state(state["torch_rng"])
                done = state["epoch"]
        for epoch in range(done, epochs):
            self.net.train()
            order = torch.randperm(len(x) - n_test) + n_test
            for i in range(0, len(order), 64):
                idx = order[i : i + 64]
                out = self.net(augment(x[idx], gen))
                loss = torch.nn.functional.cross_entropy(out["setting"], y["setting"][idx])
                for k in ("kind", "color", "position"):
                    weight = (position_weight if k == "position" else object_weight)[idx]
                    per_item = torch.nn.functional.cross_entropy(out[k], y[k][idx], reduction="none")
                    loss = loss + (per_item * weight).sum() / weight.sum().clamp(min=1)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "args": [n_scenes, epochs, seed],
                        "epoch": epoch + 1,
                        "net": self.net.state_dict(),
                        "opt": opt.state_dict(),
                        "sched": sched.state_dict(),
                        "gen": gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                    },
                    checkpoint,
                )
        self.net.eval()
        test_pred = self.predict_tensor(x[:n_test])

        def score(rows: list[int]) -> dict[str, float]:
            out = {}
            for k in ATTRIBUTES:
                kept = [i for i in rows if k != "position" or placed[i]]
                out[k] = float(np.mean([test_pred[i][k] == labels[i][k] for i in kept]))
            return out

        def per_kind(rows: list[int]) -> dict[str, float]:
            kinds = sorted({labels[i]["kind"] for i in rows})
            return {
                kind: float(
                    np.mean([test_pred[i]["kind"] == kind for i in rows if labels[i]["kind"] == kind])
                )
                for kind in kinds
            }

        clear_rows = [i for i in range(n_test) if clear[i]]
        return {
            "main_object_clear": score(clear_rows),
            "all_crops": score(list(range(n_test))),
            "kind_recall_main_object_clear": per_kind(clear_rows),
            "test_crops": {"main_object_clear": len(clear_rows), "all": n_test},
        }

    def save(self, path: Path, accuracy: dict) -> None:
        """Half-precision weights (what a judge needs; half the size) and the fit's accuracy."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        net = {k: v.half() if v.is_floating_point() else v for k, v in self.net.state_dict().items()}
        torch.save({"net": net, "accuracy": accuracy}, path)

    def load(self, path: Path = WEIGHTS) -> dict:
        """Weights of an earlier fit; returns the accuracy that fit measured."""
        import torch

        state = torch.load(path, weights_only=True)
        self.net.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state["net"].items()}
        )
        self.net.eval()
        return state["accuracy"]

    def predict_tensor(self, x) -> list[dict[str, str]]:
        import torch

        with torch.inference_mode():  # in chunks: full-resolution activations are large
            chunks = [self.net(x[i : i + 256]) for i in range(0, len(x), 256)]
        idx = {k: torch.cat([c[k] for c in chunks]).argmax(1).tolist() for k in ATTRIBUTES}
        return [{k: ATTRIBUTES[k][idx[k][i]] for k in ATTRIBUTES} for i in range(len(x))]

    def predict(self, images: np.ndarray) -> list[dict[str, str]]:
        """``images``: N x 128 x 128 x 3 uint8."""
        return self.predict_tensor(_prepare(images))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import time

    import torch

    parser = argparse.ArgumentParser(description="Fit the attribute classifier and save its weights.")
    parser.add_argument("--scenes", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/classifier-fit.pt"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0, cpu0 = time.time(), time.process_time()
    clf = AttributeClassifier()
    accuracy = clf.fit(args.scenes, args.epochs, args.seed, checkpoint=args.checkpoint)
    accuracy["fit"] = {
        "scenes": args.scenes,
        "epochs": args.epochs,
        "seed": args.seed,
        "wall_minutes_this_call": round((time.time() - t0) / 60, 1),
        "cpu_minutes_this_call": round((time.process_time() - cpu0) / 60, 1),
    }
    clf.save(args.out, accuracy)
    print(json.dumps(accuracy, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A small attribute classifier trained on the renderer's own images; it judges generated images.

Four heads: the setting (sky or background colour), the main object's kind, its colour, and its
position. The main object is the largest group the crop shows, as in the captions. Where two groups
are about the same size the main object is a coin toss, so such crops teach only the setting.

Generated images are softer and slightly colour-shifted compared with the renders, so training
blurs, tints and adds grain to every batch. The network uses BatchNorm: with GroupNorm, which
normalises each image on its own, a small shape on a flat background barely registered (circle,
square or triangle: 40% right on its own training crops after five epochs, against 100% after eight
with BatchNorm).
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
# Full resolution: at half size a 22 px square and a circle blur into each other.
INPUT = 128
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


def labelled_crops(
    seeds: range, rng: np.random.Generator, per_scene: int = 2
) -> tuple[np.ndarray, list[dict[str, str]], np.ndarray]:
    """Crops, their labels, and whether each crop's main object is clear."""
    images, labels, clear = [], [], []
    for seed in seeds:
        scene, pixels = render_scene(seed, include_held_out=True)
        for crop_x in rng.choice(np.arange(0, SCENE_W - CROP + 1, 4), per_scene, replace=False):
            lab = crop_labels(scene, int(crop_x))
            if lab:
                images.append(pixels[:, crop_x : crop_x + CROP])
                labels.append(lab)
                clear.append(main_object_is_clear(scene, int(crop_x)))
    return np.stack(images), labels, np.array(clear)


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
            self.features = nn.Sequential(
                block(3, 24), block(24, 48), block(48, 96), block(96, 128), block(128, 128)
            )
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
    sigma = float(torch.rand((), generator=gen)) * 2.0
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

    def fit(self, n_scenes: int = 3000, epochs: int = 6, seed: int = 7) -> dict[str, dict[str, float]]:
        """Train on fresh renders (held-out combinations included); return per-attribute accuracy on
        a test split of renders the classifier never saw: on crops whose main object is clear (what
        it judges: prompts name one object) and on all crops."""
        import torch

        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        images, labels, clear = labelled_crops(range(10_000_000, 10_000_000 + n_scenes), rng, per_scene=3)
        x = _prepare(images)
        y = {k: torch.tensor([v.index(lab[k]) for lab in labels]) for k, v in ATTRIBUTES.items()}
        object_weight = torch.from_numpy(clear.astype(np.float32))
        n_test = len(x) // 10
        steps = epochs * ((len(x) - n_test + 63) // 64)
        opt = torch.optim.AdamW(self.net.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
        self.net.train()
        for _ in range(epochs):
            order = torch.randperm(len(x) - n_test) + n_test
            for i in range(0, len(order), 64):
                idx = order[i : i + 64]
                out = self.net(augment(x[idx], gen))
                loss = torch.nn.functional.cross_entropy(out["setting"], y["setting"][idx])
                weight = object_weight[idx]
                for k in ("kind", "color", "position"):
                    per_item = torch.nn.functional.cross_entropy(out[k], y[k][idx], reduction="none")
                    loss = loss + (per_item * weight).sum() / weight.sum().clamp(min=1)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        self.net.eval()
        test_pred = self.predict_tensor(x[:n_test])

        def score(rows: list[int]) -> dict[str, float]:
            return {k: float(np.mean([test_pred[i][k] == labels[i][k] for i in rows])) for k in ATTRIBUTES}

        return {
            "main_object_clear": score([i for i in range(n_test) if clear[i]]),
            "all_crops": score(list(range(n_test))),
        }

    def save(self, path: Path, accuracy: dict) -> None:
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"net": self.net.state_dict(), "accuracy": accuracy}, path)

    def load(self, path: Path) -> dict:
        """Weights of an earlier fit; returns the accuracy that fit measured."""
        import torch

        state = torch.load(path, weights_only=True)
        self.net.load_state_dict(state["net"])
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

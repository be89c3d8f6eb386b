"""A small attribute classifier trained on the renderer's own images; it judges generated images.

Four heads: the setting (sky or background colour), the main object's kind, its colour, and its
position. The main object is the largest group the crop shows, as in the captions.
"""

from __future__ import annotations

import numpy as np

from canvas_app.builtin.scenes import (
    BACKGROUND_COLORS,
    COLORS,
    SCENE_W,
    SKY_COLORS,
    crop_groups,
    render_scene,
    setting_phrase,
)

CROP = 128
INPUT = 64
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


def labelled_crops(seeds: range, rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, str]]]:
    images, labels = [], []
    for seed in seeds:
        scene, pixels = render_scene(seed, include_held_out=True)
        for crop_x in rng.choice(np.arange(0, SCENE_W - CROP + 1, 4), 2, replace=False):
            lab = crop_labels(scene, int(crop_x))
            if lab:
                images.append(pixels[:, crop_x : crop_x + CROP])
                labels.append(lab)
    return np.stack(images), labels


def _network():
    import torch.nn as nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)
        )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(block(3, 32), block(32, 64), block(64, 96), block(96, 128))
            # Keep a coarse spatial layout: position needs to know where things are.
            self.pool = nn.AdaptiveAvgPool2d((2, 4))
            self.heads = nn.ModuleDict({k: nn.Linear(128 * 8, len(v)) for k, v in ATTRIBUTES.items()})

        def forward(self, x):
            h = self.pool(self.features(x)).flatten(1)
            return {k: head(h) for k, head in self.heads.items()}

    return Net()


def _prepare(images: np.ndarray):
    import torch

    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return torch.nn.functional.interpolate(x, size=(INPUT, INPUT), mode="area")


class AttributeClassifier:
    def __init__(self) -> None:
        self.net = _network()

    def fit(self, n_scenes: int = 3000, epochs: int = 6, seed: int = 7) -> float:
        """Train on fresh renders (held-out combinations included); return accuracy on a test split."""
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        images, labels = labelled_crops(range(10_000_000, 10_000_000 + n_scenes), rng)
        x = _prepare(images)
        y = {k: torch.tensor([v.index(lab[k]) for lab in labels]) for k, v in ATTRIBUTES.items()}
        n_test = len(x) // 10
        opt = torch.optim.Adam(self.net.parameters(), lr=2e-3)
        self.net.train()
        for _ in range(epochs):
            order = torch.randperm(len(x) - n_test) + n_test
            for i in range(0, len(order), 64):
                idx = order[i : i + 64]
                out = self.net(x[idx])
                loss = sum(torch.nn.functional.cross_entropy(out[k], y[k][idx]) for k in ATTRIBUTES)
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        test_pred = self.predict_tensor(x[:n_test])
        hits = [test_pred[i][k] == labels[i][k] for i in range(n_test) for k in ATTRIBUTES]
        return float(np.mean(hits))

    def predict_tensor(self, x) -> list[dict[str, str]]:
        import torch

        with torch.inference_mode():
            out = self.net(x)
        idx = {k: out[k].argmax(1).tolist() for k in ATTRIBUTES}
        return [{k: ATTRIBUTES[k][idx[k][i]] for k in ATTRIBUTES} for i in range(len(x))]

    def predict(self, images: np.ndarray) -> list[dict[str, str]]:
        """``images``: N x 128 x 128 x 3 uint8."""
        return self.predict_tensor(_prepare(images))

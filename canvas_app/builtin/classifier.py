"""A small attribute classifier trained on the renderer's own images; it judges generated images.

Four heads: the setting (sky or background colour), the main object's kind, its colour, and its
position. The main object is the largest group the crop shows, as in the captions.

Generated images are softer and slightly colour-shifted compared with the renders, so training
blurs, tints and adds grain to every batch, and the network uses GroupNorm (batch statistics of crisp
renders do not transfer to generated images).
"""

from __future__ import annotations

from pathlib import Path

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


def labelled_crops(
    seeds: range, rng: np.random.Generator, per_scene: int = 2
) -> tuple[np.ndarray, list[dict[str, str]]]:
    images, labels = [], []
    for seed in seeds:
        scene, pixels = render_scene(seed, include_held_out=True)
        for crop_x in rng.choice(np.arange(0, SCENE_W - CROP + 1, 4), per_scene, replace=False):
            lab = crop_labels(scene, int(crop_x))
            if lab:
                images.append(pixels[:, crop_x : crop_x + CROP])
                labels.append(lab)
    return np.stack(images), labels


def _network():
    import torch.nn as nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.ReLU(), nn.MaxPool2d(2)
        )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(block(3, 32), block(32, 64), block(64, 96), block(96, 128))
            # Keep a coarse 3x3 layout: position needs to know where things are.
            self.pool = nn.AdaptiveAvgPool2d((3, 3))
            self.heads = nn.ModuleDict({k: nn.Linear(128 * 9, len(v)) for k, v in ATTRIBUTES.items()})

        def forward(self, x):
            h = self.pool(self.features(x)).flatten(1)
            return {k: head(h) for k, head in self.heads.items()}

    return Net()


def _prepare(images: np.ndarray):
    import torch

    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return torch.nn.functional.interpolate(x, size=(INPUT, INPUT), mode="area")


def augment(x, gen):
    """Blur, per-channel gain and offset, and grain: renders made to look like generated images."""
    import torch

    n = len(x)
    sigma = float(torch.rand((), generator=gen)) * 1.2
    if sigma > 0.2:
        r = torch.arange(-2, 3, dtype=torch.float32)
        k = torch.exp(-(r**2) / (2 * sigma**2))
        k = k / k.sum()
        x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, 5).expand(3, 1, 1, 5), padding=(0, 2), groups=3)
        x = torch.nn.functional.conv2d(x, k.view(1, 1, 5, 1).expand(3, 1, 5, 1), padding=(2, 0), groups=3)
    gain = 1 + (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.25
    offset = (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.2
    return x * gain + offset + 0.03 * torch.randn(x.shape, generator=gen)


class AttributeClassifier:
    def __init__(self) -> None:
        self.net = _network()

    def fit(self, n_scenes: int = 4000, epochs: int = 8, seed: int = 7) -> dict[str, float]:
        """Train on fresh renders (held-out combinations included); return per-attribute accuracy on
        a test split of renders the classifier never saw."""
        import torch

        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        images, labels = labelled_crops(range(10_000_000, 10_000_000 + n_scenes), rng, per_scene=3)
        x = _prepare(images)
        y = {k: torch.tensor([v.index(lab[k]) for lab in labels]) for k, v in ATTRIBUTES.items()}
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
                loss = sum(torch.nn.functional.cross_entropy(out[k], y[k][idx]) for k in ATTRIBUTES)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        self.net.eval()
        test_pred = self.predict_tensor(x[:n_test])
        return {k: float(np.mean([test_pred[i][k] == labels[i][k] for i in range(n_test)])) for k in ATTRIBUTES}

    def save(self, path: Path, accuracy: dict[str, float]) -> None:
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"net": self.net.state_dict(), "accuracy": accuracy}, path)

    def load(self, path: Path) -> dict[str, float]:
        """Weights of an earlier fit; returns the accuracy that fit measured."""
        import torch

        state = torch.load(path, weights_only=True)
        self.net.load_state_dict(state["net"])
        self.net.eval()
        return state["accuracy"]

    def predict_tensor(self, x) -> list[dict[str, str]]:
        import torch

        with torch.inference_mode():
            out = self.net(x)
        idx = {k: out[k].argmax(1).tolist() for k in ATTRIBUTES}
        return [{k: ATTRIBUTES[k][idx[k][i]] for k in ATTRIBUTES} for i in range(len(x))]

    def predict(self, images: np.ndarray) -> list[dict[str, str]]:
        """``images``: N x 128 x 128 x 3 uint8."""
        return self.predict_tensor(_prepare(images))

"""The training data as the UNet stages see it: the rendered scenes and their latents on disk, and
random native-size latent crops with captions of what each shows."""

from __future__ import annotations

import random

import numpy as np

from tools.builtin_model import architecture as arch
from tools.builtin_model.scenes import HALF_INSIDE, caption_for_crop
from tools.builtin_model.workdir import Workdir


def load_data(work: Workdir):
    import pickle

    pixels = np.load(work.root / "scenes.npy", mmap_mode="r")
    scenes = pickle.loads((work.root / "scenes.pkl").read_bytes())
    return pixels, scenes


def held_out_count(n_scenes: int) -> int:
    """The last scenes are never trained on; the VAE's validation PSNR is measured on them."""
    return max(1, min(200, n_scenes // 10))


class LatentCrops:
    """Random native-size latent windows of the encoded scenes, with captions of what each shows."""

    def __init__(self, work: Workdir, seed: int) -> None:
        self.latents = np.load(work.root / "latents.npy", mmap_mode="r")
        _, self.scenes = load_data(work)
        self.scale = work.info("latents")["scaling_factor"]
        self.n_train = len(self.latents) - held_out_count(len(self.latents))
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Draw from here on as a fresh instance seeded by ``seed`` would (without reloading)."""
        self.rng = np.random.default_rng(seed)
        self.py_rng = random.Random(seed)

    def batch(self, size: int, caption_dropout: float, complete: bool = False):
        """``complete`` captions name every object at least half inside the crop and drop no phrase;
        otherwise secondary phrases are dropped at random and only objects mostly inside are named."""
        import torch

        ls = arch.LATENT_SIZE
        idx = self.rng.integers(0, self.n_train, size)
        offsets = self.rng.integers(0, self.latents.shape[-1] - ls + 1, size)
        z = np.stack([self.latents[i, :, :, o : o + ls] for i, o in zip(idx, offsets)]).astype(np.float32)
        captions = [
            ""
            if self.py_rng.random() < caption_dropout
            else self.caption(self.scenes[i], int(o) * arch.VAE_FACTOR, complete)
            for i, o in zip(idx, offsets)
        ]
        return torch.from_numpy(z) * self.scale, captions, idx, offsets

    def caption(self, scene, crop_x: int, complete: bool) -> str:
        if complete:
            return caption_for_crop(scene, crop_x, arch.NATIVE_SIZE, min_inside=HALF_INSIDE)
        return caption_for_crop(scene, crop_x, arch.NATIVE_SIZE, self.py_rng)

"""The training data as the UNet stages see it: the rendered scenes and their latents on disk, random
native-size latent crops with captions of what each shows, and one-object crops for the layout stage."""

from __future__ import annotations

import random

import numpy as np

from canvas_app.builtin import architecture as arch
from canvas_app.builtin.scenes import (
    HALF_INSIDE,
    caption_for_crop,
    crop_groups,
    mirrored_caption,
    visible_objects,
)
from canvas_app.builtin.workdir import Workdir

# In a layout sample the object's region counts this many times in the loss: its place is what the
# sample teaches, and it covers only a few percent of the crop.
LAYOUT_OBJECT_WEIGHT = 5.0


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

    def layout_batch(self, size: int, caption_dropout: float):
        """Crops that show exactly one object, so that its position word is unambiguous; half of them
        mirrored with "left" and "right" swapped in the caption, so that the word, not the scene,
        predicts the side. Returns latents, captions, scene indices, offsets and a per-latent-pixel
        loss weight that counts the object's region ``LAYOUT_OBJECT_WEIGHT`` times."""
        import torch

        ls, f = arch.LATENT_SIZE, arch.VAE_FACTOR
        zs, captions, weights, idx, offsets = [], [], [], [], []
        for _ in range(size * 1000):
            if len(zs) == size:
                break
            i = int(self.rng.integers(0, self.n_train))
            o = int(self.rng.integers(0, self.latents.shape[-1] - ls + 1))
            scene, crop_x = self.scenes[i], o * f
            groups = crop_groups(scene, crop_x, arch.NATIVE_SIZE, HALF_INSIDE)
            if len(groups) != 1 or groups[0][2] != 1:
                continue
            z = np.asarray(self.latents[i, :, :, o : o + ls], np.float32)
            weight = np.ones((ls, ls), np.float32)
            for obj in visible_objects(scene, crop_x, arch.NATIVE_SIZE, HALF_INSIDE):
                x0, y0, x1, y1 = obj.box
                weight[y0 // f : y1 // f + 1, max(0, (x0 - crop_x) // f) : max(0, (x1 - crop_x) // f + 1)] = (
                    LAYOUT_OBJECT_WEIGHT
                )
            caption = self.caption(scene, crop_x, complete=True)
            if self.py_rng.random() < 0.5:
                z, weight, caption = z[..., ::-1], weight[:, ::-1], mirrored_caption(caption)
            zs.append(np.ascontiguousarray(z))
            weights.append(np.ascontiguousarray(weight))
            captions.append("" if self.py_rng.random() < caption_dropout else caption)
            idx.append(i)
            offsets.append(o)
        if len(zs) < size:
            raise RuntimeError("the training scenes have (almost) no crops that show a single object")
        z = torch.from_numpy(np.stack(zs)) * self.scale
        return z, captions, np.array(idx), np.array(offsets), torch.from_numpy(np.stack(weights))[:, None]

    def caption(self, scene, crop_x: int, complete: bool) -> str:
        if complete:
            return caption_for_crop(scene, crop_x, arch.NATIVE_SIZE, min_inside=HALF_INSIDE)
        return caption_for_crop(scene, crop_x, arch.NATIVE_SIZE, self.py_rng)

"""Cheap live previews: the predicted clean latent (x0) mapped to RGB by a linear map, at latent
resolution, so a preview costs a tiny matrix product instead of a VAE decode.

The map is (C + 1) x 3 (a bias row last) and acts on latents as the UNet sees them (VAE latents
times the scaling factor), giving RGB in [-1, 1]. Known factors are used for the SD 1.x/2.x and SDXL
VAEs; any other VAE (the built-in model's included) gets a map fitted by least squares from VAE
encodings of sample images, once per loaded model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

# Published latent->RGB factors (rows: latent channels; columns: R, G, B), as used by ComfyUI.
SD15_FACTORS = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]
SD15_BIAS = [0.0, 0.0, 0.0]
SDXL_FACTORS = [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
]
SDXL_BIAS = [0.1084, -0.0175, -0.0011]

MAP_FILE = "latent_rgb.json"  # optional, in a model folder: {"factors": [[r,g,b],...], "bias": [r,g,b]}


def known_map(vae_config: dict[str, Any]) -> np.ndarray | None:
    """The published map for the SD 1.x/2.x or SDXL VAE, recognised from its config."""
    if int(vae_config.get("latent_channels", 0)) != 4:
        return None
    if list(vae_config.get("block_out_channels", [])) != [128, 256, 512, 512]:
        return None
    scaling = float(vae_config.get("scaling_factor", 0.18215))
    if abs(scaling - 0.18215) < 1e-6:
        return np.array(SD15_FACTORS + [SD15_BIAS], dtype=np.float32)
    if abs(scaling - 0.13025) < 1e-6:
        return np.array(SDXL_FACTORS + [SDXL_BIAS], dtype=np.float32)
    return None


def sample_images(size: int, count: int = 6, seed: int = 1234) -> np.ndarray:
    """count x size x size x 3 float images in [-1, 1]: smooth random colour fields and flat patches,
    so the fit sees the whole colour cube at low spatial frequency (what a latent cell encodes)."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        grid = 2 + i % 4
        small = rng.uniform(-1.0, 1.0, size=(grid, grid, 3)).astype(np.float32)
        images.append(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).clip(-1, 1))
    return np.stack(images)


def fit_map(vae: Any, scaling: float, shift: float = 0.0, size: int = 64) -> np.ndarray:
    """Least-squares (C + 1) x 3 map from scaled latents to the RGB they encode."""
    import torch

    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    size = max(size, 8 * factor)
    images = sample_images(size)
    param = next(vae.parameters())
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).to(param.device, param.dtype)
        latents = (vae.encode(x).latent_dist.mode() - shift) * scaling
        rgb = torch.nn.functional.avg_pool2d(x, factor)
    lat = latents.float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).cpu().numpy()
    target = rgb.float().permute(0, 2, 3, 1).reshape(-1, 3).cpu().numpy()
    design = np.concatenate([lat, np.ones((lat.shape[0], 1), np.float32)], axis=1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.astype(np.float32)


def map_for_model(vae: Any, model_dir: Path | None) -> np.ndarray:
    """A shipped map file, else the known map, else a fitted one."""
    if model_dir is not None and (model_dir / MAP_FILE).is_file():
        data = json.loads((model_dir / MAP_FILE).read_text())
        return np.array(list(data["factors"]) + [data.get("bias", [0.0, 0.0, 0.0])], dtype=np.float32)
    config = dict(vae.config)
    known = known_map(config)
    if known is not None:
        return known
    return fit_map(vae, float(config.get("scaling_factor", 1.0)), float(config.get("shift_factor") or 0.0))


class Previewer:
    """Turns a predicted x0 latent into an RGB uint8 image, for each tile at most once per
    ``interval_s`` (0 = every step)."""

    def __init__(self, rgb_map: np.ndarray, interval_s: float = 0.1) -> None:
        self.rgb_map = rgb_map
        self.interval_s = interval_s
        self._last: dict[int, float] = {}
        self._torch_map: Any = None

    def due(self, tile: int = 0) -> bool:
        return time.monotonic() - self._last.get(tile, -float("inf")) >= self.interval_s

    def render(self, x0: Any, tile: int = 0) -> np.ndarray:
        """x0: (1, C, h, w) tensor -> h x w x 3 uint8."""
        import torch

        if self._torch_map is None or self._torch_map.device != x0.device:
            self._torch_map = torch.from_numpy(self.rgb_map).to(x0.device, torch.float32)
        self._last[tile] = time.monotonic()
        m = self._torch_map
        rgb = torch.einsum("chw,cr->hwr", x0[0].float(), m[:-1]) + m[-1]
        rgb = ((rgb + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)
        return rgb.cpu().numpy()

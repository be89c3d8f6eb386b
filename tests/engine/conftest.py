"""Tiny random diffusers pipelines, built once per test session (seconds on a CPU)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("CANVAS_APP_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from tiny_models import build_pipeline  # noqa: E402

# Tiny models gain nothing from threads, and on a busy machine idle OpenMP threads spin: one thread
# makes these tests several times faster there.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def sd8(models_dir: Path) -> str:
    """4-channel UNet, VAE downsampling factor 8 (SD-like), native 64 px."""
    return str(build_pipeline(models_dir / "sd8", vae_factor=8, unet_channels=4))


@pytest.fixture(scope="session")
def sd4(models_dir: Path) -> str:
    """4-channel UNet, VAE factor 4 (like the built-in model), native 64 px."""
    return str(build_pipeline(models_dir / "sd4", vae_factor=4, unet_channels=4))


@pytest.fixture(scope="session")
def zero_snr4(models_dir: Path) -> str:
    """Like sd4, with zero terminal SNR and v-prediction (the built-in model's schedule)."""
    return str(build_pipeline(models_dir / "zero_snr4", vae_factor=4, unet_channels=4, zero_snr=True))


@pytest.fixture(scope="session")
def inpaint4(models_dir: Path) -> str:
    """9-channel inpainting UNet, VAE factor 4."""
    return str(build_pipeline(models_dir / "inpaint4", vae_factor=4, unet_channels=9))


@pytest.fixture(scope="session")
def inpaint8(models_dir: Path) -> str:
    """9-channel inpainting UNet, VAE factor 8."""
    return str(build_pipeline(models_dir / "inpaint8", vae_factor=8, unet_channels=9))


@pytest.fixture(scope="session")
def engine():
    """One engine for the session, as the app keeps one; previews on every step."""
    from canvas_app.engine.local import LocalDiffusersEngine

    return LocalDiffusersEngine(device="cpu", preview_interval_s=0.0)


def run(engine, request, cancel=None, on_event=None):
    """Run a request; returns the list of events."""
    from canvas_app.engine.api import CancelToken

    events = []

    def emit(event):
        events.append(event)
        if on_event is not None:
            on_event(event)

    engine.generate(request, emit, cancel or CancelToken())
    return events


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, colourful RGB test image."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6.28, 3)
    channels = [127 + 100 * np.sin(xx / 9.0 + p) * np.cos(yy / 13.0 - p) for p in phase]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def sdxl4(models_dir: Path) -> str:
    """SDXL-style: two text encoders, pooled embedding, text-time conditioning; VAE factor 4."""
    from tiny_models import build_sdxl_pipeline

    return str(build_sdxl_pipeline(models_dir / "sdxl4"))

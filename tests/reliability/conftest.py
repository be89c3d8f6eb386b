"""Shared fixtures of the reliability tests: tiny random models (built in code, as the engine
tests do), and helpers to compare documents."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CANVAS_APP_DEVICE", "cpu")
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "engine"))
sys.path.insert(0, str(HERE.parent / "ui"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reliability-models")


@pytest.fixture(scope="session")
def tiny_sd(tiny_dir: Path) -> str:
    """A tiny random SD pipeline (4-channel UNet, VAE factor 4, native 64 px) as a diffusers folder."""
    from tiny_models import build_pipeline

    return str(build_pipeline(tiny_dir / "sd4", vae_factor=4, unet_channels=4))


@pytest.fixture(scope="session")
def engine():
    """One engine for the session, as the app keeps one."""
    from canvas_app.engine.local import LocalDiffusersEngine

    return LocalDiffusersEngine(device="cpu", preview_interval_s=0.0)

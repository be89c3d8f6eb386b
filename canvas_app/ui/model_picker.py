"""The model list for the picker: the built-in model, the user's models folder, added paths.

Only the file system is looked at (no torch): a model is a diffusers folder (model_index.json) or a
.safetensors checkpoint file.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from canvas_app.core.request import BUILTIN_MODEL
from canvas_app.core.vocabulary import words_for_model
from canvas_app.resources import builtin_model_dir

APP_NAME = "canvas-app"
MODELS_ENV = "CANVAS_APP_MODELS"
MODEL_SUFFIXES = (".safetensors",)

# The native size of a checkpoint file whose architecture is not told by a diffusers folder beside it:
# SDXL 1024, SD 1.x / 2.x 512 (what their base models were trained at).
SDXL_SIZE, SD_SIZE = 1024, 512
SDXL_KEY = "conditioner.embedders.1."
MAX_HEADER = 100 * 2**20

# The samplers the engine knows (canvas_app.engine.schedulers.SCHEDULER_NAMES); kept here so the UI
# needs no engine import. A test checks that the two lists agree.
SCHEDULERS: tuple[str, ...] = (
    "Euler",
    "Euler a",
    "DPM++ 2M",
    "DPM++ 2M Karras",
    "DPM++ SDE",
    "DDIM",
    "UniPC",
    "LCM",
)


@dataclass(frozen=True)
class ModelEntry:
    label: str
    model: str  # the request's model string: "builtin" or a path
    origin: str  # builtin | folder | added | server
    about: str = ""  # one line the picker shows under the model: what it draws


def builtin_about() -> str:
    """The built-in model in one line: what it draws (its card: resources/models/builtin/README.md)
    and how to add a model for anything else."""
    count = words_for_model(BUILTIN_MODEL).word_count or 42
    return (
        f"Built-in: simple scenes from {count} words: landscapes (sky, sun or moon, hills, water, "
        "houses, trees) or circles, squares and triangles, in 11 colours. For anything else, add a "
        f"Stable Diffusion model (.safetensors or diffusers folder) with +, or put it in {models_folder()}."
    )


def models_folder() -> Path:
    """The user's models folder (``$CANVAS_APP_MODELS`` overrides it); created on first use."""
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else Path(user_data_dir(APP_NAME)) / "models"


def is_model_path(path: Path) -> bool:
    if path.is_dir():
        return (path / "model_index.json").is_file()
    return path.is_file() and path.suffix.lower() in MODEL_SUFFIXES


def scan_folder(folder: Path) -> list[ModelEntry]:
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if is_model_path(child):
            label = child.stem if child.is_file() else child.name
            found.append(ModelEntry(label, str(child), "folder"))
    return found


def list_models(added: list[str], folder: Path | None = None) -> list[ModelEntry]:
    """Built-in first, then the models folder, then added paths (missing ones are skipped)."""
    entries = [ModelEntry("Built-in", BUILTIN_MODEL, "builtin", builtin_about())]
    seen = {BUILTIN_MODEL}
    for entry in scan_folder(folder if folder is not None else models_folder()):
        if entry.model not in seen:
            entries.append(entry)
            seen.add(entry.model)
    for path in added:
        p = Path(path)
        if path not in seen and is_model_path(p):
            entries.append(ModelEntry(p.stem if p.is_file() else p.name, path, "added"))
            seen.add(path)
    return entries


def native_size(model: str) -> int:
    """The side (px) the model was trained at, read from its files without loading it: a new frame
    made for it gets this size. Unreadable files count as SD 1.x (512)."""
    path = builtin_model_dir() if model in ("", BUILTIN_MODEL) else Path(model)
    try:
        if path.is_file():
            sidecar = path.with_suffix("")  # a diffusers folder beside a checkpoint names its architecture
            if (sidecar / "model_index.json").is_file():
                return _folder_native_size(sidecar)
            return SDXL_SIZE if _is_sdxl_checkpoint(path) else SD_SIZE
        return _folder_native_size(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return SD_SIZE


def _folder_native_size(folder: Path) -> int:
    """UNet sample size times the VAE's downscale factor (as the engine computes it)."""
    unet = json.loads((folder / "unet" / "config.json").read_text("utf-8"))
    vae = json.loads((folder / "vae" / "config.json").read_text("utf-8"))
    sample = unet["sample_size"]
    sample = sample[0] if isinstance(sample, list) else sample
    return int(sample) * 2 ** (len(vae["block_out_channels"]) - 1)


def _is_sdxl_checkpoint(path: Path) -> bool:
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if not 0 < length <= MAX_HEADER:
            raise ValueError("damaged safetensors header")
        header = json.loads(fh.read(length))
    return any(key.startswith(SDXL_KEY) for key in header)

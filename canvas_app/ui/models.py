"""The model list for the picker: the built-in model, the user's models folder, added paths.

Only the file system is looked at (no torch): a model is a diffusers folder (model_index.json) or a
.safetensors checkpoint file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from canvas_app.core.request import BUILTIN_MODEL

APP_NAME = "canvas-app"
MODELS_ENV = "CANVAS_APP_MODELS"
MODEL_SUFFIXES = (".safetensors",)

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
    origin: str  # builtin | folder | added


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
    entries = [ModelEntry("Built-in", BUILTIN_MODEL, "builtin")]
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

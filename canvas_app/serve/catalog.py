"""The models a server offers, by name. A client names a model from this list and never a path on
the server: a request for anything else is refused before it reaches the engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from canvas_app.core.request import BUILTIN_MODEL
from canvas_app.engine.models import builtin_model_dir

MODEL_SUFFIXES = (".safetensors",)  # pickle checkpoints are never served
SD_SIZE = 512


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # what the request's ``model`` says
    label: str
    path: str  # what the engine loads ("builtin" for the built-in model)
    native_size: int

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "label": self.label, "native_size": self.native_size}


def _folder_size(folder: Path) -> int:
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text("utf-8"))
        vae = json.loads((folder / "vae" / "config.json").read_text("utf-8"))
        sample = unet["sample_size"]
        sample = sample[0] if isinstance(sample, list) else sample
        return int(sample) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return SD_SIZE


def scan(models_dir: Path | None) -> list[CatalogEntry]:
    """The built-in model, then each diffusers folder and .safetensors file in ``models_dir``."""
    entries = [CatalogEntry(BUILTIN_MODEL, "Built-in", BUILTIN_MODEL, _folder_size(builtin_model_dir()))]
    if models_dir is None or not models_dir.is_dir():
        return entries
    for child in sorted(models_dir.iterdir(), key=lambda p: p.name.lower()):
        if child.is_dir() and (child / "model_index.json").is_file():
            entries.append(CatalogEntry(child.name, child.name, str(child), _folder_size(child)))
        elif child.is_file() and child.suffix.lower() in MODEL_SUFFIXES:
            entries.append(CatalogEntry(child.name, child.stem, str(child), SD_SIZE))
    return entries


def resolve(entries: list[CatalogEntry], name: str) -> CatalogEntry:
    """The entry a request names; ValueError (shown to the client) when the server has no such model.
    A client's local path names the model by its file or folder name here."""
    wanted = name or BUILTIN_MODEL
    for entry in entries:
        if wanted in (entry.name, entry.path):
            return entry
    short = Path(wanted.replace("\\", "/")).name
    for entry in entries:
        if short == entry.name:
            return entry
    names = ", ".join(e.name for e in entries)
    raise ValueError(f"this server has no model {wanted!r} (it offers: {names})")

"""Locating the ``resources/`` folder (icons, built-in models) wherever the app runs from.

Qt-free and torch-free so that core, engine, CLI and UI can all use it. The search order:

1. ``CANVAS_APP_RESOURCES`` (an explicit override, e.g. for a system package or a test);
2. a PyInstaller bundle: ``resources/`` beside the bundled modules (``sys._MEIPASS``);
3. a source checkout or editable install: ``resources/`` beside the ``canvas_app`` package;
4. a wheel install that placed data under ``<prefix>/share/canvas-app/resources``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_OVERRIDE = "CANVAS_APP_RESOURCES"
APP_ID = "canvas-app"
# The hicolor sizes that packaging/make_icons.py renders; icon_path() picks among them.
ICON_SIZES: tuple[int, ...] = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def _candidates() -> list[Path]:
    found: list[Path] = []
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        found.append(Path(override))
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        found.append(Path(bundle) / "resources")
    found.append(Path(__file__).resolve().parent.parent / "resources")
    found.append(Path(sys.prefix) / "share" / APP_ID / "resources")
    return found


def resources_dir() -> Path:
    """The resources folder. Raises FileNotFoundError naming every place looked at."""
    candidates = _candidates()
    for path in candidates:
        if path.is_dir():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"canvas_app resources folder not found (looked in: {looked})")


def builtin_model_dir() -> Path:
    """The built-in text-to-image pipeline folder (it may not exist yet in a fresh checkout)."""
    return resources_dir() / "models" / "builtin"


def builtin_inpaint_model_dir() -> Path:
    """The built-in 9-channel inpainting pipeline folder."""
    return resources_dir() / "models" / "builtin-inpaint"


def icons_dir() -> Path:
    return resources_dir() / "icons"


def icon_path(size: int | None = None) -> Path:
    """The app icon: the scalable SVG when ``size`` is None, else the smallest PNG at least ``size``
    pixels wide (the largest one when ``size`` exceeds them all)."""
    if size is None:
        return icons_dir() / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    if size <= 0:
        raise ValueError(f"icon size must be positive, got {size}")
    chosen = next((s for s in ICON_SIZES if s >= size), ICON_SIZES[-1])
    return icons_dir() / "hicolor" / f"{chosen}x{chosen}" / "apps" / f"{APP_ID}.png"

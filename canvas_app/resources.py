"""Locating the ``resources/`` folder (icons, built-in models) wherever the app runs from.

Qt-free and torch-free so that core, engine, CLI and UI can all use it; this is the only place that
decides where resources live. The search order:

1. ``CANVAS_APP_RESOURCES`` (an explicit override, e.g. for a system package or a test): when set it
   is the answer, and a folder that does not exist is an error rather than a silent fallback;
2. a PyInstaller bundle: ``resources/`` beside the bundled modules (``sys._MEIPASS``);
3. an installed wheel: the package data ``canvas_app/_resources`` (pyproject.toml maps the
   repository's ``resources/`` there), found through ``importlib.resources``;
4. a source checkout or editable install: ``resources/`` beside the ``canvas_app`` package.
"""

from __future__ import annotations

import os
import sys
from importlib import resources as _importlib_resources
from pathlib import Path

ENV_OVERRIDE = "CANVAS_APP_RESOURCES"
APP_ID = "canvas-app"
# The folder name of the package data inside an installed canvas_app (see pyproject.toml).
PACKAGE_DATA = "_resources"
# The hicolor sizes that packaging/make_icons.py renders; icon_path() picks among them.
ICON_SIZES: tuple[int, ...] = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def _packaged() -> Path | None:
    """canvas_app/_resources of an installed wheel, when it is on the file system (diffusers needs
    real files, so a zipped install does not count)."""
    try:
        found = _importlib_resources.files("canvas_app").joinpath(PACKAGE_DATA)
    except (ModuleNotFoundError, TypeError):
        return None
    return found if isinstance(found, Path) else None


def _candidates() -> list[Path]:
    found: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        found.append(Path(bundle) / "resources")
    packaged = _packaged()
    if packaged is not None:
        found.append(packaged)
    found.append(Path(__file__).resolve().parent.parent / "resources")
    return found


def resources_dir() -> Path:
    """The resources folder. Raises FileNotFoundError naming every place looked at."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        if not Path(override).is_dir():
            raise FileNotFoundError(f"{ENV_OVERRIDE} names {override}, which is not a folder")
        return Path(override)
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

"""What the About box and the status bar say: versions, device, the built-in model's licence.

Qt-free, and it never imports torch: versions come from installed package metadata, so the About
box can open before the engine has loaded. The device is the caller's to give (the engine knows it).
"""

from __future__ import annotations

import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from canvas_app import __version__
from canvas_app.resources import builtin_model_dir

APP_NAME = "canvas-app"
NOT_INSTALLED = "not installed"
UNKNOWN_LICENCE = "unknown"
# Distribution names to try for each component, first match wins.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "diffusers": ("diffusers",),
    "transformers": ("transformers",),
    "pyside6": ("PySide6-Essentials", "PySide6"),
}
_LICENCE_HEADINGS = re.compile(r"^#{1,6}\s*licen[cs]e\s*$", re.IGNORECASE)


def package_version(*names: str) -> str:
    """Installed version of the first of ``names`` that is installed, read from its metadata."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return NOT_INSTALLED


def model_licence(model_dir: Path | None = None) -> str:
    """The licence of a diffusers model folder, from its model card or LICENSE file.

    Looks, in order, at the ``license:`` key of the README.md front matter (the Hugging Face model
    card convention), the first paragraph under a "License"/"Licence" heading of the README, and the
    first non-empty line of a LICENSE/LICENCE file. Returns "unknown" when none says.
    """
    folder = builtin_model_dir() if model_dir is None else model_dir
    readme = folder / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        found = _front_matter_licence(text) or _section_licence(text)
        if found:
            return found
    for name in ("LICENSE", "LICENCE", "LICENSE.md", "LICENSE.txt"):
        path = folder / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    return line.strip()
    return UNKNOWN_LICENCE


def _front_matter_licence(text: str) -> str | None:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("license", "licence"):
            value = value.strip().strip("'\"")
            if value:
                return value
    return None


def _section_licence(text: str) -> str | None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _LICENCE_HEADINGS.match(line.strip()):
            paragraph: list[str] = []
            for body in lines[i + 1 :]:
                if body.startswith("#"):
                    break
                if not body.strip():
                    if paragraph:
                        break
                    continue
                paragraph.append(body.strip())
            if paragraph:
                return " ".join(paragraph)
    return None


def about_info(device: str | None = None, model_dir: Path | None = None) -> dict[str, Any]:
    """Everything the About box shows, as plain strings.

    ``device`` is the engine's description of where it runs (e.g. "CUDA: NVIDIA RTX 4090 (fp16)");
    None means the engine has not picked one yet. ``model_dir`` defaults to the built-in model.
    Keys: app, version, python, platform, torch, diffusers, transformers, pyside6, device,
    model_dir, model_licence.
    """
    try:
        folder = builtin_model_dir() if model_dir is None else model_dir
        licence = model_licence(folder)
        folder_text = str(folder)
    except FileNotFoundError:
        # No resources folder at all (a broken install): the About box still opens.
        folder_text, licence = "not found", UNKNOWN_LICENCE
    info: dict[str, Any] = {
        "app": APP_NAME,
        "version": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}".strip(),
    }
    for key, names in _DISTRIBUTIONS.items():
        info[key] = package_version(*names)
    info["device"] = device if device else "not loaded yet"
    info["model_dir"] = folder_text
    info["model_licence"] = licence
    return info


def format_about_text(info: dict[str, Any]) -> str:
    """Multi-line plain text for the About box (and for ``--version`` style output)."""
    rows = [
        ("Version", info["version"]),
        ("Device", info["device"]),
        ("Built-in model licence", info["model_licence"]),
        ("torch", info["torch"]),
        ("diffusers", info["diffusers"]),
        ("transformers", info["transformers"]),
        ("PySide6", info["pyside6"]),
        ("Python", f"{info['python']} ({info['platform']})"),
    ]
    width = max(len(label) for label, _ in rows)
    body = "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in rows)
    return f"{info['app']} {info['version']}\n{body}\n"


def format_status_text(info: dict[str, Any]) -> str:
    """One short line for the status bar: app version, device and torch version."""
    return f"{info['app']} {info['version']} · {info['device']} · torch {info['torch']}"

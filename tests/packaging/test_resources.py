"""resources_dir() finds the folder in a checkout, under an override, inside a PyInstaller bundle and
as package data (the wheel itself: tests/packaging/test_wheel.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from canvas_app import resources

ROOT = Path(__file__).resolve().parents[2]


def test_source_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    assert resources.resources_dir() == ROOT / "resources"
    assert resources.builtin_model_dir() == ROOT / "resources" / "models" / "builtin"
    assert resources.builtin_inpaint_model_dir() == ROOT / "resources" / "models" / "builtin-inpaint"


def test_env_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(resources.ENV_OVERRIDE, str(tmp_path))
    assert resources.resources_dir() == tmp_path
    assert resources.icon_path(32) == tmp_path / "icons" / "hicolor" / "32x32" / "apps" / "canvas-app.png"


def test_pyinstaller_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "resources").mkdir()
    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == tmp_path / "resources"


def test_package_data_comes_before_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    monkeypatch.setattr(resources, "_packaged", lambda: tmp_path)
    assert resources.resources_dir() == tmp_path


def test_an_override_that_points_nowhere_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(resources.ENV_OVERRIDE, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="nope"):
        resources.resources_dir()


def test_missing_everywhere_names_the_places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(resources.ENV_OVERRIDE, raising=False)
    monkeypatch.setattr(resources, "__file__", str(tmp_path / "pkg" / "canvas_app" / "resources.py"))
    monkeypatch.setattr(resources, "_packaged", lambda: tmp_path / "pkg" / "canvas_app" / "_resources")
    with pytest.raises(FileNotFoundError, match="_resources") as caught:
        resources.resources_dir()
    assert str(tmp_path / "pkg" / "resources") in str(caught.value)


def test_there_is_one_resources_dir() -> None:
    """One decision in one place: no other module works out where resources live."""
    package = ROOT / "canvas_app"
    defining = [
        p.relative_to(ROOT).as_posix()
        for p in package.rglob("*.py")
        if "def resources_dir" in p.read_text(encoding="utf-8")
        or 'CANVAS_APP_RESOURCES"' in p.read_text(encoding="utf-8")
    ]
    assert defining == ["canvas_app/resources.py"]

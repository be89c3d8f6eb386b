"""about_info(): versions from metadata without importing torch, and the model licence from a model card."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from canvas_app import __version__
from canvas_app.about import (
    NOT_INSTALLED,
    about_info,
    format_about_text,
    format_status_text,
    model_licence,
    package_version,
)


def test_about_info_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from canvas_app.about import about_info, format_about_text\n"
        "info = about_info('CPU (fp32)')\n"
        "print(format_about_text(info))\n"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "CPU (fp32)" in result.stdout


def _source_version(module: str) -> str:
    """A package's __version__ read from its source without importing it (diffusers takes seconds)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", Path(spec.origin).read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_about_info_fields(tmp_path: Path) -> None:
    info = about_info("CUDA: Test GPU (fp16)", model_dir=tmp_path)
    assert info["version"] == __version__
    assert info["device"] == "CUDA: Test GPU (fp16)"
    assert info["diffusers"] == _source_version("diffusers")
    assert info["torch"] != NOT_INSTALLED
    assert info["model_licence"] == "unknown"
    assert about_info(None, model_dir=tmp_path)["device"] == "not loaded yet"


def test_package_version_falls_back_and_reports_missing() -> None:
    assert package_version("no-such-dist-canvas-app-test") == NOT_INSTALLED
    assert package_version("no-such-dist-canvas-app-test", "pillow") != NOT_INSTALLED


def test_licence_from_model_card_front_matter(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "---\nlibrary_name: diffusers\nlicense: apache-2.0\ntags:\n- text-to-image\n---\n# Model\n",
        encoding="utf-8",
    )
    assert model_licence(tmp_path) == "apache-2.0"


def test_licence_from_readme_section(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "# Built-in model\n\nSmall.\n\n## Licence\n\nCC0-1.0: trained from scratch on\nprocedural data.\n\n"
        "## Limits\n\nTiny.\n",
        encoding="utf-8",
    )
    assert model_licence(tmp_path) == "CC0-1.0: trained from scratch on procedural data."


def test_licence_from_license_file(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# A model card without a licence\n", encoding="utf-8")
    (tmp_path / "LICENSE").write_text("\n\n   Apache License\n   Version 2.0\n", encoding="utf-8")
    assert model_licence(tmp_path) == "Apache License"


def test_formatters() -> None:
    info = about_info("CPU (fp32)")
    text = format_about_text(info)
    for key in ("version", "device", "model_licence", "torch", "diffusers", "transformers"):
        assert str(info[key]) in text
    status = format_status_text(info)
    assert "CPU (fp32)" in status and __version__ in status and "\n" not in status


def test_builtin_model_card_states_a_licence() -> None:
    # The About box promises the built-in model's licence: its model card must say it.
    from canvas_app.resources import builtin_model_dir

    if not (builtin_model_dir() / "model_index.json").is_file():
        pytest.skip("built-in model not present in this checkout")
    assert model_licence() != "unknown"

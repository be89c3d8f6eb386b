"""A wheel is the whole app: built from a copy of the checkout, installed into a fresh virtual
environment (its dependencies borrowed from this one, so nothing is downloaded), it finds its
built-in model and icons as package data and generates from the command line."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "canvas_app", "resources")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / "resources" / "models" / "builtin").is_dir(), reason="no built-in model"),
]


def _has_build() -> bool:
    """Whether pypa/build is installed (not merely a build/ folder of setuptools on the path)."""
    try:
        return importlib.util.find_spec("build.__main__") is not None
    except ImportError:
        return False


def _build_wheel(tmp: Path) -> Path:
    """``python -m build`` where it is installed, else ``pip wheel``; both without network, in a copy
    of the sources so that nothing is written into the checkout."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp / "dist"
    if _has_build():
        command = [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(src),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(src),
        ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = dist.glob("canvas_app-*.whl")
    return wheel


def _fresh_venv(tmp: Path) -> Path:
    """A venv whose own site-packages comes first and which sees this environment's packages (torch,
    diffusers, pip) after it, through a .pth file: plain paths, so no editable install of
    canvas_app in this environment comes along."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    ours |= {p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")}
    Path(site, "borrowed-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CANVAS_APP_RESOURCES")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def test_the_wheel_ships_the_app_and_its_resources_and_generates(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)

    # 1. What is inside: every module of the app, every resource, nothing of tools/
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "canvas_app").rglob("*.py")}
    assert modules - names == set()
    shipped = {
        "canvas_app/_resources/" + p.relative_to(ROOT / "resources").as_posix()
        for p in (ROOT / "resources").rglob("*")
        if p.is_file()
    }
    assert shipped - names == set()
    assert not [
        n for n in names if n.startswith("tools/") or "/builtin_model/" in n or n.startswith("tests/")
    ]

    # 2. Installed into a fresh venv, it finds its resources inside itself
    python = _fresh_venv(tmp_path)
    env = _clean_env()
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import canvas_app.resources as r; print(r.resources_dir()); print(r.icon_path(64))",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    venv = tmp_path / "venv"
    assert Path(where[0]).is_relative_to(venv) and Path(where[0]).name == "_resources"
    assert Path(where[1]).is_file()

    # 3. Its console script generates with the built-in model, silently with --quiet
    script = python.parent / ("canvas-app.exe" if os.name == "nt" else "canvas-app")
    out = tmp_path / "house.png"
    run = subprocess.run(
        [str(script), "generate", "--prompt", "a red house, blue sky, hills", "--steps", "3", "--seed", "1"]
        + ["--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    from PIL import Image

    with Image.open(out) as image:
        assert image.size == (128, 128)
        assert "Model: builtin" in image.info["parameters"]
        extrema = image.convert("L").getextrema()
    assert extrema[1] - extrema[0] > 30  # a picture, not a flat fill

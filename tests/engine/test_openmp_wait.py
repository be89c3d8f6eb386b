"""The engine makes torch's OpenMP threads sleep instead of spinning while they wait (see
engine/devices.py OPENMP_DEFAULTS), unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from canvas_app.engine.devices import OPENMP_DEFAULTS, set_openmp_defaults


def test_defaults_fill_an_empty_environment() -> None:
    env: dict[str, str] = {}
    set_openmp_defaults(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"} == OPENMP_DEFAULTS


@pytest.mark.parametrize(
    "user", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": "passive"}]
)
def test_the_users_setting_wins(user: dict[str, str]) -> None:
    env = dict(user)
    set_openmp_defaults(env)
    assert env == user


def _openmp_spin(code: str, **extra: str) -> str:
    """GOMP_SPINCOUNT as the OpenMP runtime of a fresh interpreter running ``code`` reports it."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(OMP_DISPLAY_ENV="VERBOSE", **extra)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    lines = [line for line in done.stderr.splitlines() if "GOMP_SPINCOUNT" in line]
    assert lines, done.stderr[-2000:]
    return lines[0].split("=")[1].strip().strip("'")


def test_the_openmp_runtime_sleeps_when_the_engine_is_imported_first() -> None:
    # The app, the CLI and `serve` import the engine package before torch (the GUI never imports torch).
    assert _openmp_spin("import canvas_app.engine.api, torch") == "0"
    # Without the engine: libgomp's own default, a long spin.
    assert int(_openmp_spin("import torch")) > 0

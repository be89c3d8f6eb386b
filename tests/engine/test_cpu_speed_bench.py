"""bench/cpu_speed.py, split into modules with one job each, keeps its command line: the options and
parts, and the worker entry that every measurement's subprocess runs (``--worker KIND ARGS``), here
in-process on the built-in model at a tiny size (seconds)."""

from __future__ import annotations

import json

import pytest

from bench import cpu_speed
from bench.cpu_speed_report import PARTS
from bench.cpu_speed_workers import WORKERS
from canvas_app.engine.models import builtin_model_dir


def test_the_command_line_offers_every_part_and_option(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cpu_speed.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(PARTS) + "}" in text
    for option in ("--skip-sd15", "--skip-compile", "--forced-bf16", "--gen-compile", "--repeat", "--case"):
        assert option in text
    assert set(PARTS) == {"sdxl", "memory", "quality", "unet", "threads", "compile", "gen"}
    # Every part but memory (which loads through the gen worker) has its own worker.
    assert set(WORKERS) == set(PARTS) - {"memory"}


def _worker(capsys, kind: str, args: dict) -> dict:
    assert cpu_speed.main(["--worker", kind, json.dumps(args)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_worker_entry_runs_a_measurement_and_prints_json(capsys) -> None:
    model = str(builtin_model_dir())
    threads = _worker(capsys, "threads", {"model": model, "size": 64, "repeat": 1, "counts": [1]})
    assert set(threads) == {"1"} and threads["1"]["wall"] > 0 and threads["1"]["cpu"] >= 0
    unet = _worker(
        capsys, "unet", {"model": model, "size": 64, "repeat": 1, "bf16": False, "one_thread": False}
    )
    assert set(unet["times"]) == {"fp32", "fp32 channels_last"} and unet["rse"]["fp32"] == 0.0
    assert unet["params"] > 1_000_000

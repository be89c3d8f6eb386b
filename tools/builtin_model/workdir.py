"""The training working directory: a marker file per finished stage, atomic checkpoints, a log."""

from __future__ import annotations

import json
import time
from pathlib import Path


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


class Workdir:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def done(self, stage: str) -> bool:
        return (self.root / f"{stage}.done").exists()

    def mark_done(self, stage: str, info: dict | None = None) -> None:
        (self.root / f"{stage}.done").write_text(json.dumps(info or {}))

    def info(self, stage: str) -> dict:
        return json.loads((self.root / f"{stage}.done").read_text())


def save_checkpoint(path: Path, **state) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict | None:
    import torch

    return torch.load(path, weights_only=False) if path.exists() else None

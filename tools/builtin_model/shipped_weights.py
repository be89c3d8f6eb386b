"""How the built-in model's weights are stored on disk: the one place that decides their dtype.

Every export (train.py's pipelines, photo_vae's VAE, photo_inpaint's UNet) writes through
``save_shipped``, and every measurement of what will ship uses ``as_shipped``. fp16 halves the files
against fp32 (the budget: all shipped model files <= 30 MiB) and costs nothing the engine can see:
it loads the files in the dtype it runs (fp32 on most CPUs, bf16 where the CPU computes it natively,
fp16 on CUDA and MPS; ``canvas_app.engine.devices``), and fp16 -> fp32 is exact.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

SHIPPED_DTYPE = "float16"  # torch's name
SAFETENSORS_DTYPE = "F16"  # the same dtype as a safetensors header names it


def shipped_dtype() -> Any:
    import torch

    return getattr(torch, SHIPPED_DTYPE)


def as_shipped(module: Any) -> Any:
    """A copy of ``module`` with its weights rounded as they ship, used in fp32 (as on a CPU)."""
    import copy

    import torch

    return copy.deepcopy(module).to(shipped_dtype()).to(torch.float32)


def save_shipped(model: Any, folder: Path) -> Path:
    """Write ``model`` (a diffusers/transformers model or a whole pipeline) into ``folder`` as
    safetensors in the shipped dtype. The model is left in fp32, as the tools use it."""
    import torch

    model.to(shipped_dtype())
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        model.to(torch.float32)
    return folder


def stored_dtypes(path: Path) -> set[str]:
    """The dtypes of the tensors in a .safetensors file, read from its header (no tensor is read)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return {entry["dtype"] for name, entry in header.items() if name != "__metadata__"}

"""How the built-in model's weights are stored on disk: the one place the tools decide it.

Every export (train.py's pipelines, photo_vae's VAE, photo_inpaint's UNet) writes through
``save_shipped``, and every measurement of what will ship uses ``as_shipped``. The VAE and text
encoder are fp16: half of fp32 and nothing the engine can see (it loads the files in the dtype it
runs: fp32 on most CPUs, bf16 where the CPU computes it natively, fp16 on CUDA and MPS;
``canvas_app.engine.devices``), as fp16 -> fp32 is exact. The UNets are int8 with a scale per output
channel (``canvas_app.engine.builtin_weights``, which the engine reads them with): half of fp16 again,
to fit issue 16's budget (all shipped model files <= 30 MB), at 48-49 dB PSNR against fp16 images.

    python -m tools.builtin_model.shipped_weights convert resources/models

rewrites every pipeline folder's fp16/fp32 UNet there as int8 (what shipped before session 9).
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path
from typing import Any

from canvas_app.engine import builtin_weights

SHIPPED_DTYPE = "float16"  # torch's name
SAFETENSORS_DTYPE = "F16"  # the same dtype as a safetensors header names it


def shipped_dtype() -> Any:
    import torch

    return getattr(torch, SHIPPED_DTYPE)


def _is_unet(module: Any) -> bool:
    from diffusers import UNet2DConditionModel

    return isinstance(module, UNet2DConditionModel)


def as_shipped(module: Any) -> Any:
    """A copy of ``module`` with its weights rounded as they ship, used in fp32 (as on a CPU)."""
    import copy

    import torch

    if _is_unet(module):
        return builtin_weights.rounded(module)
    return copy.deepcopy(module).to(shipped_dtype()).to(torch.float32)


def save_shipped(model: Any, folder: Path) -> Path:
    """Write ``model`` (a diffusers/transformers model or a whole pipeline) into ``folder`` as it
    ships: a UNet in the int8 format, everything else as fp16 safetensors. The model is left in
    fp32, as the tools use it."""
    import torch

    folder = Path(folder)
    if _is_unet(model):
        builtin_weights.save_unet(model, folder)
        return folder
    unet = getattr(model, "unet", None)
    # A pipeline's UNet is quantized from its own weights, not from an fp16 rounding of them.
    halved = [m for name, m in getattr(model, "components", {"": model}).items() if name != "unet"]
    halved = [m for m in halved if isinstance(m, torch.nn.Module)]
    for module in halved:
        module.to(shipped_dtype())
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        for module in halved:
            module.to(torch.float32)
    if unet is not None and _is_unet(unet):  # a pipeline: its UNet replaced by the int8 file
        for old in (folder / "unet").glob("diffusion_pytorch_model*"):
            old.unlink()
        builtin_weights.save_unet(unet, folder / "unet")
    return folder


def convert(models: Path) -> list[Path]:
    """Rewrite the diffusers-format UNet of every pipeline folder under ``models`` in the int8
    format (its config.json kept as it is); the int8 files written."""
    import torch
    from diffusers import UNet2DConditionModel

    from canvas_app.engine.models import dtype_kwarg

    written = []
    for old in sorted(Path(models).glob("*/unet/diffusion_pytorch_model.safetensors")):
        folder = old.parent
        config = (folder / "config.json").read_bytes()
        unet = UNet2DConditionModel.from_pretrained(folder, **{dtype_kwarg(): torch.float32})
        written.append(builtin_weights.save_unet(unet, folder))
        (folder / "config.json").write_bytes(config)
        builtin_weights.load_unet(folder, torch.float32)  # it reads back before the old file goes
        old.unlink()
    return written


def stored_dtypes(path: Path) -> set[str]:
    """The dtypes of the tensors in a .safetensors file, read from its header (no tensor is read)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return {entry["dtype"] for name, entry in header.items() if name != "__metadata__"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the built-in model's shipped weight formats")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="rewrite each pipeline folder's UNet under MODELS as int8")
    c.add_argument("models", type=Path)
    args = parser.parse_args(argv)
    for path in convert(args.models):
        print(f"wrote {path} ({path.stat().st_size:,} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Single-file checkpoints (.safetensors, or pickle when allowed) loaded without the network.

``from_single_file`` needs the diffusers configs of the checkpoint's architecture. They come from, in
order: a diffusers folder next to the checkpoint with the same stem (``model/`` beside
``model.safetensors``, a full pipeline or only its configs), or the configs shipped in
``canvas_app/engine/configs/<type>`` for SD 1.x, SD 2.x, SDXL and their inpainting variants, where the
type is inferred from the checkpoint's tensor names and shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from canvas_app.engine.errors import ModelError

CONFIGS_DIR = Path(__file__).with_name("configs")


class _Shape:
    """Stands in for a tensor when only its shape is needed to infer the architecture."""

    def __init__(self, shape: list[int]) -> None:
        self.shape = tuple(shape)


def checkpoint_shapes(path: Path) -> dict[str, _Shape]:
    """Tensor names and shapes of a .safetensors file, read from its header (no weights loaded)."""
    import struct

    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        # A damaged or hostile header must not make us read (or allocate) past the file.
        if not 0 < length <= min(size - 8, 100 * 2**20):
            raise ValueError(f"{path.name} is not a valid safetensors file (damaged header)")
        header = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError(f"{path.name} is not a valid safetensors file (damaged header)")
    return {k: _Shape(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def infer_model_type(path: Path) -> str:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    if path.suffix.lower() == ".safetensors":
        shapes: dict[str, Any] = checkpoint_shapes(path)
    else:
        from diffusers.loaders.single_file_utils import load_single_file_checkpoint

        shapes = load_single_file_checkpoint(str(path), local_files_only=True)
    return str(infer_diffusers_model_type(shapes))


def config_dir_for(path: Path) -> Path:
    sidecar = path.with_suffix("")
    if (sidecar / "model_index.json").is_file():
        return sidecar
    model_type = infer_model_type(path)
    shipped = CONFIGS_DIR / model_type
    if not (shipped / "model_index.json").is_file():
        raise ModelError(
            f"{path.name} looks like a {model_type!r} checkpoint, which is not supported; "
            "supported are SD 1.x, SD 2.x and SDXL (and their inpainting variants)"
        )
    return shipped


def load_single_file(path: Path, dtype: Any) -> Any:
    """A pipeline from one checkpoint file, never touching the network."""
    import diffusers

    config = config_dir_for(path)
    index = json.loads((config / "model_index.json").read_text())
    cls = getattr(diffusers, index["_class_name"])
    extra: dict[str, Any] = {}
    # Shipped configs carry no tokenizer files: the CLIP vocabulary is shipped once, beside them.
    for name in ("tokenizer", "tokenizer_2"):
        if name in index and not (config / name).is_dir():
            from canvas_app.engine.clip_vocab import clip_tokenizer

            extra[name] = clip_tokenizer(pad_token="!" if _pads_with_bang(config, name) else None)
    from canvas_app.engine.models import dtype_kwarg

    extra[dtype_kwarg()] = dtype
    return cls.from_single_file(str(path), config=str(config), local_files_only=True, **extra)


def _pads_with_bang(config: Path, name: str) -> bool:
    """OpenCLIP text encoders (SD 2.x, SDXL's second) were trained with '!' as the padding token;
    the shipped configs say which tokenizer that is in tokenizers.json."""
    marker = config / "tokenizers.json"
    return marker.is_file() and json.loads(marker.read_text()).get("pad_token", {}).get(name) == "!"

"""The built-in model's UNets on disk: int8 weights with one scale per output channel.

The one place that decides this format: the tools write it (``save_unet``), the engine, tools, benches
and tests read it (``load_unet``, ``pipeline_components``, ``from_pretrained``). Every weight matrix
and convolution kernel is stored as int8 with one fp16 scale per output channel (symmetric, absmax);
biases and norms stay fp16. That halves each UNet against fp16 (bench/weight_precision.py measured
the images: 48-49 dB PSNR against the fp16 weights, more than bf16 against fp32) and keeps all the
shipped model files within issue 16's 30 MB. The UNet is built from its ``config.json`` and gets the
weights expanded to the dtype the engine runs (fp32 CPU, bf16, fp16 CUDA/MPS).

The file is not named as diffusers names its own (``from_pretrained`` would read int8 numbers as
weights), and a metadata tag says what it holds. Everything the file declares is bounded and checked
against the model its config describes before any tensor is read: a corrupt or hostile file gives a
``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

INT8_UNET_FILE = "diffusion_pytorch_model.int8.safetensors"
FORMAT_TAG = {"format": "canvas_app.int8-per-output-channel", "version": "1"}
SCALE_SUFFIX = ":scale"  # a module's state-dict keys never contain ':'

# Bounds on what a file may declare (the shipped UNets: ~7 MB, ~330 tensors, a 40 kB header).
MAX_FILE_BYTES = 512 * 2**20
MAX_HEADER_BYTES = 8 * 2**20
MAX_TENSORS = 10_000
MAX_CONFIG_BYTES = 256 * 2**10
_ITEM_BYTES = {"I8": 1, "F16": 2}


def quantize(state: dict[str, Any]) -> dict[str, Any]:
    """The tensors an int8 file holds for ``state``: each tensor of 2+ dimensions as int8 plus its
    per-output-channel fp16 scale under ``name + SCALE_SUFFIX``; the others as fp16."""
    import torch

    stored: dict[str, Any] = {}
    for name, tensor in state.items():
        w = tensor.detach().float().cpu()
        if w.ndim < 2:  # biases, norms: few values, kept as fp16
            stored[name] = w.half().contiguous()
            continue
        scale = (w.abs().flatten(1).amax(1) / 127).half().float()  # stored fp16, so rounded as fp16
        if not torch.isfinite(scale).all():
            raise ValueError(f"{name} has weights too large (or not finite) for an fp16 scale")
        scale[scale == 0] = 1.0  # an all-zero channel (or one below fp16's range) stays zero
        q = (w / scale.view(_channel_shape(w.ndim))).round().clamp(-127, 127)
        stored[name] = q.to(torch.int8).contiguous()
        stored[name + SCALE_SUFFIX] = scale.half()
    return stored


def dequantize(stored: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """The module state ``stored`` (as ``quantize`` gives it) holds, in ``dtype``."""
    import torch

    state = {}
    for name, tensor in stored.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if tensor.dtype == torch.int8:
            scale = stored[name + SCALE_SUFFIX].float().view(_channel_shape(tensor.ndim))
            state[name] = (tensor.float() * scale).to(dtype)
        else:
            state[name] = tensor.to(dtype)
    return state


def rounded(module: Any) -> Any:
    """A copy of ``module`` with its weights rounded as this format stores them, in fp32."""
    import copy

    import torch

    copied = copy.deepcopy(module)
    copied.load_state_dict(dequantize(quantize(module.state_dict()), torch.float32))
    return copied


def save_unet(unet: Any, folder: Path) -> Path:
    """Write ``unet`` (a diffusers UNet) into ``folder``: its ``config.json`` and the int8 file."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    unet.save_config(folder)
    # diffusers records where a loaded model came from; a shipped config must not name a build machine.
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.pop("_name_or_path", None) is not None:
        (folder / "config.json").write_text(
            json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    path = folder / INT8_UNET_FILE
    save_file(quantize(unet.state_dict()), path, metadata=dict(FORMAT_TAG))
    return path


def has_int8_unet(folder: Path) -> bool:
    """Whether the pipeline folder ``folder`` keeps its UNet in this format."""
    return (Path(folder) / "unet" / INT8_UNET_FILE).is_file()


def load_unet(folder: Path, dtype: Any) -> Any:
    """The UNet in ``folder`` (config.json and the int8 file), its weights in ``dtype``, on the CPU."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open

    folder = Path(folder)
    path = folder / INT8_UNET_FILE
    header = read_header(path)
    config = _read_config(folder / "config.json")
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated before the file is checked
            unet = UNet2DConditionModel.from_config(config)
    except Exception as error:  # noqa: BLE001 - a config diffusers cannot build is a bad file
        raise ValueError(f"{folder / 'config.json'} does not describe a UNet: {error}") from error
    check_header(header, {name: tuple(t.shape) for name, t in unet.state_dict().items()}, path)
    with safe_open(str(path), framework="pt") as f:
        stored = {name: f.get_tensor(name) for name in header}
    unet.load_state_dict(dequantize(stored, dtype), strict=True, assign=True)
    left = [name for name, t in [*unet.named_parameters(), *unet.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{path} left {len(left)} tensors unset (e.g. {left[0]})")
    return unet.eval()


def read_header(path: Path) -> dict[str, dict[str, Any]]:
    """The tensor entries of an int8 file's header, each bounded and inside the file; raises
    ValueError for anything else (not this format, a size out of bounds, overlapping data)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path} is {size:,} bytes, more than a built-in UNet may be ({MAX_FILE_BYTES:,})")
    with open(path, "rb") as f:
        start = f.read(8)
        if len(start) < 8:
            raise ValueError(f"{path} is too short to be a safetensors file")
        (length,) = struct.unpack("<Q", start)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{path} declares a {length:,}-byte header, which it cannot hold")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} has an unreadable header ({error})") from None
    if not isinstance(header, dict) or header.get("__metadata__") != FORMAT_TAG:
        raise ValueError(f"{path} is not an int8 UNet file (its metadata lacks {FORMAT_TAG})")
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    if len(entries) > MAX_TENSORS:
        raise ValueError(f"{path} declares {len(entries):,} tensors, more than {MAX_TENSORS:,}")
    data_bytes, spans = size - 8 - length, []
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: {name} is not a tensor entry")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if entry.get("dtype") not in _ITEM_BYTES:
            raise ValueError(f"{path}: {name} is stored as {entry.get('dtype')!r}, not int8 or fp16")
        if not _ints(shape, 8) or not _ints(offsets, 2) or len(offsets) != 2:
            raise ValueError(f"{path}: {name} has a malformed shape or data offsets")
        begin, end = offsets
        if (
            not 0 <= begin <= end <= data_bytes
            or end - begin != math.prod(shape) * _ITEM_BYTES[entry["dtype"]]
        ):
            raise ValueError(f"{path}: {name}'s data does not fit its shape {shape} or the file")
        spans.append((begin, end))
    spans.sort()
    if any(a_end > b_begin for (_, a_end), (b_begin, _) in zip(spans, spans[1:])):
        raise ValueError(f"{path}: tensors' data overlap")
    return entries


def check_header(
    entries: dict[str, dict[str, Any]], expected: dict[str, tuple[int, ...]], path: Path
) -> None:
    """Raise ValueError unless ``entries`` hold exactly the model's tensors (``expected`` shapes):
    int8 with a scale per output channel for those of 2+ dimensions, fp16 for the others."""
    wanted: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, shape in expected.items():
        if len(shape) < 2:
            wanted[name] = ("F16", shape)
        else:
            wanted[name] = ("I8", shape)
            wanted[name + SCALE_SUFFIX] = ("F16", (shape[0],))
    missing = sorted(set(wanted) - set(entries))
    if missing:
        raise ValueError(f"{path} lacks {len(missing)} of the model's tensors, e.g. {missing[0]}")
    extra = sorted(set(entries) - set(wanted))
    if extra:
        raise ValueError(f"{path} holds {len(extra)} tensors the model does not have, e.g. {extra[0]}")
    for name, (dtype, shape) in wanted.items():
        got = (entries[name]["dtype"], tuple(entries[name]["shape"]))
        if got != (dtype, shape):
            raise ValueError(
                f"{path}: {name} is {got[0]} {list(got[1])}, the model needs {dtype} {list(shape)}"
            )


def pipeline_components(folder: Path, dtypes: Any) -> dict[str, Any]:
    """What to hand diffusers' ``from_pretrained`` for the pipeline folder ``folder`` beside what it
    reads itself: the UNet, when it is stored in this format. ``dtypes``: a torch dtype or diffusers'
    per-component dict."""
    if not has_int8_unet(folder):
        return {}
    dtype = dtypes.get("unet", dtypes.get("default")) if isinstance(dtypes, dict) else dtypes
    return {"unet": load_unet(Path(folder) / "unet", dtype)}


def from_pretrained(pipeline_class: Any, folder: Path, dtype: Any = None, **kwargs: Any) -> Any:
    """``pipeline_class.from_pretrained(folder, ...)`` in ``dtype`` (fp32 by default), with the UNet
    read through ``load_unet`` when the folder stores it in this format (the tools' and tests' way
    to open the built-in model; the engine's is ``models.load_pipeline``)."""
    import torch

    from canvas_app.engine.models import dtype_kwarg

    dtype = torch.float32 if dtype is None else dtype
    if "unet" not in kwargs:
        kwargs.update(pipeline_components(folder, dtype))
    return pipeline_class.from_pretrained(folder, **{dtype_kwarg(): dtype}, **kwargs)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path} is missing: the UNet's config is needed to read its weights")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size:,} bytes, too large for a UNet config")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a UNet config")
    return config


def _ints(value: Any, most: int) -> bool:
    """A list of at most ``most`` non-negative ints below 2**40 (bools are not sizes)."""
    return (
        isinstance(value, list)
        and len(value) <= most
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**40 for v in value)
    )


def _channel_shape(ndim: int) -> tuple[int, ...]:
    return (-1,) + (1,) * (ndim - 1)

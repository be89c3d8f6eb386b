"""Where models come from and how they are loaded, cached and released.

Sources: the built-in model (``"builtin"``), a local diffusers folder, a single checkpoint file
(``.safetensors``; pickle formats only when allowed) and a model id on the Hugging Face hub (from the
local cache when offline). One pipeline is kept loaded and reused; loading another frees it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canvas_app.core.request import BUILTIN_MODEL
from canvas_app.engine.devices import DeviceChoice, free_memory
from canvas_app.engine.errors import ModelError

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
RESOURCES_ENV = "CANVAS_APP_RESOURCES"


def resources_dir() -> Path:
    """resources/ of a source checkout, or the folder named by $CANVAS_APP_RESOURCES (bundles)."""
    env = os.environ.get(RESOURCES_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "resources"


def builtin_model_dir(inpaint: bool = False) -> Path:
    return resources_dir() / "models" / ("builtin-inpaint" if inpaint else "builtin")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "folder" | "single_file" | "hub"
    location: str
    name: str  # short name for metadata and messages


def resolve_source(model: str, allow_pickle: bool = False, inpaint: bool = False) -> ModelSource:
    """Turn a request's model string into a source, or raise ModelError saying why it cannot be used.

    For ``builtin`` and ``inpaint=True`` the built-in inpainting variant is chosen when installed.
    """
    if model in ("", BUILTIN_MODEL):
        folder = builtin_model_dir(inpaint)
        if inpaint and not (folder / "model_index.json").is_file():
            folder = builtin_model_dir(False)
        if not (folder / "model_index.json").is_file():
            raise ModelError(f"the built-in model is not installed (expected it in {folder})")
        return ModelSource("folder", str(folder), folder.name)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"{path} is not a diffusers model folder (it has no model_index.json)")
        return ModelSource("folder", str(path), path.name)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES and not allow_pickle:
            raise ModelError(
                f"{path.name} is a pickle checkpoint, and loading one can run arbitrary code; "
                "use a .safetensors file or allow pickle checkpoints explicitly"
            )
        if suffix not in PICKLE_SUFFIXES + (".safetensors",):
            raise ModelError(f"{path.name} is not a model file (.safetensors, or a pickle checkpoint)")
        return ModelSource("single_file", str(path), path.stem)
    if _looks_like_hub_id(model):
        return ModelSource("hub", model, model)
    raise ModelError(f"model not found: {model}")


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") and " " not in p for p in parts)


@dataclass
class LoadedModel:
    """A pipeline on its device, with the facts the sampler needs read from its configs."""

    source: ModelSource
    device: DeviceChoice
    pipe: Any
    loras: tuple[tuple[str, float], ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def unet(self) -> Any:
        return self.pipe.unet

    @property
    def vae(self) -> Any:
        return self.pipe.vae

    @property
    def is_sdxl(self) -> bool:
        return getattr(self.pipe, "text_encoder_2", None) is not None

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        size = self.unet.config.sample_size
        size = size[0] if isinstance(size, (list, tuple)) else size
        return int(size) * self.vae_factor

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def is_inpaint_unet(self) -> bool:
        return int(self.unet.config.in_channels) == 2 * self.latent_channels + 1

    @property
    def scheduler_config(self) -> dict[str, Any]:
        return dict(self.pipe.scheduler.config)

    def key(self) -> tuple[Any, ...]:
        return (self.source, self.device, self.loras)


ProgressFn = Callable[[str], None]


def load_pipeline(source: ModelSource, device: DeviceChoice, allow_pickle: bool = False) -> Any:
    """Load a pipeline from ``source`` onto ``device``. Raises ModelError with a readable message."""
    from canvas_app.engine.single_file import load_single_file

    dtype = device.dtype
    try:
        if source.kind == "single_file":
            pipe = load_single_file(Path(source.location), dtype)
        else:
            pipe = _load_pretrained(source, device.load_dtypes(), allow_pickle)
    except ModelError:
        raise
    except Exception as error:  # noqa: BLE001 - any loader failure is reported the same way
        raise ModelError(f"could not load model {source.name}: {_first_line(error)}") from error
    if not hasattr(pipe, "unet") or not hasattr(pipe, "vae") or not hasattr(pipe, "encode_prompt"):
        raise ModelError(f"{source.name} is a {type(pipe).__name__}, not a Stable Diffusion model")
    pipe.to(device.device)
    for name, component_dtype in device.component_dtypes(pipe).items():
        getattr(pipe, name).to(dtype=component_dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_pretrained(source: ModelSource, dtype: Any, allow_pickle: bool) -> Any:
    from diffusers import DiffusionPipeline

    kwargs: dict[str, Any] = {dtype_kwarg(): dtype}
    if source.kind == "folder":
        kwargs["local_files_only"] = True
        index = json.loads((Path(source.location) / "model_index.json").read_text())
        if not allow_pickle and not _has_safetensors(Path(source.location)):
            raise ModelError(
                f"{source.name} holds only pickle weights (.bin), and loading them can run arbitrary "
                "code; convert it to safetensors or allow pickle checkpoints explicitly"
            )
    else:
        from huggingface_hub import constants

        kwargs["local_files_only"] = bool(constants.HF_HUB_OFFLINE)
        index = {}
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    if "safety_checker" in index:
        kwargs["safety_checker"] = None
        kwargs["requires_safety_checker"] = False
    try:
        return DiffusionPipeline.from_pretrained(source.location, **kwargs)
    except OSError as error:
        if source.kind == "hub" and kwargs["local_files_only"]:
            raise ModelError(
                f"model {source.location} is not in the local cache and the network is off"
            ) from error
        raise


def dtype_kwarg() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype``; use whichever this version expects."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*/*.safetensors"))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class ModelCache:
    """Holds the one loaded model; asking for another frees the old one first (memory first)."""

    def __init__(self, allow_pickle: bool = False) -> None:
        self.allow_pickle = allow_pickle
        self._loaded: LoadedModel | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._loaded

    def get(
        self,
        source: ModelSource,
        device: DeviceChoice,
        loras: tuple[tuple[str, float], ...] = (),
    ) -> LoadedModel:
        from canvas_app.engine.lora import apply_loras

        loaded = self._loaded
        if loaded is not None and loaded.source == source and loaded.device == device:
            if loaded.loras != loras:
                apply_loras(loaded, loras, self.allow_pickle)
            return loaded
        self.release()
        pipe = load_pipeline(source, device, self.allow_pickle)
        loaded = LoadedModel(source, device, pipe)
        if loras:
            apply_loras(loaded, loras, self.allow_pickle)
        self._loaded = loaded
        return loaded

    def release(self) -> None:
        if self._loaded is not None:
            device = self._loaded.device.device
            self._loaded = None
            free_memory(device)

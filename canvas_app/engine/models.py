"""Where models come from and how they are loaded, cached and released.

Sources: the built-in model (``"builtin"``), a local diffusers folder, a single checkpoint file
(``.safetensors``; pickle formats only when allowed) and a model id on the Hugging Face hub (from the
local cache when offline). One model is kept loaded and reused; loading another frees it. The
built-in model is two pipelines that share one VAE, text encoder and tokenizer (on disk and in
memory): its inpainting folder ships only its UNet, and both stay loaded together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canvas_app.core.request import BUILTIN_MODEL
from canvas_app.engine import builtin_weights
from canvas_app.engine.devices import DeviceChoice, free_memory
from canvas_app.engine.errors import ModelError
from canvas_app.resources import builtin_inpaint_model_dir, builtin_model_dir

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
# What a pipeline folder may take from another one instead of carrying its own copy.
SHARED_COMPONENTS = ("vae", "text_encoder", "tokenizer")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "folder" | "single_file" | "hub"
    location: str
    name: str  # short name for metadata and messages
    # A folder whose SHARED_COMPONENTS this one uses (the built-in inpainting UNet's base), or "".
    shares: str = ""

    def base(self) -> ModelSource | None:
        """The source whose components this one shares, as resolve_source would give it."""
        return ModelSource("folder", self.shares, Path(self.shares).name) if self.shares else None


def resolve_source(model: str, allow_pickle: bool = False, inpaint: bool = False) -> ModelSource:
    """Turn a request's model string into a source, or raise ModelError saying why it cannot be used.

    For ``builtin`` and ``inpaint=True`` the built-in inpainting variant is chosen when installed.
    """
    if model in ("", BUILTIN_MODEL):
        return _builtin_source(inpaint)
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


def _builtin_source(inpaint: bool) -> ModelSource:
    try:
        base, inpainting = builtin_model_dir(), builtin_inpaint_model_dir()
    except FileNotFoundError as error:
        raise ModelError(f"the built-in model is not installed ({error})") from None
    if not (base / "model_index.json").is_file():
        raise ModelError(f"the built-in model is not installed (expected it in {base})")
    if inpaint and (inpainting / "model_index.json").is_file():
        return ModelSource("folder", str(inpainting), inpainting.name, shares=str(base))
    return ModelSource("folder", str(base), base.name)


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


def load_pipeline(
    source: ModelSource,
    device: DeviceChoice,
    allow_pickle: bool = False,
    components: dict[str, Any] | None = None,
) -> Any:
    """Load a pipeline from ``source`` onto ``device``, using the already loaded ``components``
    (e.g. another pipeline's VAE) instead of reading them. Raises ModelError with a readable message."""
    from canvas_app.engine.single_file import load_single_file

    dtype = device.dtype
    try:
        if source.kind == "single_file":
            pipe = load_single_file(Path(source.location), dtype)
        else:
            pipe = _load_pretrained(source, device.load_dtypes(), allow_pickle, components or {})
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


def _load_pretrained(source: ModelSource, dtype: Any, allow_pickle: bool, components: dict[str, Any]) -> Any:
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # Their loading bars ("Loading pipeline components", "Loading weights") are not for our users:
    # the app and the CLI show their own progress.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    kwargs: dict[str, Any] = {dtype_kwarg(): dtype, **components}
    if source.kind == "folder":
        kwargs["local_files_only"] = True
        index = json.loads((Path(source.location) / "model_index.json").read_text())
        if not allow_pickle and not _has_safetensors(Path(source.location)):
            raise ModelError(
                f"{source.name} holds only pickle weights (.bin), and loading them can run arbitrary "
                "code; convert it to safetensors or allow pickle checkpoints explicitly"
            )
        if "unet" not in kwargs:  # the built-in model's int8 UNet (other folders: nothing)
            try:
                kwargs.update(builtin_weights.pipeline_components(Path(source.location), dtype))
            except ValueError as error:
                raise ModelError(f"could not load model {source.name}: {error}") from error
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
    """Holds the loaded model, and beside it the pipelines that share its modules: the built-in
    model's inpainting pipeline shares VAE, text encoder and tokenizer with its base, so switching
    between a txt2img frame and an inpaint frame reloads nothing. Asking for an unrelated model
    frees them all first (memory first). ``loads`` counts pipelines read from disk."""

    def __init__(self, allow_pickle: bool = False) -> None:
        self.allow_pickle = allow_pickle
        self.loads = 0
        self._family: dict[ModelSource, LoadedModel] = {}
        self._current: LoadedModel | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def get(
        self,
        source: ModelSource,
        device: DeviceChoice,
        loras: tuple[tuple[str, float], ...] = (),
    ) -> LoadedModel:
        from canvas_app.engine.lora import apply_loras, restore

        loaded = self._family.get(source)
        if loaded is None or loaded.device != device:
            if not self._related(source, device):
                self.release()
            loaded = self._load(source, device)
        # Siblings share modules, so a LoRA merged into one is in the other too: only the pipeline
        # in use carries LoRAs.
        for other in self._family.values():
            if other is not loaded and other.loras:
                restore(other)
        if loaded.loras != loras:
            apply_loras(loaded, loras, self.allow_pickle)
        self._current = loaded
        return loaded

    def _related(self, source: ModelSource, device: DeviceChoice) -> bool:
        """Whether ``source`` shares modules with what is loaded (then both stay loaded)."""
        for member in self._family.values():
            if member.device != device:
                continue
            held = member.source
            if source.shares and source.shares in (held.location, held.shares):
                return True
            if held.shares and held.shares == source.location:
                return True
        return False

    def _load(self, source: ModelSource, device: DeviceChoice) -> LoadedModel:
        components: dict[str, Any] = {}
        base = source.base()
        if base is not None:
            held = self._family.get(base)
            if held is None or held.device != device:
                held = self._load(base, device)
            components = {name: getattr(held.pipe, name) for name in SHARED_COMPONENTS}
        pipe = load_pipeline(source, device, self.allow_pickle, components)
        self.loads += 1
        loaded = LoadedModel(source, device, pipe)
        self._family[source] = loaded
        return loaded

    def release(self) -> None:
        if self._family:
            devices = {member.device.device for member in self._family.values()}
            self._family.clear()
            self._current = None
            for device in devices:
                free_memory(device)

"""LoRA files merged into the loaded model's weights with a per-file weight.

Merging (W += weight * alpha / rank * up @ down) costs nothing per step and needs no PEFT. The
original weights of every touched layer are kept so that a different LoRA set restores them
exactly first. Kohya/A1111 files ("lora_unet_...") are converted with diffusers' own converter;
diffusers/PEFT files ("unet....lora_A.weight", "....lora.down.weight") are read directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canvas_app.engine.errors import ModelError

_DOWN_SUFFIXES = (
    (".lora_A.weight", ".lora_B.weight"),
    (".lora.down.weight", ".lora.up.weight"),
    (".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"),
    ("_lora.down.weight", "_lora.up.weight"),
)
_COMPONENTS = ("unet", "text_encoder_2", "text_encoder")


def check_lora_file(path: Path, allow_pickle: bool) -> None:
    """Raise ModelError unless ``path`` is a LoRA file this app may read: it exists, and it is
    safetensors unless pickle files are allowed (checked before anything is loaded)."""
    if not path.is_file():
        raise ModelError(f"LoRA file not found: {path}")
    if path.suffix.lower() != ".safetensors" and not allow_pickle:
        raise ModelError(
            f"{path.name} is a pickle file, and loading one can run arbitrary code; "
            "use a .safetensors LoRA or allow pickle checkpoints explicitly"
        )


def read_lora(path: Path, allow_pickle: bool) -> tuple[dict[str, Any], dict[str, float]]:
    """The LoRA's tensors in diffusers naming, and its alphas keyed by module path."""
    check_lora_file(path, allow_pickle)
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as error:  # safetensors raises its own error type for damaged files
            raise ModelError(f"{path.name} is not a readable safetensors file ({error})") from None
    else:
        import torch

        state = torch.load(str(path), map_location="cpu", weights_only=True)
    alphas: dict[str, float] = {}
    if any(k.startswith(("lora_unet_", "lora_te")) for k in state):
        from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_lora_to_diffusers

        state, raw_alphas = _convert_non_diffusers_lora_to_diffusers(dict(state))
        alphas = {_strip_suffix(k.removesuffix(".alpha")): float(v) for k, v in raw_alphas.items()}
    else:
        for key in [k for k in state if k.endswith(".alpha")]:
            alphas[key.removesuffix(".alpha")] = float(state.pop(key))
    return state, alphas


def _module_name(path: str) -> str:
    """diffusers' Kohya converter names attention layers the old way ("attn1.processor.to_q")."""
    path = path.replace(".processor.", ".")
    return path + ".0" if path.endswith(".to_out") else path


def _strip_suffix(key: str) -> str:
    for down_suffix, _ in _DOWN_SUFFIXES:
        if key.endswith(down_suffix):
            return key[: -len(down_suffix)]
    return key


def _pairs(state: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(module path, down, up) for every low-rank pair; the path keeps the file's naming."""
    out = []
    for key, down in state.items():
        for down_suffix, up_suffix in _DOWN_SUFFIXES:
            if key.endswith(down_suffix):
                module = key[: -len(down_suffix)]
                up = state.get(module + up_suffix)
                if up is not None:
                    out.append((module, down, up))
                break
    return out


def _find_module(pipe: Any, path: str) -> tuple[Any, str] | None:
    for component in _COMPONENTS:
        if path.startswith(component + "."):
            root = getattr(pipe, component, None)
            if root is None:
                return None
            rest = path[len(component) + 1 :]
            for candidate in (rest, rest.removeprefix("text_model."), "text_model." + rest):
                try:
                    return root.get_submodule(candidate), candidate
                except AttributeError:
                    continue
            return None
    return None


def restore(loaded: Any) -> None:
    """Put back the original weights of every layer a LoRA changed."""
    originals: dict[int, tuple[Any, Any]] = loaded.extras.pop("lora_originals", {})
    for module, weight in originals.values():
        module.weight.data.copy_(weight.to(module.weight.device))
    loaded.loras = ()


def apply_loras(loaded: Any, loras: tuple[tuple[str, float], ...], allow_pickle: bool) -> list[str]:
    """Merge ``loras`` (path, weight) into ``loaded``; returns notices (e.g. unmatched layers)."""
    import torch

    restore(loaded)
    notices: list[str] = []
    originals: dict[int, tuple[Any, Any]] = {}
    loaded.extras["lora_originals"] = originals
    try:
        with torch.inference_mode():
            for path_text, weight in loras:
                state, alphas = read_lora(Path(path_text), allow_pickle)
                pairs = _pairs(state)
                if not pairs:
                    raise ModelError(f"{Path(path_text).name} holds no LoRA weights that this app can read")
                missed = 0
                for module_path, down, up in pairs:
                    found = _find_module(loaded.pipe, _module_name(module_path))
                    if found is None or not hasattr(found[0], "weight"):
                        missed += 1
                        continue
                    module = found[0]
                    target = module.weight
                    rank = down.shape[0]
                    scale = weight * (alphas.get(module_path, rank) / rank)
                    delta = up.float().flatten(1) @ down.float().flatten(1)
                    if delta.numel() != target.numel():
                        missed += 1
                        continue
                    if id(module) not in originals:
                        originals[id(module)] = (module, target.detach().to("cpu", copy=True))
                    target.data += (scale * delta.reshape(target.shape)).to(target.device, target.dtype)
                if missed == len(pairs):
                    raise ModelError(
                        f"{Path(path_text).name} does not fit this model (none of its {len(pairs)} layers "
                        "match): it was made for another base model"
                    )
                if missed:
                    notices.append(
                        f"{missed} of {len(pairs)} layers of {Path(path_text).name} did not match the model"
                    )
    except BaseException:
        restore(loaded)  # never leave a half-merged set of LoRAs behind
        loaded.extras["lora_notices"] = []
        raise
    loaded.loras = loras
    loaded.extras["lora_notices"] = notices
    return notices

"""Sampler names that artists know, mapped onto diffusers scheduler classes and settings."""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

from canvas_app.engine.errors import InputError

# name -> (diffusers class, settings layered over the model's own scheduler config)
_SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "DPM++ 2M Karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    # A1111's "DPM++ SDE" is the Karras DPM-Solver SDE sampler; it needs torchsde.
    "DPM++ SDE": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}

# When torchsde is missing, "DPM++ SDE" runs as the 2M SDE variant (same family, no torchsde).
_SDE_FALLBACK = (
    "DPMSolverMultistepScheduler",
    {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
)

# Only these keys of the model's scheduler config describe the model itself (its noise schedule and
# what the UNet predicts); everything else belongs to the sampler.
_MODEL_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "prediction_type",
    "rescale_betas_zero_snr",
    "timestep_spacing",
    "steps_offset",
)

SCHEDULER_NAMES: tuple[str, ...] = tuple(_SCHEDULERS)


def canonical_name(name: str) -> str:
    """The scheduler's canonical spelling; case and spacing are forgiven. Raises InputError."""
    key = " ".join(name.split()).lower()
    for known in _SCHEDULERS:
        if known.lower() == key:
            return known
    raise InputError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULER_NAMES)}")


def make_scheduler(name: str, model_config: dict[str, Any]) -> tuple[Any, str | None]:
    """A fresh scheduler instance (never shared between runs) and an optional notice for the user."""
    import diffusers

    canonical = canonical_name(name)
    class_name, settings = _SCHEDULERS[canonical]
    notice = None
    if class_name == "DPMSolverSDEScheduler" and not _has_torchsde():
        class_name, settings = _SDE_FALLBACK
        notice = "DPM++ SDE needs the torchsde package; ran DPM++ 2M SDE Karras instead"
    if model_config.get("rescale_betas_zero_snr") and not _supports_zero_snr(class_name):
        # A model trained with zero terminal SNR goes wrong on the plain schedule (its first step
        # would not be pure noise), so run the nearest sampler that knows the rescaled one.
        notice = (
            f"{canonical} cannot run this model's zero-terminal-SNR schedule; ran DPM++ 2M SDE Karras instead"
        )
        class_name, settings = _SDE_FALLBACK
    config = {k: model_config[k] for k in _MODEL_KEYS if k in model_config}
    if class_name == "LCMScheduler":
        config.pop("timestep_spacing", None)
    config.update(settings)
    cls = getattr(diffusers, class_name)
    return cls.from_config(config), notice


def _has_torchsde() -> bool:
    return importlib.util.find_spec("torchsde") is not None


def _supports_zero_snr(class_name: str) -> bool:
    import diffusers

    init = getattr(diffusers, class_name).__init__
    return "rescale_betas_zero_snr" in inspect.signature(init).parameters

"""torch.compile of the UNet: opt-in, because its first run is long.

Measured on a 2-core AMD EPYC (AVX2; docs/benchmarks.md, ``bench/cpu_speed.py --only compile``): an
inductor-compiled built-in UNet call takes 0.78-0.86x of eager once compiled, but the compile of one
tile shape cost 2.5 min of CPU (18 min of wall time on the shared machine; 12 s of CPU with the
cache warm). So it is a setting (``EngineSettings.compile``: Settings > Speed, ``--compile``,
``CANVAS_APP_COMPILE=1``), off by default. The shapes are fixed (every tile of a run has the same
size); a new tile size, batch or dtype compiles again.
inductor's cache lives in the app's cache folder, so a later session reuses the compiled kernels.
A run whose shape is not compiled yet in this process says so first (``COMPILING_STAGE``, a Loading
event), then compiles with one call on zeros, before its steps start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

COMPILE_ENV = "CANVAS_APP_COMPILE"  # "1": compile the UNet (as --compile / the setting)
# "inductor" (default) or another torch.compile backend; tests use "eager" (dynamo only, no C++
# build: the compile of even a tiny UNet takes minutes on two cores).
BACKEND_ENV = "CANVAS_APP_COMPILE_BACKEND"
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"  # inductor's own variable; ours when the user has not set it
COMPILING_STAGE = "Compiling (first run)..."


def compile_from_environment() -> bool:
    return os.environ.get(COMPILE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def inductor_cache_dir() -> Path:
    """Where compiled kernels are kept between sessions: the app's cache folder."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("canvas_app", "canvas_app")) / "inductor"


def set_cache_default() -> None:
    """Point inductor's cache at the app's cache folder unless the user chose one. On import of the
    engine package: importing diffusers' models already fixes inductor's default (/tmp/...)."""
    os.environ.setdefault(CACHE_ENV, str(inductor_cache_dir()))


def _signature(value: Any) -> Any:
    """What a compiled graph is specialised on: shapes and dtypes of the tensors, other values."""
    import torch

    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype), str(value.device))
    if isinstance(value, dict):
        return tuple(sorted((k, _signature(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    return value


class CompiledUNet:
    """A model's UNet under torch.compile with fixed shapes, and the calls it has compiled so far.

    Call it like the UNet. The UNet itself is not changed (its weights are read at every call, so a
    LoRA fused into them later is seen)."""

    def __init__(self, unet: Any, backend: str | None = None) -> None:
        import torch

        self.backend = backend or os.environ.get(BACKEND_ENV) or "inductor"
        self.module = torch.compile(unet, dynamic=False, backend=self.backend)
        self._seen: set[Any] = set()

    def is_new(self, *args: Any, **kwargs: Any) -> bool:
        """Whether a call with these arguments will compile (not yet run in this process)."""
        return _signature((args, kwargs)) not in self._seen

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.module(*args, **kwargs)
        self._seen.add(_signature((args, kwargs)))
        return out

"""Which device and dtype to run on: CUDA fp16, MPS fp16 (fp32 on request), CPU fp32."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

# "cuda", "cuda:1", "mps", "cpu", optionally with ":fp32"/":fp16" (e.g. "cuda:fp32").
DEVICE_ENV = "CANVAS_APP_DEVICE"


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    dtype_name: str  # "float16" or "float32"

    @property
    def dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype_name)

    def describe(self) -> str:
        name = self.device
        if self.device.startswith("cuda"):
            import torch

            name = f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        return f"{name}, {self.dtype_name}"


def pick_device(override: str | None = None) -> DeviceChoice:
    """The best available device, unless ``override`` (or $CANVAS_APP_DEVICE) names one.

    The override is "DEVICE" or "DEVICE:DTYPE"; the dtype defaults to fp16 on accelerators and fp32
    on the CPU (CPU half precision is slow and poorly supported).
    """
    import torch

    spec = override or os.environ.get(DEVICE_ENV) or ""
    dtype_name = None
    if spec.endswith((":fp16", ":fp32")):
        spec, _, precision = spec.rpartition(":")
        dtype_name = "float16" if precision == "fp16" else "float32"
    if spec:
        device = spec
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but CUDA is not available here")
        if device == "mps" and not _mps_available():
            raise ValueError("device 'mps' was asked for, but Metal is not available here")
    elif torch.cuda.is_available():
        device = "cuda"
    elif _mps_available():
        device = "mps"
    else:
        device = "cpu"
    if dtype_name is None:
        dtype_name = "float32" if device == "cpu" else "float16"
    return DeviceChoice(device, dtype_name)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error).lower()
    return "out of memory" in text or "mps backend out of memory" in text


def free_memory(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and _mps_available():
        torch.mps.empty_cache()

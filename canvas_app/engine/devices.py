"""Which device and dtype to run on, and which dtype each model component gets.

CUDA and MPS run fp16. The CPU runs bf16 where the processor computes it natively (AMX-BF16 or
AVX512-BF16: 2.3x faster than fp32 for an SD 1.5 UNet on such a Xeon, half the memory) and fp32
elsewhere (without native bf16, oneDNN converts every bf16 operand to fp32 and back, which is
slower than fp32 itself; see docs/benchmarks.md). A spec such as "cpu:bf16" overrides the choice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

# "cuda", "cuda:1", "mps", "cpu", optionally with ":fp32"/":fp16"/":bf16" (e.g. "cpu:bf16").
DEVICE_ENV = "CANVAS_APP_DEVICE"
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# CPU features that compute bf16 dot products in hardware (names as in /proc/cpuinfo and in
# torch.cpu.get_capabilities()).
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def native_bf16_flag(flags: Iterable[str]) -> str | None:
    """The first native-bf16 feature among ``flags`` (e.g. "amx_bf16"), or None."""
    present = {flag.strip().lower() for flag in flags}
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in present), None)


def cpu_dtype_name(flags: Iterable[str]) -> str:
    """The CPU dtype for a processor with these feature flags: bf16 when it is native, else fp32."""
    return "bfloat16" if native_bf16_flag(flags) else "float32"


def cpu_flags() -> frozenset[str]:
    """This processor's feature flags: torch's cpuinfo (every OS), plus /proc/cpuinfo on Linux."""
    flags: set[str] = set()
    try:
        import torch

        caps = torch.cpu.get_capabilities()
        flags.update(name for name, value in caps.items() if value is True)
    except (ImportError, AttributeError, RuntimeError):  # older torch: no get_capabilities
        pass
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
                for line in info:
                    if line.startswith(("flags", "Features")):
                        flags.update(line.partition(":")[2].split())
                        break
        except OSError:
            pass
    return frozenset(flags)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """ "cpu:bf16" -> ("cpu", "bfloat16"); "cuda:1" -> ("cuda:1", None); "" -> ("", None).

    Raises ValueError for a device or precision this app does not know.
    """
    spec = spec.strip().lower()
    dtype_name = None
    head, sep, tail = spec.rpartition(":")
    if sep and tail in PRECISIONS:
        spec, dtype_name = head, PRECISIONS[tail]
    elif sep and not tail.isdigit():
        raise ValueError(f"unknown precision {tail!r} in device {spec!r}: use fp32, fp16 or bf16")
    device, _, index = spec.partition(":")
    if device not in ("", "cpu", "cuda", "mps") or (index and (device != "cuda" or not index.isdigit())):
        raise ValueError(
            f"unknown device {spec!r}: use cpu, cuda, cuda:N or mps, optionally with :fp32/:fp16/:bf16"
        )
    if not device and dtype_name:
        raise ValueError(f"device {spec!r}: name the device before the precision (e.g. cpu:bf16)")
    return spec, dtype_name


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    dtype_name: str  # "float16", "bfloat16" or "float32": the UNet's and the text encoder's
    reason: str = ""  # why this dtype, for the status bar and the About box

    @property
    def dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype_name)

    @property
    def vae_dtype_name(self) -> str:
        """The VAE's dtype: the main one, except bf16 on the CPU keeps an fp32 VAE.

        Why: the VAE decodes once per image (a small share of a CPU run next to 20+ UNet steps).
        A bf16 decode measured 56-58 dB PSNR against fp32 on the built-in model (bench/cpu_speed.py),
        so bf16 would be safe too; what it gains on a native-bf16 CPU is not measured yet. SDXL's
        fp16 VAE overflow is handled by ``component_dtype_names``.
        """
        if self.device == "cpu" and self.dtype_name == "bfloat16":
            return "float32"
        return self.dtype_name

    def component_dtype_names(self, is_sdxl: bool = False, vae_force_upcast: bool = False) -> dict[str, str]:
        """dtype name per pipeline component ("default" for all but the VAE, diffusers' convention)."""
        vae = self.vae_dtype_name
        # SDXL's original VAE overflows in fp16 (its config says force_upcast); fixed VAEs do not.
        if is_sdxl and vae_force_upcast and vae == "float16":
            vae = "float32"
        return {"default": self.dtype_name, "vae": vae}

    def load_dtypes(self) -> dict[str, Any]:
        """torch dtypes to load each component in: the widest it may end up in (an SDXL VAE that
        must stay fp32 is not read through fp16); ``component_dtypes`` then narrows what may be."""
        import torch

        names = self.component_dtype_names(is_sdxl=True, vae_force_upcast=True)
        return {name: getattr(torch, value) for name, value in names.items()}

    def component_dtypes(self, pipe: Any) -> dict[str, Any]:
        """torch dtype for every torch module of a loaded pipeline (UNet, text encoders, VAE)."""
        import torch

        is_sdxl = getattr(pipe, "text_encoder_2", None) is not None
        upcast = bool(pipe.vae.config.get("force_upcast", False))
        names = self.component_dtype_names(is_sdxl, upcast)
        return {
            name: getattr(torch, names.get(name, names["default"]))
            for name, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)
        }

    def describe(self) -> str:
        name = self.device
        if self.device.startswith("cuda"):
            import torch

            name = f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        text = f"{name}, {self.dtype_name}"
        if self.vae_dtype_name != self.dtype_name:
            text += f" (VAE {self.vae_dtype_name})"
        return f"{text}; {self.reason}" if self.reason else text


def latent_dtype(unet_dtype: Any) -> Any:
    """dtype of the latents carried from step to step: fp32 under a bf16 UNet (bf16 keeps 8 bits
    of mantissa, too few to add up 20+ small scheduler updates), else the UNet's, as diffusers does.
    Only the UNet's input is cast down."""
    import torch

    return torch.float32 if unet_dtype == torch.bfloat16 else unet_dtype


def pick_device(override: str | None = None) -> DeviceChoice:
    """The best available device, unless ``override`` (or $CANVAS_APP_DEVICE) names one.

    The override is "DEVICE" or "DEVICE:PRECISION" (fp32, fp16, bf16); the dtype defaults to fp16
    on accelerators, and on the CPU to what the processor computes natively (``cpu_dtype_name``).
    """
    import torch

    spec, dtype_name = parse_spec(override or os.environ.get(DEVICE_ENV) or "")
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
    if device != "cpu":
        return DeviceChoice(device, dtype_name or "float16")
    native = native_bf16_flag(cpu_flags())
    if dtype_name is None:
        dtype_name = "bfloat16" if native else "float32"
        reason = f"native bf16 ({native})" if native else "this processor has no native bf16"
    else:
        reason = "as asked"
        if dtype_name == "bfloat16" and not native:
            reason += "; this processor has no native bf16, fp32 is faster here"
    return DeviceChoice(device, dtype_name, reason)


# OpenMP, torch's CPU thread pool, lets a thread that waits for its partner spin (libgomp: ~300,000
# rounds) before it sleeps. Where anything else runs, the partner is often descheduled and the spin
# burns the waiter's time slice: with 2 threads on a busy 2-core machine a built-in UNet call took
# 30 s instead of 0.47 s with PASSIVE (sleep at once; bench/cpu_speed.py --only threads).
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
# Settings of the user's that take precedence over ours (GOMP_SPINCOUNT overrides the wait policy).
OPENMP_USER_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def set_openmp_defaults(environ: MutableMapping[str, str] | None = None) -> bool:
    """Put OPENMP_DEFAULTS into the environment unless the user set any of OPENMP_USER_KEYS.

    The OpenMP runtime reads them once, when torch loads it, so this runs on import of the engine
    package; returns False when torch was imported before (then it has no effect in this process).
    """
    env = os.environ if environ is None else environ
    if not any(key in env for key in OPENMP_USER_KEYS):
        env.update(OPENMP_DEFAULTS)
    return "torch" not in sys.modules


def cpu_threads() -> int:
    """Threads for CPU inference: the physical cores (hyperthreads share the same FMA units and
    only add contention), at least 1."""
    try:
        import torch

        cores = int(torch.cpu.get_capabilities().get("num_physical_cores", 0) or 0)
    except (ImportError, AttributeError, RuntimeError):
        cores = 0
    return max(1, cores or (os.cpu_count() or 1))


def limit_cpu_threads() -> None:
    """At most one torch thread per physical core; never raises a count the user lowered."""
    import torch

    if torch.get_num_threads() > cpu_threads():
        torch.set_num_threads(cpu_threads())


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

"""CPU precision: bf16 where the processor has it natively, fp32 elsewhere, and overrides.

Flag sets are copied from /proc/cpuinfo of real processors, so the choice is tested for both kinds
of CPU whatever this machine is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run

from canvas_app.engine import devices
from canvas_app.engine.api import Finished, GenerationRequest
from canvas_app.engine.devices import cpu_dtype_name, native_bf16_flag, parse_spec, pick_device
from canvas_app.engine.local import LocalDiffusersEngine

# AMD EPYC (Zen 3) VM: AVX2 only, as the development machine.
EPYC_ZEN3 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2 sha_ni vaes vpclmulqdq".split()
# Intel Skylake-SP: AVX-512, but no bf16 instructions.
SKYLAKE_SP = EPYC_ZEN3 + "avx512f avx512dq avx512cd avx512bw avx512vl".split()
# Intel Cooper Lake: AVX512-BF16 without AMX.
COOPER_LAKE = SKYLAKE_SP + ["avx512_bf16", "avx512_vnni"]
# Intel Sapphire Rapids: AMX tiles with bf16.
SAPPHIRE_RAPIDS = COOPER_LAKE + ["amx_bf16", "amx_tile", "amx_int8", "avx512_fp16"]
# AMD Zen 4 (Genoa): AVX512-BF16.
ZEN4 = EPYC_ZEN3 + "avx512f avx512bw avx512vl avx512_bf16 avx512_vnni".split()


@pytest.mark.parametrize(
    ("flags", "dtype", "flag"),
    [
        (EPYC_ZEN3, "float32", None),
        (SKYLAKE_SP, "float32", None),
        (COOPER_LAKE, "bfloat16", "avx512_bf16"),
        (SAPPHIRE_RAPIDS, "bfloat16", "amx_bf16"),
        (ZEN4, "bfloat16", "avx512_bf16"),
        ([], "float32", None),
    ],
)
def test_cpu_dtype_follows_native_bf16(flags: list[str], dtype: str, flag: str | None) -> None:
    assert cpu_dtype_name(flags) == dtype
    assert native_bf16_flag(flags) == flag


def test_this_machines_flags_are_read() -> None:
    flags = devices.cpu_flags()
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert "avx2" in flags
    # Whatever this processor is, the automatic choice follows its flags.
    assert pick_device("cpu").dtype_name == cpu_dtype_name(flags)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("", ("", None)),
        ("cpu", ("cpu", None)),
        ("cpu:bf16", ("cpu", "bfloat16")),
        ("cpu:fp32", ("cpu", "float32")),
        ("CPU:BF16", ("cpu", "bfloat16")),
        ("cuda:fp16", ("cuda", "float16")),
        ("cuda:1", ("cuda:1", None)),
        ("cuda:1:bf16", ("cuda:1", "bfloat16")),
        ("mps:fp32", ("mps", "float32")),
    ],
)
def test_device_spec_parses(spec: str, parsed: tuple[str, str | None]) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cpu:int8", "unknown precision"),
        ("tpu", "unknown device"),
        ("cpu:1", "unknown device"),
        (":bf16", "name the device"),
    ],
)
def test_bad_device_spec_says_why(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


@pytest.mark.parametrize(("flags", "dtype"), [(SAPPHIRE_RAPIDS, "bfloat16"), (EPYC_ZEN3, "float32")])
def test_automatic_cpu_choice_and_what_the_status_says(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], dtype: str
) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(flags))
    choice = pick_device("cpu")
    assert choice.dtype_name == dtype
    text = choice.describe()
    assert text.startswith(f"cpu, {dtype}")
    if dtype == "bfloat16":
        assert "native bf16 (amx_bf16)" in text and "VAE float32" in text
    else:
        assert "no native bf16" in text and "VAE" not in text


def test_forced_bf16_on_a_processor_without_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(EPYC_ZEN3))
    choice = pick_device("cpu:bf16")
    assert choice.dtype_name == "bfloat16"
    assert "as asked" in choice.describe() and "no native bf16" in choice.describe()
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(SAPPHIRE_RAPIDS))
    assert pick_device("cpu:fp32").dtype_name == "float32"


def test_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devices.DEVICE_ENV, "cpu:bf16")
    assert pick_device().dtype_name == "bfloat16"
    monkeypatch.setenv(devices.DEVICE_ENV, "cpu:fp33")
    with pytest.raises(ValueError, match="unknown precision"):
        pick_device()


def test_component_dtypes() -> None:
    cpu_bf16 = pick_device("cpu:bf16").component_dtype_names()
    assert cpu_bf16 == {"default": "bfloat16", "vae": "float32"}
    fp16 = devices.DeviceChoice("cuda", "float16")
    assert fp16.component_dtype_names() == {"default": "float16", "vae": "float16"}
    # SDXL's original VAE overflows in fp16; its config asks for fp32.
    assert fp16.component_dtype_names(is_sdxl=True, vae_force_upcast=True)["vae"] == "float32"
    assert fp16.load_dtypes()["vae"] == torch.float32  # read wide, narrowed after loading


def test_bf16_pipeline_runs_on_the_cpu(sd4: str) -> None:
    """A tiny random pipeline, 2 steps in bf16 on the CPU: bf16 UNet and text encoder, fp32 VAE,
    fp32 latents, and a finite image close to the fp32 run of the same seed."""
    engine = LocalDiffusersEngine(device="cpu:bf16", previews=True, preview_interval_s=0.0)
    loaded = engine.load(sd4)
    assert loaded.unet.dtype == torch.bfloat16
    assert loaded.pipe.text_encoder.dtype == torch.bfloat16
    assert loaded.vae.dtype == torch.float32
    request = GenerationRequest(prompt="a red house", width=64, height=64, steps=2, seed=3, model=sd4)
    events = run(engine, request)
    done = events[-1]
    assert isinstance(done, Finished), done
    image = done.candidates[0]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image.std() > 1.0  # not a flat or broken image

    fp32 = run(LocalDiffusersEngine(device="cpu:fp32"), request)[-1]
    assert isinstance(fp32, Finished)
    difference = np.abs(image.astype(np.int16) - fp32.candidates[0].astype(np.int16))
    assert difference.mean() < 8.0, difference.mean()


def test_about_box_and_status_name_the_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """The About box and the status bar show the engine's describe_device(): it names the dtype."""
    from canvas_app.about import about_info, format_about_text, format_status_text

    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(EPYC_ZEN3))
    info = about_info(LocalDiffusersEngine(device="cpu").describe_device())
    assert "cpu, float32; this processor has no native bf16" in format_about_text(info)
    forced = about_info(LocalDiffusersEngine(device="cpu:bf16").describe_device())
    assert "cpu, bfloat16 (VAE float32)" in format_status_text(forced)

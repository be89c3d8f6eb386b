"""The built-in model's weights are stored as they ship (UNets int8, the rest fp16), and the engine
runs them in its own dtype."""

import logging
import warnings
from pathlib import Path

import pytest

from tests.engine.tiny_models import build_pipeline
from tools.builtin_model.shipped_weights import (
    SAFETENSORS_DTYPE,
    as_shipped,
    save_shipped,
    shipped_dtype,
    stored_dtypes,
)

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


@pytest.mark.skipif(not (MODELS / "builtin").is_dir(), reason="built-in model not installed")
def test_every_shipped_weight_file_is_stored_in_the_shipped_format():
    from canvas_app.engine.builtin_weights import INT8_UNET_FILE

    files = sorted(MODELS.rglob("*.safetensors"))
    # Both UNets (int8 with fp16 scales, biases and norms), the text encoder and the VAE (fp16): an
    # export that wrote fp32 would double the files, one in diffusers' UNet format would add 7 MB.
    assert {f.relative_to(MODELS).as_posix(): stored_dtypes(f) for f in files} == {
        f"builtin/unet/{INT8_UNET_FILE}": {"I8", SAFETENSORS_DTYPE},
        f"builtin-inpaint/unet/{INT8_UNET_FILE}": {"I8", SAFETENSORS_DTYPE},
        "builtin/vae/diffusion_pytorch_model.safetensors": {SAFETENSORS_DTYPE},
        "builtin/text_encoder/model.safetensors": {SAFETENSORS_DTYPE},
    }


def test_stored_dtypes_reads_the_header(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2, dtype=torch.float16), "b": torch.zeros(3)}, tmp_path / "w.safetensors")
    assert stored_dtypes(tmp_path / "w.safetensors") == {"F16", "F32"}


@pytest.mark.parametrize(("device_dtype", "unet_dtype"), [("float32", "float32"), ("bfloat16", "bfloat16")])
def test_saved_pipeline_is_half_on_disk_and_the_engine_loads_it_in_its_own_dtype(
    tmp_path, device_dtype, unet_dtype
):
    import torch
    from diffusers import StableDiffusionPipeline

    from canvas_app.engine.builtin_weights import INT8_UNET_FILE
    from canvas_app.engine.devices import DeviceChoice
    from canvas_app.engine.models import ModelSource, dtype_kwarg, load_pipeline

    fp32 = build_pipeline(tmp_path / "fp32", vae_factor=4)
    pipe = StableDiffusionPipeline.from_pretrained(fp32, **{dtype_kwarg(): torch.float32})
    assert stored_dtypes(fp32 / "unet" / "diffusion_pytorch_model.safetensors") == {"F32"}
    expected = {name: as_shipped(getattr(pipe, name)) for name in ("unet", "vae", "text_encoder")}

    shipped = save_shipped(pipe, tmp_path / "shipped")
    # The model it was given stays in fp32, for the next export that shares its modules.
    assert {p.dtype for name in expected for p in getattr(pipe, name).parameters()} == {torch.float32}
    for f in shipped.rglob("*.safetensors"):
        if f.parent.name == "unet":  # int8: about a quarter of fp32
            assert f.name == INT8_UNET_FILE and stored_dtypes(f) == {"I8", SAFETENSORS_DTYPE}
            assert (
                f.stat().st_size
                < 0.3 * (fp32 / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
            )
        else:
            assert stored_dtypes(f) == {SAFETENSORS_DTYPE}, f
            assert f.stat().st_size < 0.55 * (fp32 / f.relative_to(shipped)).stat().st_size

    # On a CPU without native bf16 everything runs in fp32; with it the UNet and text encoder run
    # bf16 and the VAE fp32. Either way the stored weights come back exactly, and loading them says
    # nothing that loading the fp32 files does not (diffusers 0.42 logs a note on every cast).
    device = DeviceChoice("cpu", device_dtype)
    said_fp32, _ = _load_logging(lambda: load_pipeline(ModelSource("folder", str(fp32), "fp32"), device))
    said, loaded = _load_logging(
        lambda: load_pipeline(ModelSource("folder", str(shipped), "shipped"), device)
    )
    assert said <= said_fp32
    dtypes = {"unet": unet_dtype, "text_encoder": unet_dtype, "vae": "float32"}
    for name, module in expected.items():
        ran = getattr(loaded, name)
        assert {p.dtype for p in ran.parameters()} == {getattr(torch, dtypes[name])}, name
        if dtypes[name] == "float32":
            state = ran.state_dict()
            assert all(torch.equal(state[k], v) for k, v in module.state_dict().items()), name
    assert shipped_dtype() == torch.float16


def _load_logging(load):
    """What ``load()`` returns, and the set of warnings (Python's and the libraries' logs) it gave."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.add(record.getMessage())

    said: set[str] = set()
    handler = Collect(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("diffusers", "transformers", "torch")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = load()
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    return said | {str(w.message) for w in caught}, result

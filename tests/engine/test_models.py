"""Model sources: folders, single files written from a tiny pipeline, the hub cache offline,
pickle refusal, the pipeline cache, schedulers, devices."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from ckpt_writer import write_single_file
from conftest import run

from canvas_app.engine.api import Finished, GenerationRequest, Progress
from canvas_app.engine.devices import cpu_dtype_name, cpu_flags, pick_device
from canvas_app.engine.errors import InputError, ModelError
from canvas_app.engine.local import LocalDiffusersEngine
from canvas_app.engine.models import SHARED_COMPONENTS, ModelCache, resolve_source
from canvas_app.engine.schedulers import SCHEDULER_NAMES, canonical_name


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickle_checkpoints_are_refused_unless_allowed(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match="arbitrary code"):
        resolve_source(str(path))
    assert resolve_source(str(path), allow_pickle=True).kind == "single_file"


def test_pickle_refusal_reaches_the_artist_as_failed(engine, tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"x")
    events = run(engine, GenerationRequest(model=str(path)))
    assert "arbitrary code" in events[-1].message


def test_folder_with_only_bin_weights_is_refused(tmp_path: Path, sd8: str) -> None:
    folder = tmp_path / "binonly"
    shutil.copytree(sd8, folder)
    for f in folder.glob("*/*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    engine = LocalDiffusersEngine(device="cpu")
    events = run(engine, GenerationRequest(model=str(folder)))
    assert "pickle" in events[-1].message


def test_missing_sources_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANVAS_APP_RESOURCES", str(tmp_path))
    with pytest.raises(ModelError, match="built-in model is not installed"):
        resolve_source("builtin")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelError, match="model_index.json"):
        resolve_source(str(tmp_path / "plain"))
    with pytest.raises(ModelError, match="not found"):
        resolve_source(str(tmp_path / "nothing.safetensors"))
    assert resolve_source("someone/some-model").kind == "hub"


def test_builtin_inpaint_variant_is_chosen_for_masked_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sd4: str, inpaint4: str
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(sd4, models / "builtin")
    monkeypatch.setenv("CANVAS_APP_RESOURCES", str(tmp_path))
    assert resolve_source("builtin", inpaint=True).location.endswith("builtin")
    shutil.copytree(inpaint4, models / "builtin-inpaint")
    assert resolve_source("builtin", inpaint=True).location.endswith("builtin-inpaint")
    assert resolve_source("builtin").location.endswith("builtin")


@pytest.mark.parametrize("name", ["sd8", "inpaint4"])
def test_single_file_checkpoint_loads_offline_with_same_weights(tmp_path: Path, request, name: str) -> None:
    folder = Path(request.getfixturevalue(name))
    ckpt = tmp_path / "model.safetensors"
    write_single_file(folder, ckpt)
    # The configs sit beside the checkpoint (no weights needed there).
    config = tmp_path / "model"
    shutil.copytree(folder, config, ignore=shutil.ignore_patterns("*.safetensors"))
    engine = LocalDiffusersEngine(device="cpu")
    single = engine.load(str(ckpt)).pipe
    reference = LocalDiffusersEngine(device="cpu").load(str(folder)).pipe
    for component in ("unet", "vae", "text_encoder"):
        got = getattr(single, component).state_dict()
        expected = getattr(reference, component).state_dict()
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected)
    request = GenerationRequest(model=str(ckpt), width=64, height=64, steps=2)
    from_file = run(engine, request)[-1].candidates[0]
    from_folder = run(engine, request.with_changes(model=str(folder)))[-1].candidates[0]
    assert np.array_equal(from_file, from_folder)


def test_unknown_single_file_architecture_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "odd.safetensors"
    save_file({"some.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ModelError, match="not supported|could not load"):
        LocalDiffusersEngine(device="cpu").load(str(path))


def test_hub_id_loads_from_local_cache_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sd8: str
) -> None:
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-sd"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(sd8, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    engine = LocalDiffusersEngine(device="cpu")
    events = run(engine, GenerationRequest(model="someone/tiny-sd", width=64, height=64, steps=2))
    assert isinstance(events[-1], Finished), events[-1]
    missing = run(engine, GenerationRequest(model="someone/not-cached", width=64, height=64, steps=2))
    assert "not in the local cache" in missing[-1].message


def test_cache_reuses_the_pipeline_and_switching_frees_it(sd8: str, sd4: str) -> None:
    cache = ModelCache()
    device = pick_device("cpu")
    first = cache.get(resolve_source(sd8), device)
    assert cache.get(resolve_source(sd8), device) is first
    second = cache.get(resolve_source(sd4), device)
    assert second is not first and cache.current is second
    cache.release()
    assert cache.current is None


def test_every_scheduler_runs(engine, sd8: str) -> None:
    for name in SCHEDULER_NAMES:
        events = run(engine, GenerationRequest(model=sd8, width=64, height=64, steps=2, scheduler=name))
        assert isinstance(events[-1], Finished), (name, events[-1])
    assert canonical_name("dpm++ 2m  karras") == "DPM++ 2M Karras"
    with pytest.raises(InputError):
        canonical_name("k_lms_unknown")


def test_every_scheduler_runs_a_zero_terminal_snr_model(engine, zero_snr4: str) -> None:
    """The built-in model's schedule: the first step is pure noise (infinite sigma for the Euler
    family), which must give finite previews and pixels with every sampler."""
    for name in SCHEDULER_NAMES:
        request = GenerationRequest(model=zero_snr4, width=64, height=64, steps=3, scheduler=name)
        events = run(engine, request)
        assert isinstance(events[-1], Finished), (name, events[-1])
        previews = [e.preview for e in events if isinstance(e, Progress) and e.preview is not None]
        assert len(previews) == 3, name
        # NaN latents decode to one flat colour; a working run keeps the random model's texture.
        for image in [*previews[1:], events[-1].candidates[0]]:
            assert image.std() > 1.0, name


def test_a_sampler_without_zero_snr_support_falls_back_with_a_notice(monkeypatch) -> None:
    from canvas_app.engine import schedulers
    from canvas_app.engine.schedulers import make_scheduler

    # As if torchsde were installed, so that "DPM++ SDE" would pick DPMSolverSDEScheduler, which
    # knows only the plain schedule.
    monkeypatch.setattr(schedulers, "_has_torchsde", lambda: True)
    config = {
        "rescale_betas_zero_snr": True,
        "prediction_type": "v_prediction",
        "beta_schedule": "scaled_linear",
    }
    scheduler, notice = make_scheduler("DPM++ SDE", config)
    assert scheduler.config.rescale_betas_zero_snr and scheduler.config.prediction_type == "v_prediction"
    assert notice and "zero-terminal-SNR" in notice
    _, plain_notice = make_scheduler("Euler a", config)
    assert plain_notice is None


def test_device_choice_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANVAS_APP_DEVICE", raising=False)
    choice = pick_device("cpu")
    assert (choice.device, choice.dtype_name) == ("cpu", cpu_dtype_name(cpu_flags()))
    assert pick_device("cpu:fp32").dtype_name == "float32"
    assert pick_device("cpu:fp16").dtype_name == "float16"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pick_device("cuda")
        assert pick_device().device in ("cpu", "mps")


def _builtin_pair(tmp_path: Path, sd4: str, inpaint4: str) -> Path:
    """A resources folder laid out as shipped: the inpainting folder carries only its UNet."""
    models = tmp_path / "models"
    shutil.copytree(sd4, models / "builtin")
    shutil.copytree(inpaint4, models / "builtin-inpaint", ignore=shutil.ignore_patterns(*SHARED_COMPONENTS))
    return tmp_path


def test_builtin_pipelines_share_their_modules_and_switching_reloads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sd4: str, inpaint4: str
) -> None:
    monkeypatch.setenv("CANVAS_APP_RESOURCES", str(_builtin_pair(tmp_path, sd4, inpaint4)))
    cache, device = ModelCache(), pick_device("cpu")
    txt2img = cache.get(resolve_source("builtin"), device)
    inpaint = cache.get(resolve_source("builtin", inpaint=True), device)
    assert inpaint.is_inpaint_unet and not txt2img.is_inpaint_unet
    assert inpaint.vae is txt2img.vae
    assert inpaint.pipe.text_encoder is txt2img.pipe.text_encoder
    assert inpaint.pipe.tokenizer is txt2img.pipe.tokenizer
    assert cache.get(resolve_source("builtin"), device) is txt2img
    assert cache.get(resolve_source("builtin", inpaint=True), device) is inpaint
    assert cache.loads == 2 and cache.current is inpaint
    # Starting from the inpainting side loads its base once, and nothing more after.
    fresh = ModelCache()
    fresh.get(resolve_source("builtin", inpaint=True), device)
    fresh.get(resolve_source("builtin"), device)
    assert fresh.loads == 2
    # An unrelated model frees both.
    other = cache.get(resolve_source(sd4), device)
    assert cache.loads == 3 and cache.current is other
    assert cache.get(resolve_source("builtin"), device) is not txt2img


def test_a_lora_on_the_shared_text_encoder_stays_with_the_pipeline_that_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sd4: str, inpaint4: str
) -> None:
    from safetensors.torch import save_file

    monkeypatch.setenv("CANVAS_APP_RESOURCES", str(_builtin_pair(tmp_path, sd4, inpaint4)))
    cache, device = ModelCache(), pick_device("cpu")
    txt2img = cache.get(resolve_source("builtin"), device)
    path, layer = next(
        (path, module)
        for path, module in txt2img.pipe.text_encoder.named_modules()
        if path.endswith("layers.0.self_attn.q_proj")
    )
    original = layer.weight.detach().clone()
    gen = torch.Generator().manual_seed(0)
    name = f"text_encoder.{path}"
    lora = tmp_path / "te.safetensors"
    save_file(
        {
            f"{name}.lora_A.weight": torch.randn(2, original.shape[1], generator=gen),
            f"{name}.lora_B.weight": torch.randn(original.shape[0], 2, generator=gen),
        },
        str(lora),
    )
    loras = ((str(lora), 1.0),)
    cache.get(resolve_source("builtin"), device, loras)
    assert not torch.equal(layer.weight, original)
    cache.get(resolve_source("builtin", inpaint=True), device)
    assert torch.equal(layer.weight, original)
    cache.get(resolve_source("builtin", inpaint=True), device, loras)
    assert not torch.equal(layer.weight, original)
    cache.get(resolve_source("builtin"), device)
    assert torch.equal(layer.weight, original)
    assert cache.loads == 2

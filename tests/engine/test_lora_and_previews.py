"""LoRA merging (Kohya and diffusers formats) and the latent->RGB preview maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo, run
from safetensors.torch import save_file

from canvas_app.engine.api import Finished, GenerationRequest
from canvas_app.engine.local import LocalDiffusersEngine
from canvas_app.engine.previews import Previewer, fit_map, known_map, map_for_model

TARGET = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"


def _write_lora(path: Path, kohya: bool) -> Path:
    gen = torch.Generator().manual_seed(0)
    down = torch.randn(2, 32, generator=gen)
    up = torch.randn(32, 2, generator=gen)
    if kohya:
        name = "lora_unet_" + TARGET.replace(".", "_")
        state = {
            f"{name}.lora_down.weight": down,
            f"{name}.lora_up.weight": up,
            f"{name}.alpha": torch.tensor(2.0),
        }
    else:
        state = {f"unet.{TARGET}.lora_A.weight": down, f"unet.{TARGET}.lora_B.weight": up}
    save_file(state, str(path))
    return path


@pytest.mark.parametrize("kohya", [True, False])
def test_lora_changes_the_result_and_removing_it_restores_it(tmp_path: Path, sd8: str, kohya: bool) -> None:
    lora = _write_lora(tmp_path / "style.safetensors", kohya)
    engine = LocalDiffusersEngine(device="cpu")
    request = GenerationRequest(prompt="a cat", model=sd8, width=64, height=64, steps=2, seed=1)
    plain = run(engine, request)[-1].candidates[0]
    weight = engine.load(sd8).unet.get_submodule(TARGET).weight.detach().clone()
    styled = run(engine, request.with_changes(loras=((str(lora), 0.8),)))[-1]
    assert isinstance(styled, Finished)
    changed = engine.load(sd8, loras=((str(lora), 0.8),)).unet.get_submodule(TARGET).weight
    assert not torch.equal(changed, weight)
    assert not styled.notices, styled.notices
    assert not np.array_equal(styled.candidates[0], plain)
    again = run(engine, request)[-1].candidates[0]
    assert np.array_equal(again, plain)
    assert torch.equal(engine.load(sd8).unet.get_submodule(TARGET).weight, weight)


def test_lora_pickle_refused_and_missing_reported(tmp_path: Path, sd8: str) -> None:
    engine = LocalDiffusersEngine(device="cpu")
    pickle_lora = tmp_path / "style.pt"
    pickle_lora.write_bytes(b"x")
    request = GenerationRequest(model=sd8, width=64, height=64, steps=1)
    assert "arbitrary code" in run(engine, request.with_changes(loras=((str(pickle_lora), 1.0),)))[-1].message
    missing = run(engine, request.with_changes(loras=((str(tmp_path / "none.safetensors"), 1.0),)))[-1]
    assert "not found" in missing.message
    assert isinstance(run(engine, request)[-1], Finished)


def test_known_maps_are_recognised_from_the_vae_config() -> None:
    sd = {"latent_channels": 4, "block_out_channels": [128, 256, 512, 512], "scaling_factor": 0.18215}
    xl = dict(sd, scaling_factor=0.13025)
    assert known_map(sd).shape == (5, 3)
    assert not np.array_equal(known_map(sd), known_map(xl))
    assert known_map(dict(sd, block_out_channels=[64, 128, 256])) is None


def test_fitted_map_explains_colours_better_than_a_constant(engine, sd4: str) -> None:
    model = engine.load(sd4)
    vae = model.vae
    scaling = float(vae.config.scaling_factor)
    rgb_map = fit_map(vae, scaling)
    assert rgb_map.shape == (5, 3)
    image = photo(64, 64, seed=7)
    with torch.inference_mode():
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
        latents = vae.encode(x).latent_dist.mode() * scaling
        target = torch.nn.functional.avg_pool2d(x, 4)[0].permute(1, 2, 0).numpy()
    preview = Previewer(rgb_map, 0.0).render(latents).astype(np.float32) / 127.5 - 1
    assert preview.shape == (16, 16, 3)
    fitted_error = np.abs(preview - target).mean()
    constant_error = np.abs(target - target.mean(axis=(0, 1))).mean()
    assert fitted_error < constant_error
    assert np.array_equal(map_for_model(vae, None), rgb_map)

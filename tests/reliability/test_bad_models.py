"""Broken or wrong models reach the artist as one ``Failed`` with a message that says what is
wrong, and the engine runs the next request normally. (tests/engine/test_models.py checks the
loader's exceptions one by one; this goes through ``generate``, as the app does.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from canvas_app.engine.api import CancelToken, Failed, Finished, GenerationRequest


def run(engine, request: GenerationRequest) -> list:
    events: list = []
    engine.generate(request, events.append, CancelToken())
    return events


def copy_model(src: str, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def case_model(name: str, tiny_sd: str, tmp: Path) -> tuple[str, tuple, str]:
    """(model string, loras, expected message) for one broken model."""
    if name == "missing folder":
        return str(tmp / "no-such-model"), (), "model not found"
    if name == "folder without model_index.json":
        (tmp / "empty").mkdir()
        return str(tmp / "empty"), (), "model_index.json"
    if name == "folder missing the unet":
        folder = copy_model(tiny_sd, tmp / "no-unet")
        shutil.rmtree(folder / "unet")
        return str(folder), (), "could not load model no-unet"
    if name == "folder missing the vae weights":
        folder = copy_model(tiny_sd, tmp / "no-vae-weights")
        for f in (folder / "vae").glob("*.safetensors"):
            f.unlink()
        return str(folder), (), "could not load model no-vae-weights"
    if name == "broken model_index.json":
        folder = copy_model(tiny_sd, tmp / "bad-index")
        (folder / "model_index.json").write_text('{"_class_name": "StableDiff')
        return str(folder), (), "could not load model bad-index"
    if name == "corrupt safetensors in a folder":
        folder = copy_model(tiny_sd, tmp / "corrupt")
        weights = next((folder / "unet").glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:1000])
        return str(folder), (), "could not load model corrupt"
    if name == "corrupt single-file checkpoint":
        path = tmp / "half.safetensors"
        save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, str(path))
        path.write_bytes(path.read_bytes()[:200])
        return str(path), (), "could not load model half|half.safetensors"
    if name == "hostile safetensors header":
        path = tmp / "huge-header.safetensors"
        path.write_bytes((2**60).to_bytes(8, "little") + b"{}")
        return str(path), (), "huge-header.safetensors is not a valid safetensors file"
    if name == "unsupported pipeline class":
        folder = copy_model(tiny_sd, tmp / "other-arch")
        index = json.loads((folder / "model_index.json").read_text())
        index["_class_name"] = "AudioLDMPipeline"
        (folder / "model_index.json").write_text(json.dumps(index))
        return str(folder), (), "could not load model other-arch|not a Stable Diffusion model"
    if name == "unsupported single-file architecture":
        path = tmp / "odd.safetensors"
        save_file({"transformer.blocks.0.weight": torch.zeros(4, 4)}, str(path))
        return str(path), (), "not supported|could not load"
    if name == "pickle checkpoint":
        path = tmp / "old.ckpt"
        torch.save({"state_dict": {}}, str(path))
        return str(path), (), "arbitrary code"
    if name == "pickle LoRA":
        path = tmp / "style.pt"
        torch.save({}, str(path))
        return tiny_sd, ((str(path), 1.0),), "arbitrary code"
    if name == "corrupt LoRA":
        path = tmp / "cut.safetensors"
        save_file({"unet.x.lora.down.weight": torch.zeros(4, 32)}, str(path))
        path.write_bytes(path.read_bytes()[:30])
        return tiny_sd, ((str(path), 1.0),), "cut.safetensors"
    if name == "LoRA for another base model":
        # An SDXL-sized LoRA: its layers exist by name in an SD model, but none has its shape.
        path = tmp / "xl-style.safetensors"
        save_file(
            {
                "unet.down_blocks.1.attentions.0.proj_in.lora.down.weight": torch.ones(4, 640),
                "unet.down_blocks.1.attentions.0.proj_in.lora.up.weight": torch.ones(640, 4),
                "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight": torch.ones(
                    4, 1280
                ),
                "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight": torch.ones(
                    1280, 4
                ),
            },
            str(path),
        )
        return tiny_sd, ((str(path), 1.0),), "xl-style.safetensors.*(another|does not fit|did not match)"
    raise KeyError(name)


CASES = [
    "missing folder",
    "folder without model_index.json",
    "folder missing the unet",
    "folder missing the vae weights",
    "broken model_index.json",
    "corrupt safetensors in a folder",
    "corrupt single-file checkpoint",
    "hostile safetensors header",
    "unsupported pipeline class",
    "unsupported single-file architecture",
    "pickle checkpoint",
    "pickle LoRA",
    "corrupt LoRA",
    "LoRA for another base model",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_model_fails_clearly_and_the_engine_goes_on(
    engine, tiny_sd: str, tmp_path: Path, name: str
) -> None:
    model, loras, message = case_model(name, tiny_sd, tmp_path)
    request = GenerationRequest(
        prompt="a cat", model=model, loras=loras, width=64, height=64, steps=2, seed=1
    )
    events = run(engine, request)
    assert isinstance(events[-1], Failed), events[-1]
    assert sum(isinstance(e, (Failed, Finished)) for e in events) == 1
    assert re.search(message, events[-1].message), events[-1].message
    assert "Traceback" not in events[-1].message and len(events[-1].message) < 400
    good = run(engine, GenerationRequest(prompt="a cat", model=tiny_sd, width=64, height=64, steps=2, seed=1))
    assert isinstance(good[-1], Finished) and good[-1].candidates[0].shape == (64, 64, 3)


def test_pickle_is_loaded_when_allowed(tiny_sd: str, tmp_path: Path) -> None:
    from canvas_app.engine.local import LocalDiffusersEngine

    path = tmp_path / "style.pt"
    torch.save({"unet.down_blocks.0.resnets.0.conv1.lora.down.weight": torch.zeros(2, 16 * 9)}, str(path))
    allowed = LocalDiffusersEngine(device="cpu", allow_pickle=True)
    req = GenerationRequest(
        prompt="a cat", model=tiny_sd, loras=((str(path), 1.0),), width=64, height=64, steps=1
    )
    events = run(allowed, req)
    # Read (not refused): it holds no usable pair, which is its own clear error.
    assert isinstance(events[-1], Failed) and "arbitrary code" not in events[-1].message
    assert "style.pt" in events[-1].message

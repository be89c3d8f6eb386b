"""The built-in UNets' int8 format: a round trip keeps every weight within its channel's step, and a
corrupt or hostile file is refused with a clear error before its tensors are read."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from canvas_app.engine import builtin_weights as bw
from canvas_app.engine.devices import DeviceChoice
from canvas_app.engine.errors import ModelError
from canvas_app.engine.models import ModelSource, load_pipeline
from tests.engine.tiny_models import build_pipeline


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_pipeline(tmp_path_factory.mktemp("int8") / "fp32", vae_factor=4)


@pytest.fixture
def saved(tiny, tmp_path):
    """(the fp32 UNet, the folder its int8 copy was written to)."""
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny / "unet", torch_dtype=torch.float32)
    with torch.no_grad():  # one all-zero output channel: its scale must not divide by zero
        unet.conv_in.weight[0] = 0
    bw.save_unet(unet, tmp_path / "unet")
    return unet, tmp_path / "unet"


def test_round_trip_keeps_weights_within_a_step_and_biases_and_norms_exact(saved):
    import torch

    unet, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", bw.INT8_UNET_FILE])
    assert "_name_or_path" not in json.loads((folder / "config.json").read_text())
    loaded = bw.load_unet(folder, torch.float32)
    assert {k: v for k, v in loaded.config.items() if k != "_name_or_path"} == {
        k: v for k, v in unet.config.items() if k != "_name_or_path"
    }
    stored = bw.read_header(folder / bw.INT8_UNET_FILE)
    from safetensors import safe_open

    with safe_open(str(folder / bw.INT8_UNET_FILE), framework="pt") as f:
        scales = {
            k[: -len(bw.SCALE_SUFFIX)]: f.get_tensor(k).float() for k in stored if k.endswith(bw.SCALE_SUFFIX)
        }
    original, back = unet.state_dict(), loaded.state_dict()
    assert set(back) == set(original)
    for name, w in original.items():
        if w.ndim < 2:
            assert torch.equal(back[name], w.half().float()), name  # exact fp16
            continue
        step = scales[name].view((-1,) + (1,) * (w.ndim - 1))
        assert ((back[name] - w).abs() <= step / 2 + 1e-7).all(), name
        assert len(torch.unique(torch.round(back[name] / step))) <= 255, name  # 8 bits per weight
    assert torch.equal(back["conv_in.weight"][0], torch.zeros_like(back["conv_in.weight"][0]))
    # In the dtype the engine runs: bf16 (a CPU with native bf16), fp16 (CUDA, MPS).
    for dtype in (torch.bfloat16, torch.float16):
        half = bw.load_unet(folder, dtype)
        assert {p.dtype for p in half.parameters()} == {dtype}
        assert torch.equal(half.state_dict()["conv_in.weight"], back["conv_in.weight"].to(dtype))


def test_diffusers_does_not_mistake_the_int8_file_for_its_own(saved):
    from diffusers import UNet2DConditionModel

    _, folder = saved
    with pytest.raises(OSError):
        UNet2DConditionModel.from_pretrained(folder)


def test_the_engine_loads_a_folder_with_an_int8_unet(tiny, tmp_path):
    import shutil

    import torch

    from tools.builtin_model.shipped_weights import convert

    shutil.copytree(tiny, tmp_path / "model")
    assert convert(tmp_path) == [tmp_path / "model" / "unet" / bw.INT8_UNET_FILE]
    assert not (tmp_path / "model" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    pipe = load_pipeline(
        ModelSource("folder", str(tmp_path / "model"), "model"), DeviceChoice("cpu", "float32")
    )
    expected = bw.load_unet(tmp_path / "model" / "unet", torch.float32).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in pipe.unet.state_dict().items())
    # A damaged file is the model's error, with the file named.
    (tmp_path / "model" / "unet" / bw.INT8_UNET_FILE).write_bytes(b"\x02" + b"\x00" * 7 + b"{}")
    with pytest.raises(ModelError, match="not an int8 UNet file"):
        load_pipeline(ModelSource("folder", str(tmp_path / "model"), "model"), DeviceChoice("cpu", "float32"))


def _rewrite(path: Path, change) -> None:
    """Rewrite the header of the safetensors file at ``path`` through ``change(header)``, data kept."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])


def _drop_scale(h):
    del h["conv_in.weight" + bw.SCALE_SUFFIX]


def _wrong_shape(h):
    h["conv_in.weight"]["shape"] = [h["conv_in.weight"]["shape"][0] * 2, -1]


def _absurd_shape(h):
    h["conv_in.weight"]["shape"] = [2**39, 2**39, 1, 1]


def _past_the_end(h):
    h["conv_in.weight"]["data_offsets"] = [0, 2**40 - 1]


def _fp32(h):
    h["conv_in.bias"]["dtype"] = "F32"


def _no_tag(h):
    del h["__metadata__"]


def _extra(h):
    h["stowaway"] = {"dtype": "F16", "shape": [0], "data_offsets": [0, 0]}


def _not_an_entry(h):
    h["conv_in.bias"] = 5


def _overlap(h):
    h["conv_in.bias"]["data_offsets"] = list(h["conv_in.weight" + bw.SCALE_SUFFIX]["data_offsets"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop_scale, "lacks 1 of the model's tensors, e.g. conv_in.weight:scale"),
        (_wrong_shape, "malformed shape"),
        (_absurd_shape, "does not fit its shape"),
        (_past_the_end, "does not fit its shape"),
        (_fp32, "stored as 'F32'"),
        (_no_tag, "not an int8 UNet file"),
        (_extra, "tensors the model does not have, e.g. stowaway"),
        (_overlap, "overlap|does not fit"),
        (_not_an_entry, "conv_in.bias is not a tensor entry"),
    ],
)
def test_a_hostile_header_is_refused_with_what_is_wrong(saved, change, message):
    import torch

    _, folder = saved
    _rewrite(folder / bw.INT8_UNET_FILE, change)
    with pytest.raises(ValueError, match=message):
        bw.load_unet(folder, torch.float32)


def test_a_file_not_matching_its_config_or_too_big_to_be_one_is_refused(saved, monkeypatch):
    import torch

    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["block_out_channels"] = [c * 2 for c in config["block_out_channels"]]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="the model needs"):
        bw.load_unet(folder, torch.float32)
    path = folder / bw.INT8_UNET_FILE
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2**60) + raw[8:])  # a header longer than the file
    with pytest.raises(ValueError, match="header, which it cannot hold"):
        bw.read_header(path)
    monkeypatch.setattr(bw, "MAX_FILE_BYTES", len(raw) - 1)
    with pytest.raises(ValueError, match="more than a built-in UNet may be"):
        bw.read_header(path)
    (folder / "config.json").unlink()
    path.write_bytes(raw)
    monkeypatch.setattr(bw, "MAX_FILE_BYTES", 2**30)
    with pytest.raises(ValueError, match="config.json is missing"):
        bw.load_unet(folder, torch.float32)

"""The photo fine-tune of the inpainting UNet on tiny random models: its batches, its masks, resuming,
and the fp16 UNet it writes."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from canvas_app.engine.builtin_weights import from_pretrained
from tests.engine.tiny_models import build_builtin_models
from tools.builtin_model import photo_data, photo_inpaint, train


def _photos(folder, count):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        # Smooth gradients with grain, a little larger than the smallest pyramid level (256 px).
        base = np.linspace(0, 255, 300)[None, :, None] * rng.uniform(0.2, 1, 3)
        img = np.clip(base + rng.normal(0, 12, (180, 300, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("photo-inpaint")
    models = build_builtin_models(root / "models")  # int8 UNets, as photo_inpaint reads them
    return root, models, _photos(root / "photos", 2)


def _train(root, models, photos, work, steps):
    args = ["train", "--photos", str(photos), "--work", str(root / work), "--scenes", "12"]
    args += ["--base", str(models / "builtin"), "--inpaint", str(models / "builtin-inpaint")]
    args += ["--steps", str(steps), "--batch", "4", "--warmup", "2", "--ckpt-every", "1", "--keep-every", "0"]
    assert photo_inpaint.main(args) == 0
    return root / work / "photo_inpaint.pt"


def test_a_batch_holds_captioned_scenes_then_photos_with_the_empty_prompt(setup):
    import torch

    root, models, photos = setup
    frozen = photo_inpaint.load_frozen(models / "builtin")
    scenes = photo_inpaint.scene_workdir(root / "batch-work", 12, frozen)
    crops = photo_data.PhotoCrops(photo_data.image_files([photos]))
    batches = photo_inpaint.MixedBatches(scenes, crops, frozen, batch=6, scene_share=0.5)
    b = batches(7)
    assert b.latents.shape == (6, 4, 32, 32) and b.conditioning.shape == (6, 5, 32, 32)
    assert b.is_photo.tolist() == [False] * 3 + [True] * 3
    assert b.captions[3:] == ["", "", ""] and any(b.captions[:3])
    mask = b.conditioning[:, 0]
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and 0 < mask.mean() < 1
    # The data of step n is a function of n alone.
    again, other = batches(7), batches(8)
    assert torch.equal(again.latents, b.latents) and again.captions == b.captions
    assert torch.equal(again.conditioning, b.conditioning)
    assert not torch.equal(other.latents, b.latents)


def test_the_mask_reaches_the_unet_as_the_engine_gives_it(setup):
    import torch

    _, models, _ = setup
    frozen = photo_inpaint.load_frozen(models / "builtin")
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 5, 6] = 1  # one pixel of the latent cell (1, 1)
    cond = train.inpaint_conditioning(frozen.vae, image, mask, frozen.scale, pool="max")
    assert cond[0, 0].nonzero().tolist() == [[1, 1]]  # any masked pixel masks its cell
    assert train.inpaint_conditioning(frozen.vae, image, mask, frozen.scale)[0, 0].sum() == 0
    blanked = image.clone()
    blanked[0, :, 5, 6] = 0
    with torch.no_grad():
        expected = frozen.vae.encode(blanked).latent_dist.mean * frozen.scale
    assert torch.allclose(cond[:, 1:], expected)


def test_a_resumed_run_continues_exactly_as_an_uninterrupted_one(setup):
    import torch

    root, models, photos = setup
    _train(root, models, photos, "resumed", 2)
    resumed = torch.load(_train(root, models, photos, "resumed", 3), weights_only=False)
    straight = torch.load(_train(root, models, photos, "straight", 3), weights_only=False)
    assert resumed["step"] == straight["step"] == 3
    shipped = photo_inpaint.load_unet(models / "builtin-inpaint").state_dict()
    assert any(not torch.equal(v, shipped[k]) for k, v in straight["unet"].items())  # it trained
    assert all(torch.equal(v, straight["unet"][k]) for k, v in resumed["unet"].items())


def test_assembled_and_exported_unets_are_int8_with_the_shipped_config(setup, tmp_path):
    import torch
    from diffusers import StableDiffusionInpaintPipeline

    from canvas_app.engine import builtin_weights

    root, models, photos = setup
    ckpt = _train(root, models, photos, "export", 1)
    trained = torch.load(ckpt, weights_only=False)["unet"]
    config = (models / "builtin-inpaint" / "unet" / "config.json").read_text()
    folder = photo_inpaint.assemble(ckpt, models, tmp_path / "measure")
    pipe = from_pretrained(StableDiffusionInpaintPipeline, folder)
    assert pipe.unet.config.in_channels == 9 and (tmp_path / "measure" / "builtin" / "vae").is_dir()
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    assert photo_inpaint.main(["export", "--checkpoint", str(ckpt), "--models", str(copy)]) == 0
    for unet_dir in (folder / "unet", copy / "builtin-inpaint" / "unet"):
        assert (unet_dir / "config.json").read_text() == config
        assert sorted(p.name for p in unet_dir.glob("*.safetensors")) == [builtin_weights.INT8_UNET_FILE]
        weights = builtin_weights.load_unet(unet_dir, torch.float32).state_dict()
        expected = builtin_weights.dequantize(builtin_weights.quantize(trained), torch.float32)
        assert all(torch.equal(weights[k], v) for k, v in expected.items())
    assert json.loads(config)["in_channels"] == 9


def test_held_out_photographs_are_refused_for_training(tmp_path):
    held = next(s for s in photo_data.read_sources() if s.split == "heldout")
    Image.new("RGB", (300, 200)).save(tmp_path / f"{held.name}.png")
    with pytest.raises(SystemExit, match=held.name):
        photo_inpaint.training_photos([tmp_path])

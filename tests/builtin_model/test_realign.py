"""Re-aligning the UNets to a new VAE on tiny random models: the alignment measure, resuming exactly,
and the assembled models folder the engine loads and generates with."""

import json

import pytest

from tests.engine.tiny_models import build_builtin_models, build_pipeline
from tools.builtin_model import realign
from tools.builtin_model.crops import load_data
from tools.builtin_model.export import scene_preview_map
from tools.builtin_model.workdir import Workdir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("realign")
    models = build_builtin_models(root / "models", shared=True)
    # The "new" VAE: another random VAE of the same shape (a different latent space).
    build_pipeline(root / "other", vae_factor=4, zero_snr=True, seed=1)
    return root, models, root / "other" / "vae"


def _train(root, models, vae, which, work, steps):
    args = ["train", "--vae", str(vae), "--which", which, "--models", str(models), "--work", str(root / work)]
    args += ["--steps", str(steps), "--scenes", "12", "--batch", "2", "--warmup", "1", "--ckpt-minutes", "0"]
    args += ["--eval-every", "2", "--eval-scenes", "1"]
    assert realign.main(args) == 0
    return root / work / f"{which}.pt"


def _evals(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_shipped_vae_is_already_aligned_and_a_new_one_is_not(setup):
    root, models, vae = setup
    _train(root, models, models / "builtin", "base", "same", 0)
    (same,) = _evals(root / "same" / "base_evals.jsonl")
    assert same["loss"] == pytest.approx(same["reference"], rel=1e-5)  # the floor: nothing to re-align
    _train(root, models, vae, "base", "other", 0)
    (other,) = _evals(root / "other" / "base_evals.jsonl")
    assert other["reference"] == pytest.approx(same["reference"], rel=1e-5)
    assert abs(other["loss"] - other["reference"]) > 1e-3 * abs(same["loss"] - same["reference"]) + 1e-6
    assert other["encoder"] != same["encoder"]
    # Latents are cached per encoder, the scenes rendered once.
    assert len(list((root / "other").glob("latents-*/latents.npy"))) == 1


def test_a_resumed_run_continues_exactly_as_an_uninterrupted_one(setup):
    import torch

    root, models, vae = setup
    _train(root, models, vae, "inpaint", "resumed", 2)
    resumed = torch.load(_train(root, models, vae, "inpaint", "resumed", 3), weights_only=False)
    straight = torch.load(_train(root, models, vae, "inpaint", "straight", 3), weights_only=False)
    assert resumed["step"] == straight["step"] == 3
    shipped = realign.load_shipped_unet(models, "inpaint").state_dict()
    assert any(not torch.equal(v, shipped[k]) for k, v in straight["unet"].items())  # it trained
    assert all(torch.equal(v, straight["unet"][k]) for k, v in resumed["unet"].items())
    assert [e["step"] for e in _evals(root / "straight" / "inpaint_evals.jsonl")] == [0, 2, 3]
    # A checkpoint aligned to one encoder is not continued on another.
    with pytest.raises(SystemExit, match="another encoder"):
        _train(root, models, models / "builtin", "inpaint", "straight", 4)


def test_assembled_models_load_in_the_engine_and_generate(setup, tmp_path):
    import torch

    from canvas_app.engine import builtin_weights as bw
    from canvas_app.engine.models import SHARED_COMPONENTS, DeviceChoice, ModelSource, load_pipeline

    root, models, vae = setup
    base = _train(root, models, vae, "base", "assemble", 1)
    inpaint = _train(root, models, vae, "inpaint", "assemble", 1)
    out = tmp_path / "realigned"
    args = ["assemble", "--vae", str(vae), "--models", str(models), "--work", str(root / "assemble")]
    args += ["--base-ckpt", str(base), "--inpaint-ckpt", str(inpaint), "--out", str(out)]
    assert realign.main(args) == 0
    assert not (out / "builtin-inpaint" / "vae").exists()  # shared with the base, as shipped
    for name in ("builtin", "builtin-inpaint"):
        assert [p.name for p in (out / name / "unet").glob("*.safetensors")] == [bw.INT8_UNET_FILE]
    new_vae = realign.load_new_vae(vae)
    pixels, _ = load_data(Workdir(root / "assemble" / "scenes"))
    fitted = json.loads(json.dumps(scene_preview_map(new_vae, pixels, new_vae.config.scaling_factor)))
    for name in ("builtin", "builtin-inpaint"):  # refitted on the new latents
        assert json.loads((out / name / "latent_rgb.json").read_text()) == fitted
    device = DeviceChoice("cpu", "float32")
    pipe = load_pipeline(ModelSource("folder", str(out / "builtin"), "builtin"), device)
    assert all(
        torch.equal(v.half().float(), pipe.vae.state_dict()[k]) for k, v in new_vae.state_dict().items()
    )
    trained = torch.load(base, weights_only=False)["unet"]
    shipped = realign.load_shipped_unet(models, "base").state_dict()
    changed = [k for k, v in trained.items() if not torch.equal(v, shipped[k])]
    assert any(not torch.equal(pipe.unet.state_dict()[k], shipped[k]) for k in changed)
    image = pipe("a red circle", num_inference_steps=2, height=64, width=64, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and float(image.std()) > 0
    shared = {name: getattr(pipe, name) for name in SHARED_COMPONENTS}
    fill = load_pipeline(
        ModelSource("folder", str(out / "builtin-inpaint"), "inpaint"), device, components=shared
    )
    expected = bw.dequantize(bw.quantize(torch.load(inpaint, weights_only=False)["unet"]), torch.float32)
    assert all(torch.equal(v, expected[k]) for k, v in fill.unet.state_dict().items())  # the re-aligned one
    # ... and so does evaluate.py, which scores the card's adherence on a --models folder.
    from tools.builtin_model.evaluate import Generator

    scorer = Generator(out / "builtin", out / "builtin-inpaint", steps=2)
    assert scorer.inpaint is not None and torch.equal(
        scorer.inpaint.vae.encoder.conv_in.weight, pipe.vae.encoder.conv_in.weight
    )


def test_a_photo_vae_checkpoint_names_the_vae_to_align_to(tmp_path):
    import torch

    from tools.builtin_model.vae_measure import SHIPPED_VAE, load_vae

    shipped = load_vae(SHIPPED_VAE)
    moved = {k: v + 0.01 if k.startswith("encoder.") else v for k, v in shipped.state_dict().items()}
    torch.save({"model": moved, "step": 1}, tmp_path / "full.pt")
    vae = realign.load_new_vae(tmp_path / "full.pt")
    assert all(torch.equal(v, moved[k]) for k, v in vae.state_dict().items())
    assert realign.encoder_key(vae) != realign.encoder_key(shipped)
    assert realign.encoder_key(realign.load_new_vae(SHIPPED_VAE.parent)) == realign.encoder_key(shipped)
    with pytest.raises(SystemExit, match="neither a VAE folder"):
        realign.load_new_vae(tmp_path / "missing")

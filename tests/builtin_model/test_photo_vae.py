"""The photo-VAE fine-tuning runs end to end on a tiny random VAE: train, resume, evaluate, export."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.builtin_model import photo_data, photo_vae
from tools.builtin_model import vae_measure as vm


def _tiny_vae(folder):
    from diffusers import AutoencoderKL

    AutoencoderKL(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        mid_block_add_attention=False,
        scaling_factor=0.5,
    ).save_pretrained(folder)


def _photos(folder, count, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        # Smooth gradients with noise: photo-like enough for the loaders, tiny enough for the test.
        base = np.linspace(0, 255, 40)[None, :, None] * rng.uniform(0.2, 1, 3)
        img = np.clip(base + rng.normal(0, 12, (36, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"photo{i}.png")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("photovae")
    models = root / "models"
    _tiny_vae(models / "builtin" / "vae")
    _tiny_vae(models / "builtin-inpaint" / "vae")
    _photos(root / "train", 2, 0)
    _photos(root / "heldout", 2, 1)
    common = [
        "--heldout",
        str(root / "heldout"),
        "--vae",
        str(models / "builtin" / "vae"),
        "--eval-scenes",
        "2",
    ]
    train = ["train", *common, "--photos", str(root / "train"), "--work", str(root / "work")]
    train += [
        "--batch",
        "4",
        "--crop",
        "16",
        "--scenes",
        "2",
        "--eval-every",
        "1",
        "--colour-fraction",
        "0.25",
    ]
    return root, models, common, train


def _state(path):
    import torch

    return torch.load(path, weights_only=False)


def test_decoder_stage_trains_only_the_decoder_and_resumes_from_its_checkpoint(setup):
    root, models, _, train = setup
    assert photo_vae.main([*train, "--steps", "2"]) == 0
    first = _state(root / "work" / "decoder.pt")
    assert first["step"] == 2
    evals = [json.loads(line) for line in (root / "work" / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [1, 2]
    assert set(evals[0]["photos"]) == {"photo0", "photo1"}

    shipped = vm.load_vae(models / "builtin" / "vae").state_dict()
    changed = {k for k, v in first["model"].items() if not np.array_equal(v.numpy(), shipped[k].numpy())}
    assert changed and all(k.startswith(("decoder.", "post_quant_conv.")) for k in changed)

    assert photo_vae.main([*train, "--steps", "3", "--bf16", "--lr", "1e-5"]) == 0
    resumed = _state(root / "work" / "decoder.pt")
    assert resumed["step"] == 3 and resumed["before"] == first["before"]
    assert [g["base_lr"] for g in resumed["opt"]["param_groups"]] == [1e-5]  # a resumed run may lower it
    assert [
        json.loads(line)["step"] for line in (root / "work" / "evals.jsonl").read_text().splitlines()
    ] == [
        1,
        2,
        3,
    ]


def test_full_stage_moves_the_encoder_and_reports_the_latent_drift(setup):
    root, _, _, train = setup
    assert (
        photo_vae.main([*train, "--stage", "full", "--steps", "1", "--lr", "1e-2", "--lab-weight", "5"]) == 0
    )
    last = json.loads((root / "work" / "evals.jsonl").read_text().splitlines()[-1])
    assert last["stage"] == "full" and last["scene_latent_drift"] > 0


def test_ema_starts_from_a_checkpoint_without_one_and_is_what_gets_measured_and_loaded(setup, monkeypatch):
    root, models, _, train = setup
    monkeypatch.setattr(vm, "SCENE_GOAL_DB", -100.0)  # let a random VAE become the best checkpoint
    monkeypatch.setattr(vm, "SCENE_SLACK_DB", 100.0)
    train = [a if a != str(root / "work") else str(root / "ema") for a in train]
    assert photo_vae.main([*train, "--steps", "2", "--lr", "1e-2"]) == 0
    raw = _state(root / "ema" / "decoder.pt")
    assert "ema" not in raw

    decay = 0.75
    assert photo_vae.main([*train, "--steps", "3", "--lr", "1e-2", "--ema", str(decay)]) == 0
    third = _state(root / "ema" / "decoder.pt")
    # Resumed without an EMA, it starts from the step-2 weights: one update later it is their blend.
    moved = [k for k in third["model"] if not np.array_equal(third["model"][k], raw["model"][k])]
    assert moved
    for key in moved:
        expected = decay * raw["model"][key] + (1 - decay) * third["model"][key]
        np.testing.assert_allclose(third["ema"][key].numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)

    # The measurement, the best checkpoint and every loader use the EMA, not the raw weights.
    row = json.loads((root / "ema" / "evals.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 3 and row["weights"] == f"ema {decay}"
    held = photo_vae.heldout_photos(root / "heldout")
    loaded = photo_vae.vae_from_checkpoint(root / "ema" / "decoder.pt", models / "builtin" / "vae")
    m = vm.measure(loaded, held, photo_data.eval_scenes(2))
    assert m["photo_psnr_db"] == pytest.approx(row["photo_psnr_db"], abs=1e-6)
    best = _state(root / "ema" / "decoder_best.pt")
    assert best["step"] == 3
    for key, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), third["ema"][key].numpy())
        np.testing.assert_array_equal(best["model"][key].numpy(), third["ema"][key].numpy())

    # Resumed again with the EMA, it continues the saved average rather than restarting it.
    assert photo_vae.main([*train, "--steps", "4", "--lr", "1e-2", "--ema", str(decay)]) == 0
    fourth = _state(root / "ema" / "decoder.pt")
    for key in moved:
        expected = decay * third["ema"][key] + (1 - decay) * fourth["model"][key]
        np.testing.assert_allclose(fourth["ema"][key].numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)


def test_a_decoder_settle_from_a_full_checkpoint_keeps_its_encoder_or_the_shipped_one(setup):
    root, models, _, train = setup
    train = [a if a != str(root / "work") else str(root / "settle") for a in train]
    assert photo_vae.main([*train, "--stage", "full", "--steps", "1", "--lr", "1e-2"]) == 0
    full = _state(root / "settle" / "full.pt")["model"]
    shipped = vm.load_vae(models / "builtin" / "vae").state_dict()
    settle = [*train, "--stage", "decoder", "--init", str(root / "settle" / "full.pt"), "--steps", "1"]

    assert photo_vae.main([*settle, "--work", str(root / "settle_own")]) == 0
    own = _state(root / "settle_own" / "decoder.pt")["model"]
    row = json.loads((root / "settle_own" / "evals.jsonl").read_text().splitlines()[-1])
    # The full stage's moved encoder stays frozen, so the drift from the shipped latents is reported.
    assert row["scene_latent_drift"] > 0 and "scene_psnr_db_shipped_latents" in row
    for key in own:
        if key.startswith(photo_vae.ENCODER_PREFIXES):
            np.testing.assert_array_equal(own[key].numpy(), full[key].numpy())

    with pytest.raises(ValueError, match="--stage decoder"):
        photo_vae.main([*train, "--stage", "full", "--steps", "1", "--shipped-encoder"])
    assert photo_vae.main([*settle, "--work", str(root / "settle_shipped"), "--shipped-encoder"]) == 0
    kept = _state(root / "settle_shipped" / "decoder.pt")["model"]
    row = json.loads((root / "settle_shipped" / "evals.jsonl").read_text().splitlines()[-1])
    assert "scene_latent_drift" not in row  # the latents are the shipped ones
    trained_from_init = False
    for key, value in kept.items():
        if key.startswith(photo_vae.ENCODER_PREFIXES):
            np.testing.assert_array_equal(value.numpy(), shipped[key].numpy())
        elif not np.array_equal(full[key].numpy(), shipped[key].numpy()):
            # The decoder starts from the full checkpoint's: one small step keeps it near that one.
            trained_from_init = True
            assert (
                np.abs(value.numpy() - full[key].numpy()).max()
                < np.abs(value.numpy() - shipped[key].numpy()).max()
            )
    assert trained_from_init


def test_export_refuses_a_vae_that_loses_the_scenes_and_writes_one_that_keeps_them(
    setup, monkeypatch, capsys
):
    root, models, common, _ = setup
    ckpt = str(root / "work" / "decoder.pt")
    weights = models / "builtin-inpaint" / "vae" / "diffusion_pytorch_model.safetensors"
    before = weights.read_bytes()
    # A random VAE is far below the 30 dB the card promises on scenes: nothing may be written.
    assert photo_vae.main(["export", *common, "--checkpoint", ckpt, "--out", str(models)]) == 1
    assert "not exported" in capsys.readouterr().out and weights.read_bytes() == before

    monkeypatch.setattr(vm, "SCENE_GOAL_DB", -100.0)
    monkeypatch.setattr(vm, "SCENE_SLACK_DB", 100.0)
    full = str(root / "work" / "full.pt")
    assert photo_vae.main(["export", *common, "--checkpoint", full, "--out", str(models)]) == 1
    assert "encoder changed" in capsys.readouterr().out

    assert photo_vae.main(["export", *common, "--checkpoint", ckpt, "--out", str(models)]) == 0
    assert weights.read_bytes() != before
    exported = vm.load_vae(models / "builtin-inpaint" / "vae").state_dict()
    trained = _state(ckpt)["model"]
    for key, value in trained.items():
        np.testing.assert_allclose(exported[key].numpy(), value.numpy(), rtol=1e-3, atol=1e-4)
    assert json.loads((models / "builtin" / "vae" / "config.json").read_text())["scaling_factor"] == 0.5


def test_evaluate_prints_a_row_per_vae_and_a_row_per_photo(setup, capsys, tmp_path):
    root, _, common, _ = setup
    picture = tmp_path / "cmp.png"
    photo_vae.main(
        ["evaluate", *common, "--checkpoint", str(root / "work" / "decoder.pt"), "--picture", str(picture)]
    )
    out = capsys.readouterr().out
    assert "| shipped VAE |" in out and "| decoder.pt |" in out and "| photo1 |" in out
    assert Image.open(picture).size == (2 * 192, 3 * 192)


def test_collect_copies_listed_photos_into_their_split(tmp_path):
    sources = photo_data.read_sources()
    assert len({s.name for s in sources}) == len(sources)
    assert sum(s.split == "heldout" for s in sources) == 8
    assert all(s.licence and s.author and s.package for s in sources)
    fake_root = tmp_path / "root"
    for s in sources[:2]:
        (fake_root / s.path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(fake_root / s.path.lstrip("/"), format="PNG")
    written = photo_data.collect(tmp_path / "out", [fake_root])
    assert [p.relative_to(tmp_path / "out").parts[0] for p in written] == [s.split for s in sources[:2]]


@pytest.mark.slow
def test_samples_decode_the_same_latents_with_both_vaes(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
    from tiny_models import build_pipeline

    pipe = build_pipeline(tmp_path / "pipe", vae_factor=2)
    _photos(tmp_path / "train", 1, 0)
    _photos(tmp_path / "heldout", 1, 1)
    common = ["--heldout", str(tmp_path / "heldout"), "--vae", str(pipe / "vae"), "--eval-scenes", "1"]
    train = ["train", *common, "--photos", str(tmp_path / "train"), "--work", str(tmp_path / "work")]
    assert photo_vae.main([*train, "--batch", "2", "--crop", "16", "--scenes", "1", "--steps", "1"]) == 0
    capsys.readouterr()
    picture = tmp_path / "samples.png"
    args = ["samples", *common, "--checkpoint", str(tmp_path / "work" / "decoder.pt"), "--model", str(pipe)]
    assert photo_vae.main([*args, "--picture", str(picture), "--steps", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"shipped", "fine-tuned"}
    assert np.isfinite(report["fine-tuned"]["samples_psnr_db_vs_shipped"])
    # Two rows (one per VAE) of six prompts, the photo and its img2img.
    assert Image.open(picture).size == (8 * 192, 2 * 192)


def test_a_mosaic_lays_unrelated_tiles_out_row_by_row():
    tiles = np.stack([np.full((2, 2, 3), v, np.float32) for v in range(8)])
    pictures = photo_data.mosaic(tiles, 2)
    assert pictures.shape == (2, 4, 4, 3)
    assert pictures[0, :2, :2, 0].tolist() == [[0, 0], [0, 0]]
    assert pictures[0, :2, 2:, 0].tolist() == [[1, 1], [1, 1]]
    assert pictures[0, 2:, :2, 0].tolist() == [[2, 2], [2, 2]]
    assert pictures[1, 2:, 2:, 0].tolist() == [[7, 7], [7, 7]]


class _LatentDist:
    def __init__(self, x):
        self.x = x

    def mode(self):
        return self.x


class _PictureWideShift:
    """A stand-in round trip that pulls every pixel towards the picture's mean colour (what a
    network normalising whole pictures can do), or with ``pull=0`` returns the picture exactly."""

    def __init__(self, pull):
        self.pull = pull

    def encode(self, x):
        from types import SimpleNamespace

        return SimpleNamespace(latent_dist=_LatentDist(x))

    def decode(self, z):
        from types import SimpleNamespace

        return SimpleNamespace(sample=z + self.pull * (z.mean(dim=(2, 3), keepdim=True) - z))


def test_context_shift_is_zero_for_an_exact_round_trip_and_grows_with_the_neighbours_pull():
    exact = vm.context_shift(_PictureWideShift(0.0))
    assert exact == {"flat_delta_e00": 0.0, "flat_beside_delta_e00": 0.0}
    pulled = vm.context_shift(_PictureWideShift(0.3))
    assert pulled["flat_delta_e00"] < 0.01 < 5 < pulled["flat_beside_delta_e00"]


def test_a_widened_vae_computes_the_same_round_trip_and_its_copies_can_part(setup):
    import torch

    from tools.builtin_model import vae_widen

    _, models, _, _ = setup
    narrow = vm.load_vae(models / "builtin" / "vae")
    wide = vae_widen.widen(narrow, 2)
    assert list(wide.config.block_out_channels) == [16, 16]
    assert wide.config.scaling_factor == narrow.config.scaling_factor
    x = torch.rand(2, 3, 24, 32) * 2 - 1
    with torch.no_grad():
        z_narrow, z_wide = narrow.encode(x).latent_dist.mode(), wide.encode(x).latent_dist.mode()
        assert torch.allclose(z_narrow, z_wide, atol=1e-5)
        assert torch.allclose(narrow.decode(z_narrow).sample, wide.decode(z_wide).sample, atol=1e-5)
    # The copies of a channel read their inputs with different weights, so training can part them.
    conv = wide.state_dict()["decoder.up_blocks.0.resnets.0.conv1.weight"]
    assert not torch.equal(conv[:, 0], conv[:, 1])


def test_train_widens_once_on_mosaics_resumes_the_wide_vae_and_evaluate_loads_it(setup, capsys):
    root, models, common, train = setup
    args = [*train, "--stage", "full", "--widen", "2", "--mosaic", "2", "--whole-fraction", "0.5"]
    args += ["--crop", "8", "--work", str(root / "wide")]
    assert photo_vae.main([*args, "--steps", "1"]) == 0
    assert photo_vae.main([*args, "--steps", "2"]) == 0  # resumes: widening again would not load
    ckpt = _state(root / "wide" / "full.pt")
    assert ckpt["step"] == 2 and list(ckpt["config"]["block_out_channels"]) == [16, 16]
    last = json.loads((root / "wide" / "evals.jsonl").read_text().splitlines()[-1])
    assert last["flat_delta_e00"] >= 0 and last["flat_beside_delta_e00"] >= 0
    vae = photo_vae.vae_from_checkpoint(root / "wide" / "full.pt", models / "builtin" / "vae")
    assert list(vae.config.block_out_channels) == [16, 16]
    assert photo_vae.encoder_changed(vae, vm.load_vae(models / "builtin" / "vae"))
    capsys.readouterr()
    assert photo_vae.main(["evaluate", *common, "--checkpoint", str(root / "wide" / "full.pt")]) == 0
    assert "full.pt" in capsys.readouterr().out


class _GreyPhotos:
    def sample(self, rng, n, crop):
        return np.full((n, crop, crop, 3), 0.5, np.float32)


def test_photo_samples_mix_mosaics_and_whole_pictures_with_the_colour_share_of_the_unmixed_batch():
    from argparse import Namespace

    def samples(**kw):
        args = Namespace(
            batch=8, scene_fraction=0.25, colour_fraction=0.25, crop=4, mosaic=1, whole_fraction=0.0
        )
        vars(args).update(kw)
        return photo_vae.photo_samples(np.random.default_rng(0), _GreyPhotos(), args)

    def coloured(pictures):  # tiles that are not the grey photo stand-in
        tiles = pictures.reshape(len(pictures), -1, 4, pictures.shape[2] // 4, 4, 3).transpose(
            0, 1, 3, 2, 4, 5
        )
        return int((np.abs(tiles.reshape(-1, 48) - 0.5).max(axis=1) > 0.05).sum())

    plain = samples()
    assert plain.shape == (6, 4, 4, 3) and coloured(plain) == 2
    mosaics = samples(mosaic=2)
    assert mosaics.shape == (6, 8, 8, 3) and coloured(mosaics) == 8  # 2 of 6 samples' worth of tiles
    mixed = samples(mosaic=2, whole_fraction=0.5)
    assert mixed.shape == (6, 8, 8, 3)
    assert coloured(mixed[:3]) == 4  # the three mosaics keep the share: 4 of 12 tiles

"""The training code runs end to end: a few optimisation steps of every stage, then export + load.

The stages run at the real architecture but with batches of 2 (the recipe's own --*-batch options):
what is tested is that every stage runs, records, exports and resumes, not what it learns."""

import numpy as np
import pytest

from canvas_app.engine.builtin_weights import from_pretrained
from tools.builtin_model import crops, denoising, train
from tools.builtin_model.shipped_weights import SAFETENSORS_DTYPE, stored_dtypes

SMALL_BATCHES = ["--vae-batch", "2", "--unet-batch", "2", "--inpaint-batch", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    out = tmp_path_factory.mktemp("models")
    args = ["--work", str(work), "--out", str(out), "--scenes", "24", "--vae-steps", "2", *SMALL_BATCHES]
    # Step 0 of the UNet predicts epsilon on the plain schedule, step 1 v on the zero-SNR one after
    # the position words are redrawn.
    args += ["--unet-steps", "2", "--zero-snr-from", "1", "--redraw-position-words-at", "1"]
    args += ["--inpaint-steps", "2", "--threads", "2", "all"]
    assert train.main(args) == 0
    return work, out


def test_every_stage_finishes_and_records_its_result(trained):
    work, _ = trained
    for stage in ("data", "vae", "latents", "unet", "inpaint"):
        assert (work / f"{stage}.done").exists(), stage
    assert np.isfinite(train.Workdir(work).info("vae")["psnr_db"])
    assert train.Workdir(work).info("latents")["scaling_factor"] > 0


def test_exported_folders_load_offline_and_generate(trained):
    import torch
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    work, out = trained
    pipe = from_pretrained(StableDiffusionPipeline, out / "builtin")
    assert pipe.vae_scale_factor == 4 and pipe.unet.config.in_channels == 4
    image = pipe("a red house", height=128, width=128, num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (128, 128, 3)
    # The inpainting folder ships only its UNet; it takes the base's shared components.
    shared = {"vae": pipe.vae, "text_encoder": pipe.text_encoder, "tokenizer": pipe.tokenizer}
    assert [name for name in shared if (out / "builtin-inpaint" / name).exists()] == []
    inpaint = from_pretrained(StableDiffusionInpaintPipeline, out / "builtin-inpaint", **shared)
    assert inpaint.unet.config.in_channels == 9
    # The inpainting stage leaves the text encoder as the base stage left it.
    base_encoder = torch.load(work / "unet.pt", weights_only=False)["text_encoder"]
    inpaint_encoder = torch.load(work / "inpaint.pt", weights_only=False)["text_encoder"]
    assert all(torch.equal(base_encoder[k], inpaint_encoder[k]) for k in base_encoder)
    for scheduler in (pipe.scheduler, inpaint.scheduler):
        assert scheduler.config.prediction_type == "v_prediction"
        assert scheduler.config.rescale_betas_zero_snr
    for folder in ("builtin", "builtin-inpaint"):
        weights = list((out / folder).rglob("*.safetensors"))
        assert weights and not list((out / folder).rglob("*.bin"))
        # VAE and text encoder fp16; the UNet int8 with fp16 scales, biases and norms.
        for w in weights:
            assert stored_dtypes(w) == (
                {"I8", SAFETENSORS_DTYPE} if w.parent.name == "unet" else {SAFETENSORS_DTYPE}
            ), w
        assert (out / folder / "latent_rgb.json").exists()


def test_asking_for_more_steps_resumes_a_finished_stage_from_its_checkpoint(trained):
    import torch

    work, out = trained
    before = torch.load(work / "unet.pt", weights_only=False)["step"]
    args = ["--work", str(work), "--out", str(out), "--threads", "2", *SMALL_BATCHES, "--bf16", "unet"]
    train.main(["--unet-steps", "3", *args])
    assert before == 2
    assert torch.load(work / "unet.pt", weights_only=False)["step"] == 3
    assert train.Workdir(work).info("unet")["steps"] == 3
    train.main(["--unet-steps", "2", *args])  # fewer steps than done: nothing to do
    assert torch.load(work / "unet.pt", weights_only=False)["step"] == 3


def test_random_masks_cover_brush_box_and_border_cases():
    rng = np.random.default_rng(0)
    masks = [train.random_mask(rng, 128) for _ in range(40)]
    coverage = [m.mean() for m in masks]
    assert all(m.shape == (128, 128) and set(np.unique(m)) <= {0.0, 1.0} for m in masks)
    assert min(coverage) < 0.2 and max(coverage) > 0.6


def test_complete_captions_name_everything_half_inside_and_drop_nothing(trained):
    from tools.builtin_model.scenes import HALF_INSIDE, caption_for_crop

    work, _ = trained
    samples = crops.LatentCrops(train.Workdir(work), seed=3)
    _, captions, idx, offsets = samples.batch(16, caption_dropout=0.0, complete=True)
    for caption, i, o in zip(captions, idx, offsets):
        crop_x = int(o) * train.arch.VAE_FACTOR
        assert caption == caption_for_crop(samples.scenes[i], crop_x, 128, min_inside=HALF_INSIDE)
    _, short, idx, offsets = samples.batch(64, caption_dropout=0.0)
    full = [caption_for_crop(samples.scenes[i], int(o) * 4, 128) for i, o in zip(idx, offsets)]
    assert any(len(s) < len(f) for s, f in zip(short, full))  # phrase dropout before the switch


def test_zero_snr_schedule_learns_the_image_from_pure_noise():
    import torch

    scheduler = train.arch.make_scheduler()
    last = torch.tensor([scheduler.config.num_train_timesteps - 1])
    assert scheduler.alphas_cumprod[last].item() == 0.0  # the noisiest latent holds no image at all
    latents, noise = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    # v at pure noise is minus the clean latent: the step where the prompt alone sets the layout...
    assert torch.allclose(denoising.denoiser_target(scheduler, latents, noise, last), -latents)
    # ...so its loss must count fully (plain min-SNR would weight it zero), while nearly clean
    # steps are capped as in min-SNR.
    assert denoising.loss_weights(scheduler, last).item() == 1.0
    assert denoising.loss_weights(scheduler, torch.tensor([0])).item() < 0.01
    plain = train.arch.make_scheduler(zero_terminal_snr=False)
    assert plain.alphas_cumprod[last].item() > 0.004
    assert torch.equal(denoising.denoiser_target(plain, latents, noise, last), noise)


def test_redrawn_position_words_are_orthogonal_and_nothing_else_moves(trained):
    import torch

    work, _ = trained
    tokenizer = train.load_tokenizer(train.Workdir(work))
    encoder = train.arch.make_text_encoder(tokenizer)
    before = encoder.get_input_embeddings().weight.detach().clone()
    denoising.redraw_position_words(encoder, tokenizer, seed=5)
    after = encoder.get_input_embeddings().weight.detach()
    rows = [tokenizer.convert_tokens_to_ids(w + "</w>") for w in denoising.POSITION_WORDS]
    assert len(set(rows)) == 3 and tokenizer.unk_token_id not in rows
    new = after[rows]
    assert torch.allclose(new @ new.T, 0.25 * torch.eye(3), atol=1e-5)  # orthogonal, norm 0.5
    others = [i for i in range(len(after)) if i not in rows]
    assert torch.equal(after[others], before[others])

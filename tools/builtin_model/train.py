"""Reproduce the built-in model from scratch on a CPU, resumably.

    python -m tools.builtin_model.train --work checkpoints/builtin all

Stages (each resumes from its last checkpoint in ``--work`` and is skipped once done):
  1. data     render the procedural scenes once into a uint8 array
  2. vae      train the factor-4 AutoencoderKL on random crops (reconstruction from the latent mean)
  3. latents  encode every scene once with the frozen VAE; fix the latent scaling factor
  4. unet     train UNet + text encoder together on 128 px latent crops, captions from the crop,
              caption dropout 10% for classifier-free guidance; complete captions in the last steps;
              from step 8,000 a zero-terminal-SNR schedule with v-prediction
  5. inpaint  train a 9-channel inpainting UNet initialised from the base, random brush and border masks
  6. export   write fp16 diffusers pipeline folders into resources/models/
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from tools.builtin_model import architecture as arch
from tools.builtin_model.crops import LatentCrops, held_out_count, load_data
from tools.builtin_model.denoising import denoiser_target, loss_weights, lr_at, redraw_position_words
from tools.builtin_model.export import export_models
from tools.builtin_model.scenes import (
    SCENE_H,
    SCENE_W,
    render_scene,
    vocabulary,
)
from tools.builtin_model.workdir import Workdir, load_checkpoint, log, save_checkpoint

STAGES = ("data", "vae", "latents", "unet", "inpaint", "export")
SEED = 1234


# 1. Data ---------------------------------------------------------------------------------------
def stage_data(work: Workdir, n_scenes: int) -> None:
    pixels = np.lib.format.open_memmap(
        work.root / "scenes.npy", "w+", np.uint8, (n_scenes, SCENE_H, SCENE_W, 3)
    )
    scenes = []
    for i in range(n_scenes):
        scene, px = render_scene(SEED * 100_000 + i)
        pixels[i] = px
        scenes.append(scene)
    pixels.flush()
    import pickle

    (work.root / "scenes.pkl").write_bytes(pickle.dumps(scenes))
    work.mark_done("data", {"n_scenes": n_scenes})
    log(f"data: rendered {n_scenes} scenes")


def to_tensor(batch: np.ndarray):
    import torch

    return torch.from_numpy(np.array(batch)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# 2. VAE ----------------------------------------------------------------------------------------
def psnr(a, b) -> float:
    mse = float(((a.clamp(-1, 1) - b) ** 2).mean()) / 4.0  # in [0,1] units
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def stage_vae(work: Workdir, steps: int, batch: int = 16, crop: int = 64) -> None:
    import torch

    torch.manual_seed(SEED)
    pixels, _ = load_data(work)
    n_train = len(pixels) - held_out_count(len(pixels))
    vae = arch.make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    start = 0
    ckpt = load_checkpoint(work.root / "vae.pt")
    if ckpt:
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        start = ckpt["step"]
    rng = np.random.default_rng(SEED + start)
    held = to_tensor(np.stack([pixels[i][:, 64:192] for i in range(n_train, min(len(pixels), n_train + 16))]))
    t0 = time.time()
    for step in range(start, steps):
        idx = rng.integers(0, n_train, batch)
        xs = rng.integers(0, SCENE_W - crop, batch)
        ys = rng.integers(0, SCENE_H - crop, batch)
        x = to_tensor(np.stack([pixels[i, y : y + crop, xx : xx + crop] for i, y, xx in zip(idx, ys, xs)]))
        if rng.random() < 0.5:
            x = x.flip(3)
        posterior = vae.encode(x).latent_dist
        rec = vae.decode(posterior.mean).sample
        kl = 0.5 * (posterior.mean**2).mean()
        loss = (rec - x).abs().mean() + (rec - x).pow(2).mean() + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            with torch.no_grad():
                val = psnr(vae.decode(vae.encode(held).latent_dist.mean).sample, held)
            log(
                f"vae step {step + 1}/{steps} loss {loss.item():.4f} held-out PSNR {val:.2f} dB ({time.time() - t0:.0f}s)"
            )
            save_checkpoint(
                work.root / "vae.pt",
                model=vae.state_dict(),
                opt=opt.state_dict(),
                sched=sched.state_dict(),
                step=step + 1,
            )
    vae.eval()
    with torch.no_grad():
        val = psnr(vae.decode(vae.encode(held).latent_dist.mean).sample, held)
    work.mark_done("vae", {"psnr_db": val, "steps": steps})
    log(f"vae done: held-out PSNR {val:.2f} dB")


def load_vae(work: Workdir):
    vae = arch.make_vae()
    vae.load_state_dict(load_checkpoint(work.root / "vae.pt")["model"])
    return vae.eval()


# 3. Latents ------------------------------------------------------------------------------------
def stage_latents(work: Workdir, vae=None, scaling_factor: float | None = None) -> None:
    """Encode every scene with ``vae`` (the stage's own by default) and record the scaling factor:
    ``scaling_factor`` when given (a shipped VAE's), else 1 / std of the latents."""
    import torch

    pixels, _ = load_data(work)
    vae = vae if vae is not None else load_vae(work)
    f = arch.VAE_FACTOR
    out = np.lib.format.open_memmap(
        work.root / "latents.npy", "w+", np.float16, (len(pixels), 4, SCENE_H // f, SCENE_W // f)
    )
    with torch.inference_mode():
        for i in range(0, len(pixels), 64):
            x = to_tensor(pixels[i : i + 64])
            out[i : i + 64] = vae.encode(x).latent_dist.mean.numpy().astype(np.float16)
    out.flush()
    std = float(np.asarray(out[:2000], np.float32).std())
    work.mark_done("latents", {"scaling_factor": scaling_factor or 1.0 / std})
    log(f"latents: encoded {len(pixels)} scenes, latent std {std:.4f}")


# 4. UNet + text encoder ------------------------------------------------------------------------
def load_tokenizer(work: Workdir):
    from tools.builtin_model.tokenizer import build_word_tokenizer

    return build_word_tokenizer(vocabulary(), work.root / "tokenizer", model_max_length=arch.TEXT_MAX_LENGTH)


def encode_text(tokenizer, text_encoder, captions: list[str]):
    ids = tokenizer(
        captions, padding="max_length", max_length=arch.TEXT_MAX_LENGTH, truncation=True, return_tensors="pt"
    ).input_ids
    return text_encoder(ids)[0]


def train_denoiser(
    work: Workdir,
    name: str,
    unet,
    text_encoder,
    steps: int,
    batch: int,
    peak_lr: float,
    make_input,
    bf16: bool = False,
    complete_captions_from: int = 0,
    zero_snr_from: int = 0,
    redraw_position_words_at: int = -1,
    train_text_encoder: bool = True,
) -> None:
    """The shared loop of the base and inpainting stages, with min-SNR-style loss weights.

    ``train_text_encoder=False`` keeps the text encoder as it is (the inpainting stage: the shipped
    inpainting pipeline uses the base's text encoder, one copy on disk and in memory).

    From step ``zero_snr_from`` on, the noise schedule is rescaled to zero terminal SNR and the UNet
    predicts v instead of epsilon (see ``architecture.make_scheduler``). At step
    ``redraw_position_words_at`` the position words get fresh embeddings (``redraw_position_words``).

    From step ``complete_captions_from`` on, captions are complete (see ``LatentCrops.batch``):
    phrase dropout first teaches short prompts; complete captions then teach that an object the
    prompt does not name is not there, which is what makes "a red circle" draw one circle.

    ``bf16`` runs the forward pass under bfloat16 autocast (weights and optimiser stay fp32): about
    25% faster per step on CPUs with AVX512-BF16.
    """
    import torch

    tokenizer = load_tokenizer(work)
    schedulers = {flag: arch.make_scheduler(flag) for flag in (False, True)}
    params = list(unet.parameters()) + (list(text_encoder.parameters()) if train_text_encoder else [])
    text_encoder.requires_grad_(train_text_encoder)
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=1e-2)
    start = 0
    ckpt = load_checkpoint(work.root / f"{name}.pt")
    if ckpt:
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(ckpt["text_encoder"])
        opt.load_state_dict(ckpt["opt"])
        start = ckpt["step"]
    data = LatentCrops(work, SEED + start + (7 if name == "inpaint" else 0))
    gen = torch.Generator().manual_seed(SEED + start)
    unet.train()
    text_encoder.train(train_text_encoder)
    t0, running = time.time(), 0.0
    for step in range(start, steps):
        # A resumed run ramps back up over 100 steps: extending a finished run restarts the cosine
        # schedule at a higher learning rate than the one it stopped at.
        ramp = min(1.0, (step - start + 1) / 100) if start else 1.0
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr) * ramp
        z, captions, idx, offsets = data.batch(
            batch, caption_dropout=0.1, complete=step >= complete_captions_from
        )
        if step == redraw_position_words_at:
            redraw_position_words(text_encoder, tokenizer, SEED + step)
            log(f"{name} step {step}: position words redrawn")
        scheduler = schedulers[step >= zero_snr_from]
        noise = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=gen)
        noisy = scheduler.add_noise(z, noise, t)
        model_in = make_input(noisy, z, idx, offsets, gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = unet(model_in, t, encode_text(tokenizer, text_encoder, captions)).sample
        target = denoiser_target(scheduler, z, noise, t)
        per_item = (pred.float() - target).pow(2).mean(dim=(1, 2, 3))
        loss = (per_item * loss_weights(scheduler, t)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running = 0.98 * running + 0.02 * loss.item() if step > start else loss.item()
        if (step + 1) % 50 == 0 or step + 1 == steps:
            log(f"{name} step {step + 1}/{steps} loss {running:.4f} ({time.time() - t0:.0f}s)")
            save_checkpoint(
                work.root / f"{name}.pt",
                unet=unet.state_dict(),
                text_encoder=text_encoder.state_dict(),
                opt=opt.state_dict(),
                step=step + 1,
            )
    work.mark_done(name, {"steps": steps, "final_loss": running})


def stage_unet(
    work: Workdir,
    steps: int,
    complete_captions_from: int,
    zero_snr_from: int,
    redraw_position_words_at: int,
    batch: int = 32,
    bf16: bool = False,
) -> None:
    import torch

    torch.manual_seed(SEED)
    tokenizer = load_tokenizer(work)
    unet, text_encoder = arch.make_unet(4), arch.make_text_encoder(tokenizer)
    train_denoiser(
        work,
        "unet",
        unet,
        text_encoder,
        steps,
        batch,
        1e-3,
        lambda noisy, *_: noisy,
        bf16,
        complete_captions_from,
        zero_snr_from,
        redraw_position_words_at,
    )


# 5. Inpainting UNet ----------------------------------------------------------------------------
def random_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """1 = regenerate. Brush blobs, boxes, or outpaint-style borders (the unknown side of a frame)."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    kind = rng.integers(0, 4)
    if kind == 0:  # outpaint: one or two sides unknown
        for _ in range(rng.integers(1, 3)):
            side, depth = rng.integers(0, 4), int(rng.integers(size // 6, size * 2 // 3))
            box = [
                (0, 0, depth, size),
                (size - depth, 0, size, size),
                (0, 0, size, depth),
                (0, size - depth, size, size),
            ][side]
            draw.rectangle(box, fill=255)
    elif kind == 1:  # a box around an object
        w, h = rng.integers(size // 6, size // 2, 2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        draw.rectangle((x, y, x + w, y + h), fill=255)
    elif kind == 2:  # brush strokes
        for _ in range(rng.integers(1, 4)):
            pts = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(rng.integers(2, 5))]
            draw.line(pts, fill=255, width=int(rng.integers(8, 32)), joint="curve")
    else:  # everything but a kept region (large fills)
        draw.rectangle((0, 0, size, size), fill=255)
        if rng.random() < 0.7:
            w, h = rng.integers(size // 4, size * 3 // 4, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            draw.rectangle((x, y, x + w, y + h), fill=0)
    return (np.asarray(img) > 127).astype(np.float32)


def inpaint_conditioning(vae, image, mask, scale: float, pool: str = "nearest"):
    """The inpainting UNet's 5 extra input channels for images in [-1, 1] and masks (1 = regenerate):
    the mask at latent size and the latents of the image with the masked part blanked, encoded
    exactly as the diffusers inpaint pipeline does. ``pool="max"`` marks a latent cell masked when
    any of its pixels is, as the app's engine does (``canvas_app.engine.images``)."""
    import torch

    with torch.no_grad():
        masked = vae.encode(image * (mask < 0.5)).latent_dist.mean * scale
    if pool == "max":
        small = torch.nn.functional.max_pool2d(mask, image.shape[-1] // masked.shape[-1])
    else:
        small = torch.nn.functional.interpolate(mask, size=masked.shape[-2:])
    return torch.cat([small, masked], dim=1)


def stage_inpaint(work: Workdir, steps: int, batch: int = 24, bf16: bool = False) -> None:
    import torch

    torch.manual_seed(SEED)
    tokenizer = load_tokenizer(work)
    base = load_checkpoint(work.root / "unet.pt")
    unet, text_encoder = arch.make_unet(9), arch.make_text_encoder(tokenizer)
    text_encoder.load_state_dict(base["text_encoder"])
    # Initialise from the base: same weights, conv_in widened with zeros for mask + masked latents.
    state = dict(base["unet"])
    w = state["conv_in.weight"]
    state["conv_in.weight"] = torch.cat([w, torch.zeros(w.shape[0], 5, *w.shape[2:])], dim=1)
    unet.load_state_dict(state)
    vae = load_vae(work)
    pixels, _ = load_data(work)
    scale = work.info("latents")["scaling_factor"]
    rng = np.random.default_rng(SEED + 99)
    size, f = arch.NATIVE_SIZE, arch.VAE_FACTOR

    def make_input(noisy, z, idx, offsets, gen):
        masks = np.stack([random_mask(rng, size) for _ in idx])
        crops = np.stack([pixels[i, :, int(o) * f : int(o) * f + size] for i, o in zip(idx, offsets)])
        mask = torch.from_numpy(masks)[:, None]
        return torch.cat([noisy, inpaint_conditioning(vae, to_tensor(crops), mask, scale)], dim=1)

    # The inpainting UNet starts from the finished base: complete captions and v-prediction throughout;
    # the text encoder stays the base's (it ships once, shared by both pipelines).
    train_denoiser(
        work,
        "inpaint",
        unet,
        text_encoder,
        steps,
        batch,
        4e-4,
        make_input,
        bf16,
        complete_captions_from=0,
        zero_snr_from=0,
        train_text_encoder=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stages", nargs="*", default=["all"], help=f"any of {', '.join(STAGES)} or all")
    parser.add_argument("--work", type=Path, default=Path("checkpoints/builtin"))
    parser.add_argument("--out", type=Path, default=Path("resources/models"))
    parser.add_argument("--scenes", type=int, default=6000)
    parser.add_argument("--vae-steps", type=int, default=2000)
    parser.add_argument("--unet-steps", type=int, default=11000)
    parser.add_argument("--inpaint-steps", type=int, default=600)
    parser.add_argument(
        "--complete-captions-from",
        type=int,
        default=5500,
        help="UNet step from which captions name everything the crop shows (no phrase dropout)",
    )
    parser.add_argument(
        "--zero-snr-from",
        type=int,
        default=8000,
        help="UNet step from which the schedule has zero terminal SNR and the UNet predicts v",
    )
    parser.add_argument(
        "--redraw-position-words-at",
        type=int,
        default=9500,
        help="UNet step at which left/center/right get fresh orthogonal embeddings (-1: never)",
    )
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--unet-batch", type=int, default=32)
    parser.add_argument("--inpaint-batch", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the UNet stages")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    work = Workdir(args.work)
    wanted = STAGES if "all" in args.stages else tuple(args.stages)
    runners = {
        "data": lambda: stage_data(work, args.scenes),
        "vae": lambda: stage_vae(work, args.vae_steps, batch=args.vae_batch),
        "latents": lambda: stage_latents(work),
        "unet": lambda: stage_unet(
            work,
            args.unet_steps,
            args.complete_captions_from,
            args.zero_snr_from,
            args.redraw_position_words_at,
            batch=args.unet_batch,
            bf16=args.bf16,
        ),
        "inpaint": lambda: stage_inpaint(work, args.inpaint_steps, batch=args.inpaint_batch, bf16=args.bf16),
        "export": lambda: export_models(work, args.out),
    }
    # Asking a finished UNet stage for more steps than it ran resumes it from its checkpoint (its
    # schedule is a function of the step; the VAE's one-cycle schedule cannot be extended).
    extendable = {"unet": args.unet_steps, "inpaint": args.inpaint_steps}
    for stage in STAGES:
        if stage in wanted and stage in extendable and work.done(stage):
            if work.info(stage).get("steps", 0) < extendable[stage]:
                (work.root / f"{stage}.done").unlink()
        if stage in wanted and not work.done(stage):
            log(f"stage {stage}")
            runners[stage]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

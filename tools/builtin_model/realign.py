"""Re-align the shipped UNets (base and inpainting) to a new VAE's latent space (issue 16).

A VAE fine-tuned on photographs moves its encoder a little (scene latent drift ~0.04), so the
latents the UNets were trained to denoise move with it. This stage re-encodes train.py's scenes
with the NEW VAE's encoder (cached per encoder) and fine-tunes each shipped UNet on them at a low
learning rate, from the shipped weights, text encoder frozen (it ships once for both pipelines):
the shipped schedule (v-prediction, zero terminal SNR), complete captions with 10% dropped,
min-SNR weights; the inpainting UNet gets train.py's random masks (max-pooled, as the engine does).

Alignment measure (``--eval-every``): the weighted denoising loss on held-out scenes (never trained
on) at fixed timesteps and fixed noises, through the new VAE. The goal is the reference: the shipped
UNet on the shipped VAE's latents of the same scenes (written at the start in ``<which>.reference``);
step 0 is the shipped UNet on the new latents.

    python -m tools.builtin_model.realign train --vae checkpoints/photo_vae_ema/full_best.pt \\
        --which base --steps 600 --work checkpoints/realign
    python -m tools.builtin_model.realign train --vae ... --which inpaint --steps 600 --work checkpoints/realign
    python -m tools.builtin_model.realign assemble --vae ... --base-ckpt checkpoints/realign/base.pt \\
        --inpaint-ckpt checkpoints/realign/inpaint.pt --out work_tmp/realigned
    python -m tools.builtin_model.evaluate --models work_tmp/realigned --out work_tmp/realigned-eval.json

``--vae`` is a VAE folder (``.../vae`` or a model folder holding one) or a photo_vae checkpoint.
Training resumes from ``<work>/<which>.pt``; the data, noise and timesteps of step n come from
generators seeded by n, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from canvas_app.engine import builtin_weights
from tools.builtin_model import architecture as arch
from tools.builtin_model import train as scene_training
from tools.builtin_model.crops import LatentCrops, held_out_count, load_data
from tools.builtin_model.denoising import lr_at, weighted_losses
from tools.builtin_model.export import PREVIEW_MAP_FILE, scene_preview_map
from tools.builtin_model.photo_inpaint import Frozen, MixedBatches, load_frozen, write_unet
from tools.builtin_model.scenes import HALF_INSIDE, caption_for_crop
from tools.builtin_model.shipped_weights import save_shipped
from tools.builtin_model.workdir import Workdir, load_checkpoint, log, save_checkpoint

SEED = 20_261_202
MODELS = Path("resources/models")
FOLDERS = {"base": "builtin", "inpaint": "builtin-inpaint"}
EVAL_TIMESTEPS = (100, 300, 500, 700, 900)  # of 1000: every scene is scored at each


def load_new_vae(spec: Path):
    """The VAE to align to: a VAE folder, a model folder holding ``vae/``, or a photo_vae checkpoint."""
    from tools.builtin_model.vae_measure import load_vae

    if (spec / "vae" / "config.json").is_file():
        spec = spec / "vae"
    if (spec / "config.json").is_file():
        vae = load_vae(spec)
    elif spec.is_file():
        from tools.builtin_model.photo_vae import vae_from_checkpoint

        vae = vae_from_checkpoint(spec)
    else:
        raise SystemExit(f"{spec} is neither a VAE folder nor a photo_vae checkpoint")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if factor != arch.VAE_FACTOR:
        raise SystemExit(f"{spec} downsamples by {factor}; the UNets need {arch.VAE_FACTOR}")
    return vae.eval().requires_grad_(False)


def encoder_key(vae) -> str:
    """Names the latent space: a hash of the weights that make latents (the decoder does not matter)."""
    digest = hashlib.sha1()
    for name, value in sorted(vae.state_dict().items()):
        if name.startswith(("encoder.", "quant_conv.")):
            digest.update(name.encode() + value.float().numpy().tobytes())
    return digest.hexdigest()[:12]


def latent_workdir(work: Path, n_scenes: int, frozen: Frozen) -> Workdir:
    """train.py's scenes (rendered once in ``work/scenes``) encoded by ``frozen.vae``, cached per encoder."""
    scenes = Workdir(work / "scenes")
    if not scenes.done("data"):
        scene_training.stage_data(scenes, n_scenes)
    target = Workdir(work / f"latents-{encoder_key(frozen.vae)}")
    for name in ("scenes.npy", "scenes.pkl", "data.done"):
        if not (target.root / name).exists():
            (target.root / name).symlink_to((scenes.root / name).resolve())
    if not target.done("latents"):
        scene_training.stage_latents(target, frozen.vae, frozen.scale)
    return target


def load_shipped_unet(models: Path, which: str):
    import torch

    return builtin_weights.load_unet(models / FOLDERS[which] / "unet", torch.float32)


@dataclasses.dataclass
class EvalSet:
    """Held-out scene crops with complete captions, fixed masks (inpaint) and fixed noises."""

    pixels: object  # (N, 3, S, S) in [-1, 1]
    captions: list[str]
    masks: object | None

    @classmethod
    def from_scenes(cls, scenes: Workdir, count: int, inpaint: bool) -> EvalSet:
        import torch

        pixels, infos = load_data(scenes)
        size = arch.NATIVE_SIZE
        held = range(len(pixels) - held_out_count(len(pixels)), len(pixels))
        chosen = list(held)[:count]
        x = (pixels.shape[2] - size) // 2
        px = scene_training.to_tensor(np.stack([pixels[i, :, x : x + size] for i in chosen]))
        captions = [caption_for_crop(infos[i], x, size, min_inside=HALF_INSIDE) for i in chosen]
        rng = np.random.default_rng(SEED)
        masks = (
            torch.from_numpy(np.stack([scene_training.random_mask(rng, size) for _ in chosen]))[:, None]
            if inpaint
            else None
        )
        return cls(px, captions, masks)

    def loss(self, unet, frozen: Frozen) -> float:
        """Mean weighted denoising loss over every crop at every EVAL_TIMESTEPS (same noises each call)."""
        import torch

        scheduler = arch.make_scheduler(True)
        was_training = unet.training
        unet.eval()
        with torch.no_grad():
            z = frozen.vae.encode(self.pixels).latent_dist.mode() * frozen.scale
            cond = None
            if self.masks is not None:
                cond = scene_training.inpaint_conditioning(
                    frozen.vae, self.pixels, self.masks, frozen.scale, pool="max"
                )
            hidden = scene_training.encode_text(frozen.tokenizer, frozen.text_encoder, self.captions)
            total = 0.0
            for k, t in enumerate(EVAL_TIMESTEPS):
                gen = torch.Generator().manual_seed(SEED + k)
                steps = torch.full((len(z),), t)
                total += weighted_losses(unet, scheduler, z, hidden, gen, cond, steps).mean().item()
        unet.train(was_training)
        return total / len(EVAL_TIMESTEPS)


def reference_loss(args: argparse.Namespace, shipped: Frozen, eval_set: EvalSet) -> float:
    """The shipped pair's loss on the eval set (the goal), computed once per models and eval set."""
    path = Path(args.work) / f"{args.which}.reference"
    made_from = {"models": str(Path(args.models).resolve()), "eval_scenes": len(eval_set.captions)}
    if not path.exists() or json.loads(path.read_text()).get("made_from") != made_from:
        loss = eval_set.loss(load_shipped_unet(Path(args.models), args.which), shipped)
        path.write_text(json.dumps({"loss": loss, "made_from": made_from}))
    return json.loads(path.read_text())["loss"]


class SceneBatches:
    """The base UNet's batches: latent crops of the scenes with complete captions (10% dropped)."""

    def __init__(self, scenes: Workdir, batch: int):
        self.crops, self.size = LatentCrops(scenes, SEED), batch

    def __call__(self, step: int):
        self.crops.reseed(SEED + step)
        z, captions, _, _ = self.crops.batch(self.size, caption_dropout=0.1, complete=True)
        return z, None, captions


def inpaint_batches(scenes: Workdir, frozen: Frozen, batch: int):
    mixed = MixedBatches(scenes, None, frozen, batch, 1.0)

    def make(step: int):
        b = mixed(step)
        return b.latents, b.conditioning, b.captions

    return make


def train(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    work, models = Path(args.work), Path(args.models)
    work.mkdir(parents=True, exist_ok=True)
    shipped = load_frozen(models / "builtin")
    vae = load_new_vae(Path(args.vae))
    frozen = dataclasses.replace(shipped, vae=vae, scale=float(vae.config.scaling_factor))
    key = encoder_key(vae)
    unet = load_shipped_unet(models, args.which)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-2)
    ckpt_path = work / f"{args.which}.pt"
    start, seconds = 0, 0.0
    ckpt = load_checkpoint(ckpt_path)
    if ckpt:
        if ckpt["encoder"] != key:
            raise SystemExit(f"{ckpt_path} was aligned to another encoder ({ckpt['encoder']}, not {key})")
        unet.load_state_dict(ckpt["unet"])
        opt.load_state_dict(ckpt["opt"])
        start, seconds = ckpt["step"], ckpt["seconds"]
        log(f"resumed {ckpt_path} at step {start}")
    scenes = latent_workdir(work, args.scenes, frozen)
    eval_set = EvalSet.from_scenes(scenes, args.eval_scenes, args.which == "inpaint")
    goal = reference_loss(args, shipped, eval_set)
    batches = (
        SceneBatches(scenes, args.batch)
        if args.which == "base"
        else inpaint_batches(scenes, frozen, args.batch)
    )
    scheduler = arch.make_scheduler(True)
    evals = work / f"{args.which}_evals.jsonl"

    def measure(step: int) -> None:
        value = eval_set.loss(unet, frozen)
        with evals.open("a") as f:
            f.write(json.dumps({"step": step, "loss": value, "reference": goal, "encoder": key}) + "\n")
        log(
            f"realign {args.which} step {step}: held-out loss {value:.4f} (shipped pair {goal:.4f}, x{value / goal:.3f})"
        )

    if start == 0:
        measure(0)
    log(f"realign {args.which} to encoder {key}: steps {start} -> {args.steps}, batch {args.batch}")
    unet.train()
    running, t_log, logged, last_save = 0.0, time.time(), start, time.time()
    for step in range(start, args.steps):
        t0 = time.time()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, warmup=args.warmup)
        latents, conditioning, captions = batches(step)
        gen = torch.Generator().manual_seed(SEED + step)
        with torch.no_grad():
            hidden = scene_training.encode_text(frozen.tokenizer, frozen.text_encoder, captions)
        loss = weighted_losses(unet, scheduler, latents, hidden, gen, conditioning).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        seconds += time.time() - t0
        running += loss.item()
        done = step + 1 == args.steps
        if (step + 1) % 25 == 0 or done:
            rate = (time.time() - t_log) / (step + 1 - logged)
            log(
                f"realign {args.which} step {step + 1}/{args.steps} loss {running / (step + 1 - logged):.4f} ({rate:.2f} s/step)"
            )
            running, t_log, logged = 0.0, time.time(), step + 1
        if done or time.time() - last_save >= args.ckpt_minutes * 60:
            state = {"unet": unet.state_dict(), "opt": opt.state_dict(), "step": step + 1}
            save_checkpoint(ckpt_path, **state, seconds=seconds, encoder=key)
            last_save = time.time()
        if args.eval_every and ((step + 1) % args.eval_every == 0 or done):
            measure(step + 1)
    return {"steps": args.steps, "seconds": seconds, "reference": goal}


def assemble(vae_spec: Path, ckpts: dict[str, Path | None], models: Path, work: Path, out: Path) -> Path:
    """A complete models folder: ``builtin`` with the new VAE and ``builtin-inpaint``, each with its
    re-aligned UNet (int8; the shipped one where no checkpoint is given) and a preview map refitted on
    the new latents."""
    vae = load_new_vae(vae_spec)
    scenes = Workdir(work / "scenes")
    if not scenes.done("data"):
        raise SystemExit(f"{scenes.root} holds no scenes: run `train` with this --work first")
    pixels, _ = load_data(scenes)
    preview = json.dumps(scene_preview_map(vae, pixels, float(vae.config.scaling_factor)), indent=1)
    out.mkdir(parents=True, exist_ok=True)
    for which, name in FOLDERS.items():
        shipped, tmp = models / name, out / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(shipped, tmp, ignore=shutil.ignore_patterns("vae", "unet"))
        if (shipped / "vae").is_dir():
            save_shipped(vae, tmp / "vae")
        ckpt = ckpts.get(which)
        if ckpt is None:
            log(f"assemble: {name} keeps the shipped UNet (no checkpoint given)")
            shutil.copytree(shipped / "unet", tmp / "unet")
        else:
            write_unet(ckpt, shipped, tmp / "unet")
        (tmp / PREVIEW_MAP_FILE).write_text(preview)
        shutil.rmtree(out / name, ignore_errors=True)
        tmp.rename(out / name)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.builtin_model.realign", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune one shipped UNet onto the new VAE's latents")
    a = sub.add_parser("assemble", help="write builtin + builtin-inpaint with the new VAE and UNets")
    for p in (t, a):
        p.add_argument("--vae", required=True, help="VAE folder, model folder or photo_vae checkpoint")
        p.add_argument("--models", default=str(MODELS), help="the shipped builtin and builtin-inpaint")
        p.add_argument("--work", default="checkpoints/realign", help="scenes, latents and checkpoints")
    t.add_argument("--which", choices=tuple(FOLDERS), required=True)
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--scenes", type=int, default=3000, help="rendered scenes (train.py's first N)")
    t.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (cosine to a tenth)")
    t.add_argument("--warmup", type=int, default=25)
    t.add_argument(
        "--eval-every", type=int, default=100, help="measure the alignment every N steps (0: never)"
    )
    t.add_argument("--eval-scenes", type=int, default=16, help="held-out scenes in the measure")
    t.add_argument("--ckpt-minutes", type=float, default=5.0)
    t.add_argument("--threads", type=int, default=1)
    a.add_argument("--base-ckpt", help="realign checkpoint of the base UNet (default: the shipped UNet)")
    a.add_argument("--inpaint-ckpt", help="realign checkpoint of the inpainting UNet (default: shipped)")
    a.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train(args)
    else:
        ckpts = {"base": args.base_ckpt, "inpaint": args.inpaint_ckpt}
        ckpts = {k: Path(v) if v else None for k, v in ckpts.items()}
        print(assemble(Path(args.vae), ckpts, Path(args.models), Path(args.work), Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

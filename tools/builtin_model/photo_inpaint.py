"""Fine-tune the shipped inpainting UNet on photographs as well as its own scenes ("remove this").

The shipped inpainting UNet only ever saw rendered scenes: on a photograph it paints a blob from its
own world. This stage starts from the shipped UNet and trains it on batches that mix

- rendered scenes' latents with their complete captions (10% dropped), as train.py's ``inpaint``
  stage does, so that prompt adherence holds, and
- random crops of the training photographs (``photo_data.PhotoCrops``: several scales, flips,
  colour jitter), encoded by the shipped VAE (posterior mode, scaled as the engine does) and
  captioned with the empty prompt, which is what an artist types to remove something,

each with train.py's random brush, box and border masks; the mask reaches the UNet max-pooled to
latent size, as the engine gives it. The VAE and text encoder stay the shipped ones (frozen).

    python -m tools.builtin_model.photo_inpaint train --photos work_tmp/photos/train --steps 900
    python -m tools.builtin_model.photo_inpaint assemble --checkpoint checkpoints/photo_inpaint/photo_inpaint.pt \
        --out work_tmp/photo_inpaint_models     # builtin/ + builtin-inpaint/ for evaluate.py and the bench
    python -m tools.builtin_model.photo_inpaint export --checkpoint checkpoints/photo_inpaint/photo_inpaint.pt

Training resumes from ``<work>/photo_inpaint.pt``; the data, noise and timesteps of step n come from
generators seeded by n, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from canvas_app.engine import builtin_weights
from tools.builtin_model import architecture as arch
from tools.builtin_model import photo_data
from tools.builtin_model.crops import LatentCrops, load_data
from tools.builtin_model.denoising import lr_at, weighted_losses
from tools.builtin_model.shipped_weights import save_shipped
from tools.builtin_model.train import (
    encode_text,
    inpaint_conditioning,
    random_mask,
    stage_data,
    stage_latents,
)
from tools.builtin_model.workdir import Workdir, load_checkpoint, log, save_checkpoint

SEED = 20_261_201
MODELS = Path("resources/models")
UNET_WEIGHTS = builtin_weights.INT8_UNET_FILE  # the shipped format, read back by load_unet


@dataclass
class Frozen:
    """What the stage uses but does not train: the shipped VAE, tokenizer and text encoder."""

    vae: Any
    tokenizer: Any
    text_encoder: Any
    scale: float


def load_frozen(base: Path) -> Frozen:
    import torch
    from transformers import CLIPTextModel, CLIPTokenizer

    from tools.builtin_model.vae_measure import load_vae

    vae = load_vae(base / "vae")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if factor != arch.VAE_FACTOR:
        raise SystemExit(f"{base / 'vae'} downsamples by {factor}; the scene latents need {arch.VAE_FACTOR}")
    text_encoder = CLIPTextModel.from_pretrained(base / "text_encoder", torch_dtype=torch.float32).eval()
    for module in (vae, text_encoder):
        module.requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(base / "tokenizer")
    return Frozen(vae, tokenizer, text_encoder, float(vae.config.scaling_factor))


def load_unet(folder: Path):
    """The inpainting UNet in fp32 (shipped in fp16), ready to train."""
    import torch

    unet = builtin_weights.load_unet(folder / "unet", torch.float32)
    if unet.config.in_channels != 9:
        raise SystemExit(f"{folder / 'unet'} is not a 9-channel inpainting UNet")
    return unet


def scene_workdir(work: Path, n_scenes: int, frozen: Frozen) -> Workdir:
    """train.py's data and latents stages, with the shipped VAE and its scaling factor: the same
    scenes the shipped model was trained on (scene i is seeded by i)."""
    scenes = Workdir(work / "scenes")
    if not scenes.done("data"):
        stage_data(scenes, n_scenes)
    if not scenes.done("latents"):
        stage_latents(scenes, frozen.vae, frozen.scale)
    return scenes


def training_photos(folders: list[Path]) -> list[Path]:
    """The training photographs; refuses any photo photo_sources.tsv keeps out for measurement."""
    files = photo_data.image_files(folders)
    held = {s.name for s in photo_data.read_sources() if s.split != "train"}
    leaked = [p.name for p in files if p.stem in held]
    if leaked:
        raise SystemExit(f"held-out photographs among the training photos: {', '.join(leaked)}")
    return files


@dataclass
class Batch:
    latents: Any  # (B, 4, h, w) scaled clean latents
    conditioning: Any  # (B, 5, h, w) mask + masked-image latents
    captions: list[str]
    is_photo: Any  # (B,) bool


class MixedBatches:
    """Batches of scene crops (with captions) and photo crops (empty prompt), the scenes first."""

    def __init__(
        self,
        scenes: Workdir,
        photos: photo_data.PhotoCrops | None,
        frozen: Frozen,
        batch: int,
        scene_share: float,
    ):
        self.scene_crops = LatentCrops(scenes, SEED)
        self.pixels, _ = load_data(scenes)
        self.photos, self.frozen = photos, frozen
        self.n_scene = round(batch * scene_share) if photos is not None else batch
        self.n_photo = batch - self.n_scene

    def __call__(self, step: int) -> Batch:
        import torch

        from tools.builtin_model.vae_measure import to_tensor

        size, f = arch.NATIVE_SIZE, arch.VAE_FACTOR
        rng = np.random.default_rng([SEED, step])
        self.scene_crops.reseed(SEED + step)
        z_scene, captions, idx, offsets = self.scene_crops.batch(
            self.n_scene, caption_dropout=0.1, complete=True
        )
        scene_px = to_tensor(
            np.stack([self.pixels[i, :, int(o) * f : int(o) * f + size] for i, o in zip(idx, offsets)])
        )
        z_photo, photo_px = torch.empty(0, *z_scene.shape[1:]), torch.empty(0, *scene_px.shape[1:])
        if self.n_photo:  # photo crops as the engine would receive them: uint8 pixels
            photo_u8 = np.round(self.photos.sample(rng, self.n_photo, size) * 255).astype(np.uint8)
            photo_px = to_tensor(photo_u8)
            with torch.no_grad():
                z_photo = self.frozen.vae.encode(photo_px).latent_dist.mode() * self.frozen.scale
        image = torch.cat([scene_px, photo_px])
        mask = torch.from_numpy(np.stack([random_mask(rng, size) for _ in range(len(image))]))[:, None]
        return Batch(
            latents=torch.cat([z_scene, z_photo]),
            conditioning=inpaint_conditioning(self.frozen.vae, image, mask, self.frozen.scale, pool="max"),
            captions=captions + [""] * self.n_photo,
            is_photo=torch.arange(len(image)) >= self.n_scene,
        )


def train(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    frozen = load_frozen(Path(args.base))
    unet = load_unet(Path(args.inpaint))
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-2)
    ckpt_path = work / "photo_inpaint.pt"
    start, seconds = 0, 0.0
    ckpt = load_checkpoint(ckpt_path)
    if ckpt:
        unet.load_state_dict(ckpt["unet"])
        opt.load_state_dict(ckpt["opt"])
        start, seconds = ckpt["step"], ckpt["seconds"]
        log(f"resumed {ckpt_path} at step {start}")
    scenes = scene_workdir(work, args.scenes, frozen)
    photos = photo_data.PhotoCrops(training_photos([Path(p) for p in args.photos]))
    batches = MixedBatches(scenes, photos, frozen, args.batch, args.scene_share)
    scheduler = arch.make_scheduler(True)  # the shipped schedule: zero terminal SNR, v-prediction
    log(
        f"photo_inpaint: {photos.count} photos at {len(photos.levels)} sizes, "
        f"batch {batches.n_scene} scenes + {batches.n_photo} photos, steps {start} -> {args.steps}"
    )
    unet.train()
    sums, t_log, logged = np.zeros(4), time.time(), start  # scene loss, scene items, photo loss, photo items
    for step in range(start, args.steps):
        t0 = time.time()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, warmup=args.warmup)
        b = batches(step)
        gen = torch.Generator().manual_seed(SEED + step)
        with torch.no_grad():
            hidden = encode_text(frozen.tokenizer, frozen.text_encoder, b.captions)
        per_item = weighted_losses(unet, scheduler, b.latents, hidden, gen, b.conditioning)
        loss = per_item.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        seconds += time.time() - t0
        photo = b.is_photo
        item = per_item.detach()
        sums += [item[~photo].sum().item(), int((~photo).sum()), item[photo].sum().item(), int(photo.sum())]
        done = step + 1 == args.steps
        if (step + 1) % 25 == 0 or done:
            log(
                f"photo_inpaint step {step + 1}/{args.steps} loss scenes {sums[0] / max(sums[1], 1):.4f} "
                f"photos {sums[2] / max(sums[3], 1):.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"({(time.time() - t_log) / (step + 1 - logged):.2f} s/step, {seconds / 60:.1f} min trained)"
            )
            sums, t_log, logged = np.zeros(4), time.time(), step + 1
        if (step + 1) % args.ckpt_every == 0 or done:
            save_checkpoint(
                ckpt_path, unet=unet.state_dict(), opt=opt.state_dict(), step=step + 1, seconds=seconds
            )
        if args.keep_every and (step + 1) % args.keep_every == 0:
            save_checkpoint(
                work / f"unet_{step + 1}.pt", unet=unet.state_dict(), step=step + 1, seconds=seconds
            )
    return {"steps": args.steps, "seconds": seconds}


def write_unet(checkpoint: Path, shipped: Path, folder: Path) -> Path:
    """The checkpoint's UNet as it ships (the int8 file) beside the shipped config."""
    import torch

    unet = builtin_weights.load_unet(shipped / "unet", torch.float32)  # base or inpainting
    unet.load_state_dict(load_checkpoint(checkpoint)["unet"])
    tmp = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_shipped(unet, tmp)
    folder.mkdir(parents=True, exist_ok=True)
    if (shipped / "unet" / "config.json").resolve() != (folder / "config.json").resolve():
        shutil.copyfile(shipped / "unet" / "config.json", folder / "config.json")
    (tmp / UNET_WEIGHTS).replace(folder / UNET_WEIGHTS)
    for old in folder.glob("diffusion_pytorch_model*.safetensors"):  # a diffusers-format file it replaces
        if old.name != UNET_WEIGHTS:
            old.unlink()
    shutil.rmtree(tmp)
    return folder


def assemble(checkpoint: Path, models: Path, out: Path) -> Path:
    """``out/builtin`` (the shipped base) and ``out/builtin-inpaint`` with the checkpoint's UNet: a
    ``--models`` folder for evaluate.py, and its builtin-inpaint a ``--model`` for bench/photo_fill."""
    out.mkdir(parents=True, exist_ok=True)
    base, shipped, target = models / "builtin", models / "builtin-inpaint", out / "builtin-inpaint"
    if not (out / "builtin").exists():
        (out / "builtin").symlink_to(base.resolve())
    target.mkdir(exist_ok=True)
    links = {p.name: p for p in shipped.iterdir() if p.name != "unet"}
    links |= {name: base / name for name in ("vae", "text_encoder", "tokenizer")}
    for name, source in links.items():
        if not (target / name).exists():
            (target / name).symlink_to(source.resolve())
    write_unet(checkpoint, shipped, target / "unet")
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.builtin_model.photo_inpaint", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument(
        "--photos", nargs="+", default=["work_tmp/photos/train"], help="folders of training photos"
    )
    t.add_argument("--work", default="checkpoints/photo_inpaint")
    t.add_argument(
        "--base", default=str(MODELS / "builtin"), help="VAE, text encoder and tokenizer from here"
    )
    t.add_argument("--inpaint", default=str(MODELS / "builtin-inpaint"), help="the UNet to start from")
    t.add_argument("--steps", type=int, default=900)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--scene-share", type=float, default=0.5, help="share of each batch that is scenes")
    t.add_argument("--scenes", type=int, default=2000, help="rendered scenes (train.py's first N)")
    t.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (cosine to a tenth)")
    t.add_argument("--warmup", type=int, default=50)
    t.add_argument("--ckpt-every", type=int, default=50)
    t.add_argument(
        "--keep-every", type=int, default=250, help="keep a copy of the UNet every N steps (0: never)"
    )
    t.add_argument("--threads", type=int, default=1)
    for name, text in (
        ("assemble", "model folders to measure"),
        ("export", "write the UNet into the shipped folder"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--models", default=str(MODELS), help="folder holding builtin and builtin-inpaint")
        if name == "assemble":
            p.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train(args)
    elif args.command == "assemble":
        print(assemble(Path(args.checkpoint), Path(args.models), Path(args.out)))
    else:
        shipped = Path(args.models) / "builtin-inpaint"
        print(write_unet(Path(args.checkpoint), shipped, shipped / "unet"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fine-tune the built-in model's VAE so that photographs survive the round trip.

The shipped VAE saw only rendered scenes: photographs come back at about 20 dB with greys turned pink.
Stage ``decoder`` trains the decoder alone on photo crops mixed with scenes; the encoder is frozen, so
every latent (and so everything the UNets learnt) stays exactly as it was. Stage ``full`` also trains
the encoder, with an anchor that keeps the scenes' latents near the shipped encoder's, for when the
decoder alone cannot reach the goal; it reports how far the latents moved (UNets then need re-aligning).

    python -m tools.builtin_model.photo_vae collect --out work_tmp/photos
    python -m tools.builtin_model.photo_vae train --photos work_tmp/photos/train \
        --heldout work_tmp/photos/heldout --steps 20000
    python -m tools.builtin_model.photo_vae evaluate --heldout work_tmp/photos/heldout \
        --checkpoint checkpoints/photo_vae/decoder_best.pt
    python -m tools.builtin_model.photo_vae export --heldout work_tmp/photos/heldout \
        --checkpoint checkpoints/photo_vae/decoder_best.pt

Training resumes from ``<work>/<stage>.pt``; the data of step n is drawn from a generator seeded by n,
so a resumed run continues exactly where it stopped. With ``--ema D`` the run also keeps an exponential
moving average of the weights (decay D per step, saved in the checkpoint as ``ema``); it is what gets
measured, kept as ``<stage>_best.pt``, evaluated and exported, because at a constant learning rate the
raw weights swing by several ΔE00 per photo between measurements.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from canvas_app.engine.devices import set_openmp_defaults
from tools.builtin_model import photo_data, vae_widen
from tools.builtin_model import vae_measure as vm
from tools.builtin_model.photo_loss import reconstruction_loss
from tools.builtin_model.shipped_weights import as_shipped, save_shipped, shipped_dtype

SEED = 20_240_611
ENCODER_PREFIXES = ("encoder.", "quant_conv.")  # the weights that make latents
WARMUP = 50


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def heldout_photos(folder: Path, long_side: int = photo_data.EVAL_LONG_SIDE) -> dict[str, np.ndarray]:
    return {p.stem: photo_data.load_rgb(p, long_side) for p in photo_data.image_files([folder])}


def measured_weights(ckpt: dict) -> dict:
    """The weights a checkpoint stands for: its EMA when the run kept one, else the raw weights."""
    return ckpt.get("ema") or ckpt["model"]


def update_ema(ema, vae, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights, for every parameter and float buffer."""
    import torch

    with torch.no_grad():
        src = vae.state_dict()
        for name, value in ema.state_dict().items():
            if value.is_floating_point():
                value.lerp_(src[name], 1.0 - decay)


def trainable(vae, stage: str) -> list:
    for p in vae.parameters():
        p.requires_grad_(stage == "full")
    if stage == "decoder":
        for module in (vae.decoder, vae.post_quant_conv):
            for p in module.parameters():
                p.requires_grad_(True)
    return [p for p in vae.parameters() if p.requires_grad]


def _save(path: Path, **state) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load(path: Path) -> dict | None:
    import torch

    return torch.load(path, weights_only=False) if path.exists() else None


def photo_samples(
    rng: np.random.Generator, photos: photo_data.PhotoCrops, args: argparse.Namespace
) -> np.ndarray:
    """The batch's photo part: crops and colour fields (``--colour-fraction`` of them), each sample
    one crop or, with ``--mosaic N``, N x N of them in one picture, shuffled together; with
    ``--whole-fraction`` that share of the samples stays one picture (a photo crop or a colour field
    at the full sample size), so that a picture of one flat colour keeps its colour as well."""
    n_samples = args.batch - round(args.batch * args.scene_fraction)
    n_whole = round(n_samples * args.whole_fraction) if args.mosaic > 1 else 0
    n_tiles = (n_samples - n_whole) * args.mosaic**2
    # The colour fields' share of the tiles is the share of the samples they would be unmixed.
    n_colour = round(n_tiles * round(args.batch * args.colour_fraction) / n_samples)
    tiles = np.concatenate(
        [
            photos.sample(rng, n_tiles - n_colour, args.crop),
            photo_data.colour_fields(rng, n_colour, args.crop),
        ]
    )
    if args.mosaic == 1:
        return tiles
    pictures = photo_data.mosaic(tiles[rng.permutation(n_tiles)], args.mosaic)
    if not n_whole:
        return pictures
    side = args.crop * args.mosaic
    n_fields = int((rng.random(n_whole) < 0.5).sum())
    whole = [photos.sample(rng, n_whole - n_fields, side), photo_data.colour_fields(rng, n_fields, side)]
    return np.concatenate([pictures, *whole])


def train(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    reference = vm.load_vae(Path(args.vae))
    for p in reference.parameters():
        p.requires_grad_(False)
    ckpt_path, best_path = work / f"{args.stage}.pt", work / f"{args.stage}_best.pt"
    ckpt = _load(ckpt_path)
    vae = architecture_of(ckpt, reference)
    if ckpt is None and (args.init or args.stage == "full"):
        # The full stage starts from what the decoder stage reached, if it ran.
        start_from = _load(Path(args.init)) if args.init else None
        start_from = start_from or _load(work / "decoder_best.pt") or _load(work / "decoder.pt")
        if start_from:
            vae = architecture_of(start_from, reference)
            vae.load_state_dict(measured_weights(start_from))
    if ckpt is None and args.widen > 1:
        vae = vae_widen.widen(vae, args.widen)
        log(f"widened to channels {list(vae.config.block_out_channels)}, the same function")
    if args.shipped_encoder:
        if not same_architecture(vae.config, reference.config):
            raise ValueError("--shipped-encoder needs the shipped architecture, not a widened VAE")
        # Only the decoder differs from the shipped VAE, so every latent stays the shipped one and
        # the result can be exported without re-aligning the UNets.
        if args.stage != "decoder":
            raise ValueError("--shipped-encoder keeps the encoder frozen: it needs --stage decoder")
        own = vae.state_dict()
        for name, value in reference.state_dict().items():
            if name.startswith(ENCODER_PREFIXES):
                own[name].copy_(value)
    params = trainable(vae, args.stage)
    # The encoder gets its own (higher) rate: its gradient arrives through the decoder, weakened, and
    # it has the most to change (it folds browns onto greens and dark greys onto dark greens).
    encoder = [p for n, p in vae.named_parameters() if p.requires_grad and n.startswith(ENCODER_PREFIXES)]
    decoder = [p for n, p in vae.named_parameters() if p.requires_grad and not n.startswith(ENCODER_PREFIXES)]
    groups = [{"params": decoder, "base_lr": args.lr}]
    if encoder:
        groups.append({"params": encoder, "base_lr": args.encoder_lr})
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.0)
    start, best = 0, None
    if ckpt:
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        # The rates come from the command line, not the checkpoint: a resumed run may lower them.
        for group, rate in zip(opt.param_groups, (args.lr, args.encoder_lr)):
            group["base_lr"] = rate
        start, best = ckpt["step"], ckpt.get("best")
        log(f"resumed {ckpt_path} at step {start}")
    ema = None
    if args.ema:
        # A checkpoint of a run without an EMA starts it from its current weights.
        ema = copy.deepcopy(vae).eval()
        for p in ema.parameters():
            p.requires_grad_(False)
        if ckpt and ckpt.get("ema"):
            ema.load_state_dict(ckpt["ema"])
        log(
            f"EMA of the weights, decay {args.ema} ({'resumed' if ckpt and ckpt.get('ema') else 'from the current weights'})"
        )
    # Measure the drift and the scenes from shipped latents whenever the latents are not the shipped ones.
    drift_reference = reference if args.stage == "full" or encoder_changed(vae, reference) else None
    photos = photo_data.PhotoCrops(photo_data.image_files([Path(p) for p in args.photos]))
    scenes = photo_data.ScenePool(args.scenes)
    held = heldout_photos(Path(args.heldout))
    eval_scenes = photo_data.eval_scenes(args.eval_scenes)
    before = ckpt["before"] if ckpt and "before" in ckpt else vm.measure(reference, held, eval_scenes)
    log(
        f"{args.stage}: {photos.count} training photos at {len(photos.levels)} sizes, {len(held)} held-out; shipped VAE: photos "
        f"{before['photo_psnr_db']:.2f} dB ΔE {before['photo_delta_e00']:.2f}, scenes {before['scene_psnr_db']:.2f} dB"
    )
    n_scene = round(args.batch * args.scene_fraction)
    last_save, t0, t_step = time.time(), time.time(), time.time()
    step = start
    for step in range(start, args.steps):
        rng = np.random.default_rng([SEED, step])
        x_np = np.concatenate(
            [photo_samples(rng, photos, args), scenes.sample(rng, n_scene, args.crop * args.mosaic)]
        )
        x = torch.from_numpy(x_np).permute(0, 3, 1, 2) * 2 - 1
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * min(1.0, (step + 1) / WARMUP)
        anchor = torch.zeros(())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            with torch.set_grad_enabled(args.stage == "full"):
                z = vae.encode(x).latent_dist.mode()
            if n_scene:
                # Scenes are decoded from the shipped encoder's latents, the kind the UNets produce
                # (in stage decoder the same ones, unless --init brought a moved encoder); the new
                # encoder is held to those latents by the anchor alone.
                with torch.no_grad():
                    z_ref = reference.encode(x[-n_scene:]).latent_dist.mode()
                if args.stage == "full":
                    scale = reference.config.scaling_factor
                    anchor = ((z[-n_scene:].float() - z_ref) * scale).pow(2).mean()
                z = torch.cat([z[:-n_scene], z_ref.to(z.dtype)])
            rec = vae.decode(z).sample.float()
        loss = reconstruction_loss(rec, x, args.lab_weight) + args.anchor * anchor
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            update_ema(ema, vae, args.ema)
        if (step + 1) % 25 == 0:
            log(
                f"step {step + 1}/{args.steps} loss {loss.item():.4f} anchor {anchor.item():.5f} "
                f"({(time.time() - t_step) / 25:.2f} s/step)"
            )
            t_step = time.time()
        done = step + 1 == args.steps
        if (step + 1) % args.eval_every == 0 or done:
            measured = ema if ema is not None else vae
            measured.eval()
            m = vm.measure(measured, held, eval_scenes, drift_reference)
            vae.train()
            drift = f", scene latent drift {m['scene_latent_drift']:.3f}" if "scene_latent_drift" in m else ""
            ok = vm.scene_goal_holds(m, before)
            log(
                f"eval step {step + 1}: photos {m['photo_psnr_db']:.2f} dB ΔE {m['photo_delta_e00']:.2f}, "
                f"scenes {m['scene_psnr_db']:.2f} dB (min {m['scene_psnr_db_min']:.2f}){drift}, flat colours "
                f"ΔE {m['flat_delta_e00']:.2f} alone, {m['flat_beside_delta_e00']:.2f} beside others"
                f"{'' if ok else ' [scene goal not met]'} ({time.time() - t0:.0f}s)"
            )
            with open(work / "evals.jsonl", "a") as fh:
                row = {"stage": args.stage, "step": step + 1, "seconds": time.time() - t0}
                row["weights"] = f"ema {args.ema}" if ema is not None else "raw"
                fh.write(json.dumps({**row, **m}) + "\n")
            if ok and (best is None or m["photo_psnr_db"] > best["photo_psnr_db"]):
                best = {"step": step + 1, **m}
                _save(
                    best_path,
                    model=measured.state_dict(),
                    config=dict(measured.config),
                    step=step + 1,
                    stage=args.stage,
                    metrics=m,
                    before=before,
                )
                log(f"new best at step {step + 1} -> {best_path}")
        if done or time.time() - last_save > args.ckpt_minutes * 60 or (step + 1) % args.eval_every == 0:
            state = dict(
                model=vae.state_dict(),
                config=dict(vae.config),
                opt=opt.state_dict(),
                step=step + 1,
                best=best,
                before=before,
            )
            if ema is not None:
                state["ema"] = ema.state_dict()
            _save(ckpt_path, **state, stage=args.stage)
            last_save = time.time()
    log(f"{args.stage} finished at step {args.steps}; best: {best and best['step']}")
    return {"before": before, "best": best}


def same_architecture(config, reference_config) -> bool:
    """Whether two VAE configs have the same channels (``--widen`` changes nothing else)."""
    return list(config["block_out_channels"]) == list(reference_config["block_out_channels"])


def architecture_of(ckpt: dict | None, reference):
    """A fresh copy of ``reference``, or of the widened VAE the checkpoint was saved from."""
    from diffusers import AutoencoderKL

    config = (ckpt or {}).get("config")
    if config is None or same_architecture(config, reference.config):
        return copy.deepcopy(reference)
    return AutoencoderKL.from_config(config)


def vae_from_checkpoint(path: Path, base: Path = vm.SHIPPED_VAE):
    ckpt = _load(path)
    vae = architecture_of(ckpt, vm.load_vae(base))
    vae.load_state_dict(measured_weights(ckpt))
    return vae.eval()


def encoder_changed(vae, reference) -> bool:
    """Whether any weight that makes latents differs once both are rounded as shipped."""
    import torch

    if not same_architecture(vae.config, reference.config):
        return True
    ref, dtype = reference.state_dict(), shipped_dtype()
    return any(
        not torch.equal(v.to(dtype), ref[k].to(dtype))
        for k, v in vae.state_dict().items()
        if k.startswith(ENCODER_PREFIXES)
    )


def evaluate(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    reference = vm.load_vae(Path(args.vae))
    held = heldout_photos(Path(args.heldout))
    scenes = photo_data.eval_scenes(args.eval_scenes)
    rows = [("shipped VAE", vm.measure(reference, held, scenes))]
    vaes = [reference]
    for ckpt in args.checkpoint:
        vae = as_shipped(vae_from_checkpoint(Path(ckpt), Path(args.vae)))
        rows.append((Path(ckpt).name, vm.measure(vae, held, scenes, reference)))
        vaes.append(vae)
    print(vm.table(rows))
    if args.picture:
        vm.comparison_picture(vaes, held, Path(args.picture))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows), indent=1))
    return dict(rows)


def export(args: argparse.Namespace) -> int:
    """Write the fine-tuned VAE (safetensors in the shipped dtype, the shipped config) into every built-in pipeline
    folder, only if the scenes keep their quality; refuses a moved latent space unless told."""
    import torch

    torch.set_num_threads(args.threads)
    shipped = Path(args.out) / "builtin" / "vae"
    reference = vm.load_vae(shipped)
    vae = as_shipped(vae_from_checkpoint(Path(args.checkpoint), shipped))
    held = heldout_photos(Path(args.heldout))
    scenes = photo_data.eval_scenes(args.eval_scenes)
    before, after = vm.measure(reference, held, scenes), vm.measure(vae, held, scenes, reference)
    print(vm.table([("shipped VAE", before), ("fine-tuned (fp16)", after)]))
    if not vm.scene_goal_holds(after, before):
        print(
            f"not exported: scenes {after['scene_psnr_db']:.2f} dB, need >= {vm.SCENE_GOAL_DB} dB and "
            f">= {before['scene_psnr_db'] - vm.SCENE_SLACK_DB:.2f} dB (shipped {before['scene_psnr_db']:.2f} dB)"
        )
        return 1
    if encoder_changed(vae, reference) and not args.allow_encoder_change:
        print(
            f"not exported: the encoder changed (scene latent drift {after['scene_latent_drift']:.3f}); the UNets "
            "and latent_rgb.json must be re-aligned first (pass --allow-encoder-change once they are)"
        )
        return 1
    tmp = Path(args.out) / ".vae-export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_shipped(vae, tmp)
    for folder in sorted(Path(args.out).glob("builtin*/vae")):
        # The weights change; the config keeps the shipped latent scaling factor (the VAE was built
        # from the shipped config), its channels are the widened ones if --widen made it.
        for name in ("diffusion_pytorch_model.safetensors", "config.json"):
            shutil.copyfile(tmp / name, folder / name)
        print(f"wrote {folder}")
    shutil.rmtree(tmp)
    return 0


def samples(args: argparse.Namespace) -> int:
    import torch

    from tools.builtin_model.vae_samples import sample_report

    torch.set_num_threads(args.threads)
    reference = vm.load_vae(Path(args.vae))
    vae = as_shipped(vae_from_checkpoint(Path(args.checkpoint), Path(args.vae)))
    photo_path = Path(args.photo) if args.photo else photo_data.image_files([Path(args.heldout)])[0]
    photo = photo_data.load_rgb(photo_path, 256)
    s = min(photo.shape[:2])
    photo = np.ascontiguousarray(photo[:s, :s])
    report = sample_report(
        Path(args.model), [reference, vae], ["shipped", "fine-tuned"], photo, Path(args.picture), args.steps
    )
    print(json.dumps(report, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.builtin_model.photo_vae", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="copy the listed photographs out of installed Debian packages")
    c.add_argument("--out", default="work_tmp/photos")
    c.add_argument(
        "--root", action="append", default=None, help="where packages live (default /); repeatable"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--heldout", required=True, help="folder of held-out photos (never trained on)")
    common.add_argument("--vae", default=str(vm.SHIPPED_VAE), help="the shipped VAE folder")
    common.add_argument("--eval-scenes", type=int, default=64)
    common.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("train", parents=[common])
    t.add_argument("--photos", nargs="+", required=True, help="folders of training photos")
    t.add_argument("--work", default="checkpoints/photo_vae")
    t.add_argument("--stage", choices=("decoder", "full"), default="decoder")
    t.add_argument("--steps", type=int, default=20_000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--crop", type=int, default=64)
    t.add_argument(
        "--mosaic",
        type=int,
        default=1,
        help="each photo sample is N x N crops of unrelated photos and colour fields (scenes: crops of N x --crop)",
    )
    t.add_argument(
        "--widen",
        type=int,
        default=1,
        help="start from a VAE with this many times the channels, the same function (vae_widen.py)",
    )
    t.add_argument(
        "--whole-fraction",
        type=float,
        default=0.0,
        help="with --mosaic: share of the photo samples that stay one picture (photo crop or colour field)",
    )
    t.add_argument("--scene-fraction", type=float, default=0.25)
    t.add_argument("--scenes", type=int, default=512, help="rendered scenes in the training pool")
    t.add_argument("--lr", type=float, default=3e-4, help="learning rate of the decoder")
    t.add_argument("--encoder-lr", type=float, default=1e-3, help="learning rate of the encoder (stage full)")
    t.add_argument(
        "--colour-fraction", type=float, default=0.0, help="share of the batch that is colour fields"
    )
    t.add_argument(
        "--init", help="start from this checkpoint's weights (when the stage has no checkpoint yet)"
    )
    t.add_argument(
        "--anchor", type=float, default=10.0, help="weight of the scene-latent anchor (stage full)"
    )
    t.add_argument(
        "--lab-weight", type=float, default=0.0, help="weight of the CIELAB L1 of quarter-size images"
    )
    t.add_argument(
        "--shipped-encoder",
        action="store_true",
        help="stage decoder: the shipped encoder (not --init's), so the latents stay the shipped ones",
    )
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fp32 weights)")
    t.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="keep an EMA of the weights with this decay per step (e.g. 0.999) and measure it; 0: off",
    )
    t.add_argument("--eval-every", type=int, default=300)
    t.add_argument("--ckpt-minutes", type=float, default=3.0)
    e = sub.add_parser("evaluate", parents=[common])
    e.add_argument("--checkpoint", nargs="*", default=[])
    e.add_argument("--picture", help="write originals over reconstructions here (PNG)")
    e.add_argument("--json", help="write the measurements here")
    x = sub.add_parser("export", parents=[common])
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--out", default="resources/models", help="folder holding builtin*/vae")
    x.add_argument("--allow-encoder-change", action="store_true")
    s = sub.add_parser(
        "samples", parents=[common], help="txt2img and img2img through the shipped and new VAE"
    )
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--model", default="resources/models/builtin")
    s.add_argument("--photo", help="held-out photo for img2img (default: the first in --heldout)")
    s.add_argument("--picture", default="work_tmp/vae-samples.png")
    s.add_argument("--steps", type=int, default=20)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Before torch loads: OpenMP threads that sleep instead of spinning when the partner core is
    # busy, the engine's setting (see PHOTO_VAE.md for what it did to a training step here).
    set_openmp_defaults()
    args = build_parser().parse_args(argv)
    if args.command == "collect":
        roots = [Path(r) for r in (args.root or ["/"])]
        print(f"{len(photo_data.collect(Path(args.out), roots))} photographs in {args.out}")
        return 0
    if args.command == "train":
        train(args)
        return 0
    if args.command == "evaluate":
        evaluate(args)
        return 0
    if args.command == "samples":
        return samples(args)
    return export(args)


if __name__ == "__main__":
    sys.exit(main())

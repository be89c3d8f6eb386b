"""Round-trip measurements of a VAE: held-out photographs (PSNR, CIEDE2000), rendered scenes (PSNR),
and how far the encoder's latents moved from the shipped VAE's (what the UNets were trained on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from canvas_app.core.colour import mean_delta_e, psnr

SHIPPED_VAE = Path("resources/models/builtin/vae")
SCENE_GOAL_DB = 30.0  # the model card's promise on its own scenes
SCENE_SLACK_DB = 0.5  # an export may cost the scenes at most this much
PHOTO_GOAL_DB, PHOTO_GOAL_DE = 26.0, 3.0


def load_vae(folder: Path = SHIPPED_VAE):
    """The VAE in fp32 (the engine upcasts the fp16 weights the same way on a CPU)."""
    import torch
    from diffusers import AutoencoderKL

    from canvas_app.engine.models import dtype_kwarg

    return AutoencoderKL.from_pretrained(folder, **{dtype_kwarg(): torch.float32}).eval()


def to_tensor(images: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def encode(vae, images: np.ndarray):
    """Latents as the engine makes them: the posterior's mode (``canvas_app.engine.images``)."""
    return vae.encode(to_tensor(images)).latent_dist.mode()


def round_trip(vae, images: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions (uint8) and latents of a stack of same-sized uint8 images."""
    import torch

    recs, lats = [], []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            z = encode(vae, images[i : i + batch])
            recs.append(to_uint8(vae.decode(z).sample))
            lats.append(z.numpy())
    return np.concatenate(recs), np.concatenate(lats)


def decode(vae, latents: np.ndarray, batch: int = 16) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return np.concatenate(
            [
                to_uint8(vae.decode(torch.from_numpy(latents[i : i + batch])).sample)
                for i in range(0, len(latents), batch)
            ]
        )


def measure(vae, photos: dict[str, np.ndarray], scenes: np.ndarray, reference=None) -> dict:
    """Per-photo PSNR and mean CIEDE2000, scene PSNR, and (given the shipped VAE) the latent drift:
    RMS of the change of the scaled latents over their RMS."""
    out: dict = {"photos": {}}
    drift_photo = []
    for name, img in photos.items():
        rec, z = round_trip(vae, img[None])
        out["photos"][name] = {"psnr_db": psnr(rec[0], img), "delta_e00": mean_delta_e(rec[0], img)}
        if reference is not None:
            drift_photo.append(_drift(z, round_trip(reference, img[None])[1]))
    out.update(context_shift(vae))
    values = list(out["photos"].values())
    out["photo_psnr_db"] = float(np.mean([v["psnr_db"] for v in values]))
    out["photo_delta_e00"] = float(np.mean([v["delta_e00"] for v in values]))
    rec, z = round_trip(vae, scenes)
    scene_db = [psnr(a, b) for a, b in zip(rec, scenes)]
    out["scene_psnr_db"], out["scene_psnr_db_min"] = float(np.mean(scene_db)), float(np.min(scene_db))
    if reference is not None:
        _, z_ref = round_trip(reference, scenes)
        out["scene_latent_drift"] = _drift(z, z_ref)
        out["photo_latent_drift"] = float(np.mean(drift_photo))
        # What txt2img sees: the UNets make latents like the shipped encoder's, decoded by the new decoder.
        decoded = decode(vae, z_ref)
        out["scene_psnr_db_shipped_latents"] = float(np.mean([psnr(a, b) for a, b in zip(decoded, scenes)]))
    return out


# Flat colours a photo holds (bark, shadow, skin, sky, ...) and neighbours the scenes are full of.
CONTEXT_COLOURS = (
    (110, 80, 50),
    (60, 60, 60),
    (200, 180, 160),
    (150, 170, 200),
    (30, 25, 20),
    (180, 120, 90),
)
CONTEXT_NEIGHBOURS = ((78, 168, 73), (250, 250, 250), (20, 20, 30), (220, 60, 50))


def context_shift(vae, width: int = 256) -> dict:
    """How much a flat colour's round trip depends on the rest of the picture (GroupNorm normalises
    each picture as a whole): mean CIEDE2000 of the left half's centre, the colour alone and with
    each neighbour filling the right half, to the true colour."""
    alone, beside = [], []
    for colour in CONTEXT_COLOURS:
        pictures = np.empty((1 + len(CONTEXT_NEIGHBOURS), 64, width, 3), np.uint8)
        pictures[:] = colour
        for i, neighbour in enumerate(CONTEXT_NEIGHBOURS, 1):
            pictures[i, :, width // 2 :] = neighbour
        rec, _ = round_trip(vae, pictures)
        truth = pictures[0, 16:48, 16:48]
        errors = [mean_delta_e(r[16:48, 16:48], truth) for r in rec]
        alone.append(errors[0])
        beside.extend(errors[1:])
    return {"flat_delta_e00": float(np.mean(alone)), "flat_beside_delta_e00": float(np.mean(beside))}


def _drift(z: np.ndarray, z_ref: np.ndarray) -> float:
    return float(np.sqrt(((z - z_ref) ** 2).mean()) / np.sqrt((z_ref**2).mean()))


def scene_goal_holds(after: dict, before: dict) -> bool:
    """Scenes keep >= 30 dB and lose at most 0.5 dB, through the new encoder and (once it changed)
    from the shipped encoder's latents as well."""
    floor = max(SCENE_GOAL_DB, before["scene_psnr_db"] - SCENE_SLACK_DB)
    keys = ("scene_psnr_db", "scene_psnr_db_shipped_latents")
    return all(after[k] >= floor for k in keys if k in after)


def table(rows: list[tuple[str, dict]]) -> str:
    """A markdown table: one row per VAE, then one per held-out photo."""
    head = (
        "| | photos PSNR | photos ΔE00 | scenes PSNR (min) | scenes from shipped latents | scene latent drift |"
        "\n|---|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for label, m in rows:
        drift = f"{m['scene_latent_drift']:.3f}" if "scene_latent_drift" in m else "-"
        shipped = m.get("scene_psnr_db_shipped_latents")
        lines.append(
            f"| {label} | {m['photo_psnr_db']:.2f} dB | {m['photo_delta_e00']:.2f} | "
            f"{m['scene_psnr_db']:.2f} dB ({m['scene_psnr_db_min']:.2f}) | "
            f"{'-' if shipped is None else f'{shipped:.2f} dB'} | {drift} |"
        )
    lines += ["", "| held-out photo | " + " | ".join(label for label, _ in rows) + " |"]
    lines.append("|---" + "|---:" * len(rows) + "|")
    for name in rows[0][1]["photos"]:
        cells = [
            f"{m['photos'][name]['psnr_db']:.2f} dB / ΔE {m['photos'][name]['delta_e00']:.2f}"
            for _, m in rows
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_picture(vaes: list, photos: dict[str, np.ndarray], path: Path, cell: int = 192) -> None:
    """Each held-out photo (centre square) over its reconstruction by each VAE, left to right."""
    from PIL import Image

    columns = []
    for img in photos.values():
        s = min(img.shape[:2]) // 4 * 4
        y, x = (img.shape[0] - s) // 2, (img.shape[1] - s) // 2
        square = img[y : y + s, x : x + s]
        rows = [square] + [round_trip(v, square[None])[0][0] for v in vaes]
        columns.append(np.concatenate([np.asarray(Image.fromarray(r).resize((cell, cell))) for r in rows]))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(columns, axis=1)).save(path)

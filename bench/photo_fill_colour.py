"""Which colour correction for a photo fill: several, applied to the same candidates.

Run from the repository root: ``python -m bench.photo_fill_colour PHOTO_DIR --strengths 0.35,0.5
--vae CHECKPOINT`` (options as ``bench.photo_fill``; ``--masks 1`` by default: 8 fills). Each fill is
the built-in inpainting model (and with ``--vae`` the same UNet with that VAE) with masked content
"fill", colour correction off; every correction below is then applied to that one candidate, which
is composited by ``core.composite`` and measured as ``bench.photo_fill`` does:

- ``none``: the candidate as decoded;
- ``vae S``: plus the VAE's own colour cast, lowpass(input - decode(encode(input))), Gaussian sigma S px
  (the input: the crop with its mask filled, what the run started from);
- ``lowpass S``: plus lowpass(input - candidate): the candidate's low frequencies replaced by the
  input's (what ``engine.images.correct_colours`` does, S = its COLOR_CORRECTION_SIGMA);
- ``lab crop``: the candidate's CIELAB mean and standard deviation over the crop matched to the
  input's (A1111's colour correction matches the histogram of the whole image in LAB).

Every correction changes the whole crop: ``core.composite`` then matches the mean colour along the
seam, outside the mask, and a correction of the mask alone would be shifted by what it left there.
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench import photo_fill as pf  # noqa: E402
from canvas_app.core.composite import composite  # noqa: E402
from canvas_app.core.document import Document  # noqa: E402
from canvas_app.core.frame_plan import plan_frame  # noqa: E402


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _rgb(lab: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB) * 255.0, 0, 255)


def _match(lab: np.ndarray, ref: np.ndarray, src: np.ndarray, at: np.ndarray) -> np.ndarray:
    out = lab.copy()
    mu, sd = lab[src].mean(0), lab[src].std(0) + 1e-3
    out[src] = (lab[src] - mu) / sd * (ref[at].std(0) + 1e-3) + ref[at].mean(0)
    return out


def corrections(raw: np.ndarray, filled: np.ndarray, roundtrip: np.ndarray, regen: np.ndarray) -> dict:
    """Every correction of one decoded candidate ``raw`` (HxWx3 uint8)."""
    raw_f, filled_f = raw.astype(np.float32), filled.astype(np.float32)

    def blur(x: np.ndarray, sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    out: dict[str, np.ndarray] = {"none": raw_f}
    for s in (4, 8, 16):
        out[f"vae {s}"] = raw_f + blur(filled_f - roundtrip.astype(np.float32), s)
    for s in (4, 8):
        out[f"lowpass {s}"] = raw_f + blur(filled_f - raw_f, s)
    everywhere = np.ones(regen.shape, bool)
    out["lab crop"] = _rgb(_match(_lab(raw), _lab(filled), everywhere, everywhere))
    return {k: np.clip(np.rint(v), 0, 255).astype(np.uint8) for k, v in out.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from canvas_app.engine import images
    from canvas_app.engine.api import CancelToken, Finished
    from canvas_app.engine.infill import infill
    from canvas_app.engine.local import LocalDiffusersEngine

    engine = LocalDiffusersEngine(device=args.device, previews=False)
    models = {"builtin": "builtin"}
    if args.vae:
        models[f"builtin + {Path(args.vae).stem}"] = str(pf.model_with_vae(Path(args.vae), args.tmp))
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = {p.stem: pf.load_photo(p) for p in files[: args.count]}
    rngs = {n: np.random.default_rng([zlib.crc32(n.encode()), args.seed]) for n in photos}
    fills = []  # the same masks as bench.photo_fill
    for k in range(args.masks):
        for name, photo in photos.items():
            rng = rngs[name]
            blob = pf.random_blob(rng)
            fx = int(rng.integers(pf.PADDING, photo.shape[1] - pf.FRAME - pf.PADDING)) // 8 * 8
            fy = int(rng.integers(pf.PADDING, photo.shape[0] - pf.FRAME - pf.PADDING)) // 8 * 8
            fills.append((k, photo, blob, fx, fy))
    results: dict[str, list[dict[str, float]]] = {}
    for label, model in models.items():  # one model at a time: no reloading
        for k, photo, blob, fx, fy in fills:
            mask = np.zeros(photo.shape[:2], np.uint8)
            mask[fy : fy + pf.FRAME, fx : fx + pf.FRAME] = blob
            for strength in args.strengths:
                doc = Document()
                doc.paste(0, 0, photo)
                frame = doc.add_frame(
                    x=fx, y=fy, w=pf.FRAME, h=pf.FRAME, prompt=args.prompt, steps=args.steps, model=model,
                    strength=strength, masked_content="fill",
                )  # fmt: skip
                doc.set_mask(fx, fy, blob)
                req = plan_frame(doc, frame, context_padding=pf.PADDING, seed=k).request(frame)
                events: list[Any] = []
                engine.generate(req, events.append, CancelToken())
                if not isinstance(events[-1], Finished):
                    raise SystemExit(f"inpaint failed: {events[-1]}")
                assert req.init_image is not None and req.mask is not None
                filled = infill(
                    np.ascontiguousarray(req.init_image[..., :3]), req.mask > 0, "telea", req.seed
                )
                loaded = engine.load(model, inpaint=True)
                with torch.inference_mode():
                    roundtrip = images.decode(loaded, images.encode(loaded, filled, 128), 128)
                cx, cy = req.origin
                for name, candidate in corrections(
                    events[-1].candidates[0], filled, roundtrip, req.mask
                ).items():
                    out, _ = composite(req.init_image, candidate, req.mask, req.feather)
                    full = photo.copy()
                    full[cy : cy + req.height, cx : cx + req.width] = out[..., :3]
                    row = pf.measure(full, photo, mask > 0)
                    results.setdefault(f"{label} fill@{strength:g} {name}", []).append(row)
            print(f"{label}: fill {len(next(iter(results.values())))}", flush=True)
    summary = {m: pf.summarise(r) | {"seconds_per_fill": 0.0} for m, r in results.items()}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    print(pf.table(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("--photos", dest="count", type=int, default=8)
    parser.add_argument("--masks", type=int, default=1)
    parser.add_argument("--strengths", default="0.35,0.5")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--prompt", default="")
    parser.add_argument("--vae")
    parser.add_argument("--tmp", type=Path, default=Path("work_tmp/photo_fill"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    args.strengths = [float(s) for s in args.strengths.split(",")]
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

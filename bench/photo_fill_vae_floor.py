"""What the VAE alone allows in bench/photo_fill.py: each original round-tripped through a VAE
(no UNet, no colour matching at accept), measured in the bench's own masks.

Run from the repository root: ``python -m bench.photo_fill_vae_floor work_tmp/photos/heldout``
(``--vae FOLDER``, default the shipped ``resources/models/builtin/vae``). A fill decoded by that VAE
cannot carry more texture than this round trip keeps.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np

from bench import photo_fill as pf


def floor(photos_dir: Path, vae_dir: Path, count: int = 8, masks: int = 2, seed: int = 0) -> dict[str, float]:
    from tools.builtin_model import vae_measure as vm

    vae = vm.load_vae(vae_dir)
    files = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = {p.stem: pf.load_photo(p) for p in files[:count]}
    rngs = {n: np.random.default_rng([zlib.crc32(n.encode()), seed]) for n in photos}
    rows = []
    for _ in range(masks):  # the bench's order and draws: masks outer, photos inner
        for name, photo in photos.items():
            rng = rngs[name]
            blob = pf.random_blob(rng)
            fx = int(rng.integers(pf.PADDING, photo.shape[1] - pf.FRAME - pf.PADDING)) // 8 * 8
            fy = int(rng.integers(pf.PADDING, photo.shape[0] - pf.FRAME - pf.PADDING)) // 8 * 8
            size = pf.FRAME + 2 * pf.PADDING
            crop = photo[fy - pf.PADDING : fy - pf.PADDING + size, fx - pf.PADDING : fx - pf.PADDING + size]
            rec, _ = vm.round_trip(vae, crop[None])
            inside = np.zeros((size, size), bool)
            inside[pf.PADDING : pf.PADDING + pf.FRAME, pf.PADDING : pf.PADDING + pf.FRAME] = blob > 0
            rows.append(pf.measure(rec[0], crop, inside))
    return pf.summarise(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("--vae", type=Path, default=Path("resources/models/builtin/vae"))
    parser.add_argument("--masks", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(floor(args.photos, args.vae, masks=args.masks), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Exactness and seam bench: 20 inpaints in a row on photographs, through the app's own path.

Run from the repository root: ``python -m bench.exactness PHOTO_DIR`` (JPEG/PNG photos, e.g. from
Debian's wallpaper packages: ``apt-get install mate-backgrounds``; the photos are not shipped).
Options: ``--photos N`` (default 3), ``--inpaints 20``, ``--steps 4``, ``--model builtin``,
``--device cpu``.

Each photo is scaled to 256x192 and put on an empty canvas at (0, 0). Twenty inpaints follow, each
planned by ``core.frame_plan`` (64 px frames, 32 px context), run by the real engine and accepted
by ``core.composite``. The frames cycle through positions flush with the photo's border (their
context hangs over empty canvas) and inside it; the masks through blobs inside the frame and
rectangles touching the frame's edge. Every generated crop is also composited the way the code did
before issue 13 (feather over the mask *plus the empty context*, then only the frame written: the
feather cut at the frame edge), into a second document, so both are measured on the same crops.

Printed per photo and in total:

- pixels changed outside the union of the feathered masks (goal 0);
- the colour step across the seam: mean CIEDE2000 between the 4-px rings just inside and just
  outside the edge of each inpaint's written area, per boundary segment, and the same rings in the
  original photo (``core.seams.ring_steps``: the app's own seam check measures the same way);
- the 1-px colour step across the frame edge where a mask touches it (CIEDE2000 of the pixel pairs
  straddling the edge), in the result and in the original photo.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from canvas_app.core.colour import ciede2000, srgb_to_lab  # noqa: E402
from canvas_app.core.composite import accept_candidate, color_match, feather_alpha  # noqa: E402
from canvas_app.core.document import Document  # noqa: E402
from canvas_app.core.frame_plan import EMPTY_ALPHA, plan_frame  # noqa: E402
from canvas_app.core.seams import ring_steps, seam_geometry  # noqa: E402

PHOTO_W, PHOTO_H, FRAME, PADDING = 256, 192, 64, 32


# -- colour ---------------------------------------------------------------------------------------
def lab(rgb: np.ndarray) -> np.ndarray:
    return srgb_to_lab(rgb[..., :3])


def seam_step(image: np.ndarray, written: np.ndarray) -> float | None:
    """The ring seam of core.seams (the app's own seam check): mean over the boundary segments of
    ``written`` of the CIEDE2000 between the 4-px rings just inside and just outside it."""
    steps = ring_steps(seam_geometry(written.astype(np.uint8) * 255, gap=0), image)
    return None if np.isnan(steps).all() else float(np.nanmean(steps))


# -- the code before issue 13, as a reference ----------------------------------------------------
def legacy_accept(
    doc: Document, frame_rect: tuple[int, int, int, int], req: Any, image: np.ndarray
) -> np.ndarray:
    """Composite the way the engine and accept did before: the empty context counted as regenerated
    and was feathered with the mask, and only the frame's part was written. Returns the written
    alpha over the crop."""
    cx, cy = req.origin
    init = doc.image.read(cx, cy, req.width, req.height)
    empty = init[..., 3] < EMPTY_ALPHA
    mask = np.maximum(req.mask, empty.astype(np.uint8) * 255)
    alpha = feather_alpha(mask, req.feather)
    alpha[empty] = 255
    rgb = color_match(image, init, alpha, ~empty)
    new = np.dstack([rgb, np.full(alpha.shape, 255, np.uint8)])
    a = alpha.astype(np.uint32)[..., None]
    out = ((new.astype(np.uint32) * a + init.astype(np.uint32) * (255 - a) + 127) // 255).astype(np.uint8)
    out[alpha == 0] = init[alpha == 0]
    fx, fy, fw, fh = frame_rect
    ox, oy = fx - cx, fy - cy
    doc.paste(fx, fy, out[oy : oy + fh, ox : ox + fw])
    written = np.zeros_like(alpha)
    written[oy : oy + fh, ox : ox + fw] = alpha[oy : oy + fh, ox : ox + fw]
    return written


# -- the run ----------------------------------------------------------------------------------------
def load_photo(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    h, w = bgr.shape[:2]
    scale = max(PHOTO_W / w, PHOTO_H / h)
    small = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y0, x0 = (small.shape[0] - PHOTO_H) // 2, (small.shape[1] - PHOTO_W) // 2
    rgb = cv2.cvtColor(small[y0 : y0 + PHOTO_H, x0 : x0 + PHOTO_W], cv2.COLOR_BGR2RGB)
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


FRAMES = [(0, 0), (PHOTO_W - FRAME, PHOTO_H - FRAME), (96, 0), (0, 64), (96, 64), (PHOTO_W - FRAME, 0)]


def edge_pairs(frame: tuple[int, int], rect: tuple[int, int, int, int], kind: int) -> list[tuple[Any, Any]]:
    """Canvas pixel pairs (outside, inside) straddling the frame edge along a mask that touches it."""
    fx, fy = frame
    mx, my, mw, mh = rect
    pairs: list[tuple[Any, Any]] = []
    if kind == 1:
        pairs += [((fx - 1, fy + y), (fx, fy + y)) for y in range(my, my + mh)]
    if kind == 2:
        pairs += [((fx + x, fy - 1), (fx + x, fy)) for x in range(mx, mx + mw)]
    if kind == 3:
        pairs += [((fx + FRAME, fy + y), (fx + FRAME - 1, fy + y)) for y in range(my, my + mh)]
        pairs += [((fx + x, fy + FRAME), (fx + x, fy + FRAME - 1)) for x in range(mx, mx + mw)]
    return pairs


def edge_step(
    image: np.ndarray, pairs: list[tuple[Any, Any]], view: tuple[int, int, int, int]
) -> list[float]:
    """CIEDE2000 of each pair (1 px apart across the frame edge) where both pixels have content."""
    vx, vy = view[0], view[1]
    colours = lab(image)
    out = []
    for (ax, ay), (bx, by) in pairs:
        a, b = (ay - vy, ax - vx), (by - vy, bx - vx)
        if image[a][3] >= EMPTY_ALPHA and image[b][3] >= EMPTY_ALPHA:
            out.append(float(ciede2000(colours[a], colours[b])))
    return out


def mask_rect(i: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """In frame coordinates: a blob inside, or a rectangle touching one or two frame edges."""
    w, h = (int(v) for v in rng.integers(10, 28, 2))
    kind = i % 4
    if kind == 0:
        return int(rng.integers(16, FRAME - 16 - w)), int(rng.integers(16, FRAME - 16 - h)), w, h
    if kind == 1:
        return 0, int(rng.integers(8, FRAME - h - 8)), w, h  # touches the left edge
    if kind == 2:
        return int(rng.integers(8, FRAME - w - 8)), 0, w, h  # touches the top edge
    return FRAME - w, FRAME - h, w, h  # touches the right and bottom edges


def run_photo(engine: Any, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from canvas_app.engine.api import CancelToken, Finished

    photo = load_photo(path)
    new_doc, old_doc = Document(), Document()
    for doc in (new_doc, old_doc):
        doc.paste(0, 0, photo)
    view = (-PADDING, -PADDING, PHOTO_W + 2 * PADDING, PHOTO_H + 2 * PADDING)
    original = new_doc.image.read(*view)
    allowed = np.zeros(original.shape[:2], bool)
    steps_new: list[float] = []
    steps_old: list[float] = []
    steps_orig: list[float] = []
    edges: dict[str, list[float]] = {"new": [], "old": [], "photo": []}
    rng = np.random.default_rng(len(path.name))
    for i in range(args.inpaints):
        fx, fy = FRAMES[i % len(FRAMES)]
        mx, my, mw, mh = mask_rect(i, rng)
        frame = new_doc.add_frame(
            x=fx, y=fy, w=FRAME, h=FRAME, prompt="a photo", steps=args.steps, model=args.model
        )
        new_doc.clear_mask()
        new_doc.fill_mask(fx + mx, fy + my, mw, mh)
        plan = plan_frame(new_doc, frame, context_padding=PADDING, seed=i)
        req = plan.request(frame)
        events: list[Any] = []
        engine.generate(req, events.append, CancelToken())
        finished = events[-1]
        if not isinstance(finished, Finished):
            raise SystemExit(f"{path.name}: run {i} failed: {finished}")
        image = finished.candidates[0]
        accept_candidate(new_doc, frame.id, frame.rect, req, image, finished.seeds[0])
        written_old = legacy_accept(old_doc, frame.rect, req, image)
        # What this inpaint may change: its mask's feather over the crop.
        feathered = feather_alpha(req.mask, req.feather) > 0
        cx, cy = req.origin
        ox, oy = cx - view[0], cy - view[1]
        sl = (slice(oy, oy + req.height), slice(ox, ox + req.width))
        allowed[sl] |= feathered
        written_new = np.zeros(original.shape[:2], bool)
        written_new[sl] = feathered
        wold = np.zeros(original.shape[:2], bool)
        wold[sl] = written_old > 0
        for doc, written, out in ((new_doc, written_new, steps_new), (old_doc, wold, steps_old)):
            step = seam_step(doc.image.read(*view), written)
            if step is not None:
                out.append(step)
        step = seam_step(original, written_new)
        if step is not None:
            steps_orig.append(step)
        pairs = edge_pairs((fx, fy), (mx, my, mw, mh), i % 4)
        for key, doc in (("new", new_doc), ("old", old_doc)):
            edges[key] += edge_step(doc.image.read(*view), pairs, view)
        edges["photo"] += edge_step(original, pairs, view)
        new_doc.remove_frame(frame.id)

    def changed_outside(doc: Document) -> tuple[int, int, int]:
        """Pixels changed outside every feathered mask, their largest difference and distance (px)
        from the nearest feathered mask."""
        after = doc.image.read(*view)
        diff = (after != original).any(axis=2) & ~allowed
        if not diff.any():
            return 0, 0, 0
        dist = cv2.distanceTransform((~allowed).astype(np.uint8), cv2.DIST_L2, 5)
        biggest = int(np.abs(after[diff].astype(int) - original[diff]).max())
        return int(diff.sum()), biggest, int(dist[diff].max())

    new_changed, new_max, new_far = changed_outside(new_doc)
    old_changed, old_max, old_far = changed_outside(old_doc)
    return dict(
        photo=path.name,
        new_changed=new_changed,
        new_max=new_max,
        new_far=new_far,
        old_changed=old_changed,
        old_max=old_max,
        old_far=old_far,
        seam_new=float(np.mean(steps_new)),
        seam_old=float(np.mean(steps_old)),
        seam_orig=float(np.mean(steps_orig)),
        edge_new=float(np.mean(edges["new"])),
        edge_old=float(np.mean(edges["old"])),
        edge_orig=float(np.mean(edges["photo"])),
        edge_pairs=len(edges["photo"]),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path, help="a folder of JPEG/PNG photographs")
    parser.add_argument("--photos", dest="count", type=int, default=3)
    parser.add_argument("--inpaints", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no photos in {args.photos}")
    from canvas_app.engine.local import LocalDiffusersEngine

    engine = LocalDiffusersEngine(device=args.device, previews=False)
    print(
        f"{args.inpaints} inpaints per photo, {args.steps} steps, model {args.model}, {engine.describe_device()}"
    )
    print(
        f"{'photo':32s} changed outside the feather: px (max diff, max distance)   "
        "ring seam ΔE00 new / old / photo   frame-edge step ΔE00 new / old / photo"
    )
    rows = []
    start = time.perf_counter()
    for path in files[: args.count]:
        r = run_photo(engine, path, args)
        rows.append(r)
        print(
            f"{r['photo'][:32]:32s} new {r['new_changed']:6d} ({r['new_max']:3d}, {r['new_far']:3d} px)  "
            f"old {r['old_changed']:6d} ({r['old_max']:3d}, {r['old_far']:3d} px)   "
            f"{r['seam_new']:5.2f} / {r['seam_old']:5.2f} / {r['seam_orig']:5.2f}   "
            f"{r['edge_new']:5.2f} / {r['edge_old']:5.2f} / {r['edge_orig']:5.2f} ({r['edge_pairs']} pairs)"
        )
    print(
        f"{'total':32s} new {sum(r['new_changed'] for r in rows):6d}                 old "
        f"{sum(r['old_changed'] for r in rows):6d}                 "
        f"{np.mean([r['seam_new'] for r in rows]):5.2f} / {np.mean([r['seam_old'] for r in rows]):5.2f} / "
        f"{np.mean([r['seam_orig'] for r in rows]):5.2f}   "
        f"{np.mean([r['edge_new'] for r in rows]):5.2f} / {np.mean([r['edge_old'] for r in rows]):5.2f} / "
        f"{np.mean([r['edge_orig'] for r in rows]):5.2f}   ({time.perf_counter() - start:.0f} s)"
    )
    return 0 if all(r["new_changed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

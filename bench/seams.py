"""Seam bench: the seam check and "Repair Seam" on photographs, through the app's own path.

Run from the repository root: ``python -m bench.seams PHOTO_DIR [PHOTO_DIR ...]`` (JPEG/PNG photos,
e.g. Debian's wallpapers; not shipped). Options: ``--photos N`` (default 8), ``--inpaints 2`` per
photo, ``--steps 8``, ``--strengths 0.5`` (comma separated: the repair is run at each),
``--kind offset`` (instead of the model's result, the photo's own pixels with a colour offset: a seam
by construction), ``--result-strength 0.75`` (the inpaint's; low values keep the photo: near-seamless
results, where a flag is likely one a person would not see),
``--grid docs/images/seams.png``, ``--device cpu``.

Each photo is scaled to 256x192 and put on an empty canvas. Each case is a fresh document: a 64 px
frame inside the photo, a mask (rectangle or ellipse, 16-40 px) inside it, planned by
``core.frame_plan`` with 32 px context, run by the real engine (the built-in model) and checked by
``core.seams.check_candidate`` exactly as the app checks a staged result. Where a seam is flagged,
the repair is planned with the check's band (``plan_frame(mask=...)``) at the repair strength, run,
composited like an accept, and the same rings measured again.

Printed: per case the segments measured and flagged, the step (mean ΔE00 over the flagged segments)
in the original, the result and the repair; in total how often a seam was flagged at thresholds
3/5/8, and the steps. The grid shows every flagged case (original | result, seam outlined | repair):
look at it to judge which flags a person would see.
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

from bench.exactness import load_photo  # noqa: E402
from canvas_app.core.composite import preview_candidate  # noqa: E402
from canvas_app.core.document import Document  # noqa: E402
from canvas_app.core.frame_plan import plan_frame  # noqa: E402
from canvas_app.core.seams import (  # noqa: E402
    REPAIR_STRENGTH,
    SEAM_THRESHOLD,
    SeamCheck,
    check_candidate,
)

# The built-in model knows shapes and settings, not "photo": an empty prompt (its own guess).
FRAME, PADDING, PROMPT = 64, 32, ""
FRAMES = [(32, 32), (160, 32), (96, 64), (32, 96), (160, 96)]


def mask_for(case: int, rng: np.random.Generator) -> np.ndarray:
    """A FRAMExFRAME mask: a rectangle or an ellipse, 16-40 px, inside the frame."""
    mask = np.zeros((FRAME, FRAME), np.uint8)
    w, h = (int(v) for v in rng.integers(16, 41, 2))
    x, y = int(rng.integers(8, FRAME - 8 - w + 1)), int(rng.integers(8, FRAME - 8 - h + 1))
    if case % 2 == 0:
        mask[y : y + h, x : x + w] = 255
    else:
        cv2.ellipse(mask, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 255, -1)
    return mask


def run(engine: Any, request: Any) -> np.ndarray:
    from canvas_app.engine.api import CancelToken, Finished

    events: list[Any] = []
    engine.generate(request, events.append, CancelToken())
    if not isinstance(events[-1], Finished):
        raise SystemExit(f"run failed: {events[-1]}")
    return np.asarray(events[-1].candidates[0])


def composited(doc: Document, check: SeamCheck, request: Any, image: np.ndarray) -> np.ndarray:
    """The check's window of the document with ``image`` composited as an accept would."""
    window = doc.image.read(*check.window)
    preview = preview_candidate(doc, request, image)
    ox, oy = request.origin[0] - check.origin[0], request.origin[1] - check.origin[1]
    region = window[oy : oy + request.height, ox : ox + request.width]
    written = preview[..., 3] > 0
    region[written] = preview[written]
    return window


def outlined(image: np.ndarray, check: SeamCheck) -> np.ndarray:
    """RGB (empty canvas grey), 2x larger, with the flagged segments drawn in red."""
    rgb = np.where(image[..., 3:] > 0, image[..., :3], 128).astype(np.uint8)
    big = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    for line in check.polylines():
        pts = ((line - np.array(check.origin)) * 2).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(big, [pts], False, (255, 0, 0), 1)
    return big


def run_case(engine: Any, photo: np.ndarray, case: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(case)
    doc = Document()
    doc.paste(0, 0, photo)
    fx, fy = FRAMES[case % len(FRAMES)]
    frame = doc.add_frame(x=fx, y=fy, w=FRAME, h=FRAME, prompt=PROMPT, steps=args.steps, model="builtin")
    doc.mask.write(fx, fy, mask_for(case, rng))
    plan = plan_frame(doc, frame, context_padding=PADDING, seed=case)
    request = plan.request(frame, strength=args.result_strength)
    if args.kind == "offset":
        # The photo's own pixels, colour-shifted: a seam by construction (colour matching off).
        cx, cy = request.origin
        own = doc.image.read(cx, cy, request.width, request.height)[..., :3].astype(int)
        shift = rng.uniform(-1, 1, 3)
        shift = shift / np.abs(shift).max() * rng.uniform(15, 35)
        image = np.clip(own + shift, 0, 255).astype(np.uint8)
        request = request.with_changes(color_match=False)
    else:
        image = run(engine, request)
    check = check_candidate(doc, request, image)
    measured = ~np.isnan(check.after) & ~np.isnan(check.before)
    rise = (check.after - check.before)[measured]
    row: dict[str, Any] = dict(
        measured=int(measured.sum()),
        flagged=int(check.flagged.sum()),
        rises=rise,
        before=check.step("before"),
        after=check.step("after"),
        repaired={},
        new_seam={},
    )
    if not check.has_seam:
        return row
    result_window = composited(doc, check, request, image)
    original_window = doc.image.read(*check.window)
    # Accept the result, then repair: as the app does.
    from canvas_app.core.composite import accept_candidate

    accept_candidate(doc, frame.id, frame.rect, request, image, case)
    tiles = [outlined(original_window, check), outlined(result_window, check)]
    for strength in args.strengths:
        repair_plan = plan_frame(doc, frame, PADDING, seed=case + 1000, mask=(check.origin, check.band()))
        repair = repair_plan.request(frame, strength=strength)
        fixed = run(engine, repair)
        fixed_window = composited(doc, check, repair, fixed)
        row["repaired"][strength] = check.remeasure(fixed_window)
        row["new_seam"][strength] = check_candidate(doc, repair, fixed).has_seam
        if strength == args.strengths[0]:
            tiles.append(outlined(fixed_window, check))
    row["tiles"] = tiles
    return row


def flagged_at(rows: list[dict[str, Any]], threshold: float) -> str:
    cases = sum(bool((r["rises"] > threshold).any()) for r in rows)
    segs = sum(int((r["rises"] > threshold).sum()) for r in rows)
    total = sum(r["measured"] for r in rows)
    return f"ΔE00 > {threshold:g}: {cases}/{len(rows)} cases, {segs}/{total} segments"


def save_grid(rows: list[dict[str, Any]], path: Path) -> None:
    tiles = [r for r in rows if "tiles" in r]
    if not tiles:
        return
    rows_img = []
    for r in tiles:
        h = max(t.shape[0] for t in r["tiles"])
        cells = [np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0)), constant_values=255) for t in r["tiles"]]
        line = np.concatenate(cells, axis=1)
        label = f"{r['photo'][:22]} #{r['case']}: {r['after']:.1f} vs {r['before']:.1f}"
        line = np.pad(line, ((14, 4), (0, 0), (0, 0)), constant_values=255)
        cv2.putText(line, label, (2, 11), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1)
        rows_img.append(line)
    width = max(r.shape[1] for r in rows_img)
    rows_img = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows_img]
    # Two columns of cases keep the sheet readable.
    half = (len(rows_img) + 1) // 2
    left, right = rows_img[:half], rows_img[half:]
    lh, rh = sum(r.shape[0] for r in left), sum(r.shape[0] for r in right)
    if right:
        right.append(np.full((lh - rh, width, 3), 255, np.uint8))
        grid = np.concatenate(
            [np.concatenate(left), np.full((lh, 8, 3), 255, np.uint8), np.concatenate(right)], 1
        )
    else:
        grid = np.concatenate(left)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of JPEG/PNG photographs")
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--inpaints", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--strengths", default=str(REPAIR_STRENGTH))
    parser.add_argument("--kind", choices=("model", "offset"), default="model")
    parser.add_argument(
        "--result-strength", type=float, default=0.75, help="the inpaint's strength (the frame default)"
    )
    parser.add_argument("--grid", type=Path, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    args.strengths = [float(s) for s in args.strengths.split(",")]
    files = sorted(
        p
        for folder in args.folders
        for p in folder.iterdir()
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )[: args.photos]
    if not files:
        raise SystemExit("no photos")
    from canvas_app.engine.local import LocalDiffusersEngine

    engine = LocalDiffusersEngine(device=args.device, previews=False)
    print(
        f"{args.kind} results (strength {args.result_strength}), {len(files)} photos x {args.inpaints}, {args.steps} steps, repair strengths "
        f"{args.strengths}, threshold {SEAM_THRESHOLD}, {engine.describe_device()}"
    )
    print(f"{'photo':26s} case  segs flagged  step orig / result -> repaired (new seam)")
    rows = []
    start = time.perf_counter()
    for index, path in enumerate(files):
        photo = load_photo(path)
        for k in range(args.inpaints):
            case = index * args.inpaints + k
            row = run_case(engine, photo, case, args)
            row.update(photo=path.name, case=case)
            rows.append(row)
            fixed = "  ".join(
                f"{s:g}: {row['repaired'][s]:5.2f}{' (seam)' if row['new_seam'][s] else ''}"
                for s in row["repaired"]
            )
            print(
                f"{path.name[:26]:26s} {case:4d} {row['measured']:5d} {row['flagged']:7d}  "
                f"{row['before']:5.2f} / {row['after']:5.2f}  {('-> ' + fixed) if fixed else ''}",
                flush=True,
            )
    print("flagged: " + "; ".join(flagged_at(rows, t) for t in (3.0, SEAM_THRESHOLD, 8.0)))
    done = [r for r in rows if r["repaired"]]
    if done:
        print(
            f"flagged cases {len(done)}: step orig {np.mean([r['before'] for r in done]):.2f}, "
            f"result {np.mean([r['after'] for r in done]):.2f}, repaired "
            + ", ".join(
                f"{s:g}: {np.mean([r['repaired'][s] for r in done]):.2f} "
                f"(new seam in {sum(r['new_seam'][s] for r in done)})"
                for s in args.strengths
            )
        )
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.grid is not None:
        save_grid(rows, args.grid)
        print(f"grid: {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compose, then refine: one coherent picture in a frame larger than the model's native area.

Denoising a large frame in blended tiles (MultiDiffusion) leaves no seams, but every tile draws its
own picture: three horizons stacked in a 256 px landscape from a 128 px model. So a large frame runs
in two passes, the way artists' tools do it ("hires fix"):

1. **compose** the whole frame at about the model's native area, aspect kept (init image and
   regenerate mask downscaled), so the model lays out one scene;
2. **refine**: upscale that result (Lanczos) to full size and run the tiled, blended img2img over it
   at ``request.refine_strength``; for inpaint/outpaint only the request's mask is regenerated again
   (the upscaled composition fills it, everything else is the original init image).

Both passes are ordinary runs of the engine's own loop (``run_pass`` is ``LocalDiffusersEngine.
_generate``); this module only rewrites their requests and relays their events as one run: one
``Started`` with the work of both passes, ``Progress`` counted across both in tile-steps (one UNet
call on one tile; so that step / total is the share of the work done and the time-left estimate
holds) with pass-1 tile boxes in full-frame pixels, one ``Finished`` with the
refined crops and the caller's request (core composites them at accept, as for any run).

Very wide or tall frames: the composition keeps the native area but its short side never goes below
half the native size (a model draws little of use below that); past 4:1 the composition is itself
wider than native and runs tiled along its long side, which is what a panorama wants.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from canvas_app.core.frame_plan import empty_pixels
from canvas_app.engine.api import (
    CancelToken,
    EngineEvent,
    Finished,
    GenerationRequest,
    Mode,
    Progress,
    Started,
)

# (request, emit, cancel, request_id) -> None: runs one pass, raises RunCancelled / EngineError.
RunPass = Callable[[GenerationRequest, Callable[[EngineEvent], None], CancelToken, int], None]


# Up to 1.5x the native side (2.25x its area) blended tiles barely repeat, and that is the size of a
# native frame's inpaint or outpaint crop with its context padding: composing such a crop at a
# lower resolution would only soften the regenerated area. Larger frames compose first.
TWO_PASS_MIN_AREA_RATIO = 2.25


def compose_size(width: int, height: int, native: int, factor: int) -> tuple[int, int] | None:
    """The size of the composing pass for a width x height frame, or None when the frame is no
    larger than TWO_PASS_MIN_AREA_RATIO times the native area (one pass does it). Multiples of 8
    and of the VAE factor."""
    if width * height <= TWO_PASS_MIN_AREA_RATIO * native * native:
        return None
    grid = math.lcm(8, factor)
    scale = math.sqrt(native * native / (width * height))
    # Short side at least half the native size (see the module docstring: panoramas).
    scale = max(scale, (native / 2) / min(width, height))
    cw = max(grid, int(round(width * scale / grid)) * grid)
    ch = max(grid, int(round(height * scale / grid)) * grid)
    if cw >= width and ch >= height:
        return None
    return min(cw, width), min(ch, height)


def applies(request: GenerationRequest, native: int, factor: int) -> bool:
    return (
        request.large_frame == "two-pass"
        and compose_size(request.width, request.height, native, factor) is not None
    )


def resize_rgba(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize RGB or RGBA (premultiplied, so empty pixels' colours do not bleed into the edges)."""
    if image.shape[2] == 4:
        out = Image.fromarray(np.ascontiguousarray(image), "RGBA").convert("RGBa")
        return np.asarray(out.resize(size, Image.Resampling.LANCZOS).convert("RGBA")).copy()
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.LANCZOS)
    ).copy()


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale a regenerate mask so that every pixel touched by it stays regenerated (a thin
    stroke must not vanish at the composing size)."""
    box = np.asarray(Image.fromarray(np.ascontiguousarray(mask)).resize(size, Image.Resampling.BOX))
    return np.where(box > 0, 255, 0).astype(np.uint8)


def regen_of(request: GenerationRequest) -> np.ndarray:
    """The area a masked request regenerates: its mask, else (outpaint without one) its empty pixels."""
    assert request.init_image is not None
    if request.mask is not None:
        return request.mask.astype(np.uint8)
    return (empty_pixels(request.init_image) * 255).astype(np.uint8)


def compose_request(request: GenerationRequest, size: tuple[int, int]) -> GenerationRequest:
    cw, ch = size
    scale = cw / request.width
    changes: dict[str, Any] = dict(width=cw, height=ch, large_frame="tiled")
    if request.regions:
        # Regions are in the crop's pixels: the composition sees them at its own scale.
        sx, sy = cw / request.width, ch / request.height
        changes["regions"] = tuple(
            r.with_changes(
                x=int(round(r.x * sx)),
                y=int(round(r.y * sy)),
                w=max(1, int(round(r.w * sx))),
                h=max(1, int(round(r.h * sy))),
            )
            for r in request.regions
        )
    if request.init_image is not None:
        changes["init_image"] = resize_rgba(request.init_image, size)
    if request.mode in (Mode.INPAINT, Mode.OUTPAINT):
        changes["mask"] = resize_mask(regen_of(request), size)
        changes["feather"] = max(1, int(round(request.feather * scale))) if request.feather else 0
    return replace(request, **changes)


def refine_request(request: GenerationRequest, composed: np.ndarray, seed: int) -> GenerationRequest:
    """Pass 2 for one candidate: ``composed`` (the pass-1 crop) upscaled to full size."""
    up = np.asarray(
        Image.fromarray(composed).resize((request.width, request.height), Image.Resampling.LANCZOS)
    ).copy()
    common: dict[str, Any] = dict(
        seed=seed, batch=1, strength=request.refine_strength, large_frame="tiled", init_image=up
    )
    if request.mode in (Mode.TXT2IMG, Mode.IMG2IMG):
        return replace(request, mode=Mode.IMG2IMG, mask=None, **common)
    # Inpaint/outpaint: the composition fills the regenerated area and the empty pixels (context
    # that hangs over empty canvas: known to the model now, never composited); the rest is the
    # original init image, kept as the model's known context.
    assert request.init_image is not None
    regen = regen_of(request)
    init = request.init_image
    rgba = init if init.shape[2] == 4 else np.dstack([init, np.full(init.shape[:2], 255, np.uint8)])
    fill = (regen > 0) | empty_pixels(rgba)
    out = rgba.copy()
    out[fill, :3] = up[fill]
    out[fill, 3] = 255
    common["init_image"] = out
    # The masked area now holds the composition pass 2 refines: "fill" would paint it over again.
    return replace(request, mode=Mode.INPAINT, mask=regen, masked_content="original", **common)


class _Relay:
    """Relays one pass's events as part of the whole run."""

    def __init__(self, emit: Callable[[EngineEvent], None], request_id: int, total: int) -> None:
        self.emit, self.request_id, self.total = emit, request_id, total
        self.offset = 0  # work units done before this pass
        self.unit = 1  # work units per step of this pass: its tile count
        self.box_scale = (1.0, 1.0)
        self.finished: Finished | None = None

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, Progress):
            sx, sy = self.box_scale
            x, y, w, h = event.tile_box
            box = (round(x * sx), round(y * sy), round(w * sx), round(h * sy))
            self.emit(
                replace(
                    event,
                    request_id=self.request_id,
                    # one unit per tile, so the bar moves with every tile
                    step=self.offset + (event.step - 1) * self.unit + event.tile + 1,
                    total=self.total,
                    tile_box=box,
                )
            )
        elif isinstance(event, Finished):
            self.finished = event
        elif not isinstance(event, Started):
            self.emit(replace(event, request_id=self.request_id))


def _steps(model: Any, request: GenerationRequest, strength: float) -> int:
    from canvas_app.engine.sampler import prepare_timesteps
    from canvas_app.engine.schedulers import make_scheduler

    probe, _ = make_scheduler(request.scheduler, model.scheduler_config)
    return len(prepare_timesteps(probe, request.steps, strength, model.unet.device)[0])


def run(
    run_pass: RunPass,
    request: GenerationRequest,
    emit: Callable[[EngineEvent], None],
    cancel: CancelToken,
    request_id: int,
    model: Any,
) -> None:
    """Run ``request`` as compose + refine; emits Started, Progress..., Finished (or raises
    RunCancelled with the step counted across both passes)."""
    from canvas_app.engine.sampler import RunCancelled
    from canvas_app.engine.tiling import plan_tiles

    factor = model.vae_factor
    size = compose_size(request.width, request.height, model.native_size, factor)
    assert size is not None
    small = compose_request(request, size)
    first = _steps(model, small, 1.0 if small.mode is Mode.TXT2IMG else small.strength)
    second = _steps(model, request, request.refine_strength)
    tile = max(1, (request.tile_plan.tile_size or model.native_size) // factor)
    overlap = max(0, request.tile_plan.overlap // factor)
    tiles1 = len(plan_tiles(size[0] // factor, size[1] // factor, tile, overlap))
    tiles2 = len(plan_tiles(request.width // factor, request.height // factor, tile, overlap))
    # Steps are counted in tile-steps (one UNet call on one tile): a step of pass 1 (one tile, or a
    # few) costs far less than one of pass 2, and step / total must say how much work is done, for
    # the progress bar and the time-left estimate.
    total = (first * tiles1 + second * tiles2) * request.batch
    emit(Started(request_id, total, tiles2))

    relay = _Relay(emit, request_id, total)

    def run_one(sub: GenerationRequest) -> Finished:
        relay.finished = None
        try:
            run_pass(sub, relay, cancel, request_id)
        except RunCancelled as stop:
            raise RunCancelled(relay.offset + stop.step * relay.unit) from None
        assert relay.finished is not None
        return relay.finished

    # Pass 1: every candidate's composition (seeds seed, seed + 1, ...)
    relay.box_scale = (request.width / size[0], request.height / size[1])
    relay.unit = tiles1
    composed = run_one(small)
    notices = list(composed.notices)
    # Pass 2: refine each at full size
    relay.box_scale = (1.0, 1.0)
    relay.unit = tiles2
    candidates = []
    for b, (crop, seed) in enumerate(zip(composed.candidates, composed.seeds, strict=True)):
        relay.offset = (first * tiles1 * request.batch) + b * second * tiles2
        refined = run_one(refine_request(request, crop, seed))
        notices += [n for n in refined.notices if n not in notices]
        candidates.append(refined.candidates[0])
    emit(Finished(request_id, candidates, list(composed.seeds), request, notices))

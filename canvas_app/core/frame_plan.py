"""The frame plan: what lies under a frame and what a generation there regenerates, decided once.

GUI and CLI alike build their requests from a :class:`FramePlan`. It fixes

- the **mode**, from the pixels under the frame: txt2img when all of them are empty, outpaint when
  some are, inpaint when a mask is brushed inside the frame, img2img otherwise;
- which pixels count as **empty**: alpha below :data:`EMPTY_ALPHA` (the one threshold; the engine
  and the compositor use :func:`empty_pixels` too);
- the **crop** sent to the model: the frame, plus ``context_padding`` pixels around it for inpaint
  and outpaint so the model sees the surroundings;
- the area to **regenerate** (``regen``, over the crop): the brushed mask plus the empty pixels
  *inside the frame*. The padding is context only and never part of it, even where it hangs over
  empty canvas;
- the **feather** of the composite and the **seed**.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from canvas_app.core.document import Document
from canvas_app.core.frames import SNAP, PromptFrame
from canvas_app.core.limits import MAX_SEED
from canvas_app.core.raster import Rect
from canvas_app.core.request import GenerationRequest, Mode, frame_settings

# Alpha below this counts as "no pixel" (half-erased pixels are empty; anti-aliased edges are not).
EMPTY_ALPHA = 128
DEFAULT_CONTEXT_PADDING = 32
DEFAULT_FEATHER = 8


def empty_pixels(image: np.ndarray) -> np.ndarray:
    """HxW bool: the pixels of an RGBA image that count as empty. An RGB image has none."""
    if image.ndim == 3 and image.shape[2] == 4:
        return np.asarray(image[..., 3] < EMPTY_ALPHA)
    return np.zeros(image.shape[:2], bool)


def decide_mode(pixels: np.ndarray, mask: np.ndarray | None) -> Mode:
    """The mode for a frame whose pixels (RGBA or RGB) and brushed mask (HxW) are given."""
    empty = empty_pixels(pixels)
    if empty.all():
        return Mode.TXT2IMG
    if empty.any():
        return Mode.OUTPAINT
    if mask is not None and mask.any():
        return Mode.INPAINT
    return Mode.IMG2IMG


def crop_rect(frame: Rect, mode: Mode, context_padding: int = DEFAULT_CONTEXT_PADDING) -> Rect:
    """The canvas rectangle sent to the model: the frame, plus context for inpaint and outpaint."""
    if context_padding < 0:
        raise ValueError(f"context_padding must be >= 0, got {context_padding}")
    x, y, w, h = frame
    if mode in (Mode.TXT2IMG, Mode.IMG2IMG):
        return frame
    # Keep the crop on the 8 px grid (frames already are) so the output size stays a multiple of 8.
    pad = -(-context_padding // SNAP) * SNAP
    return (x - pad, y - pad, w + 2 * pad, h + 2 * pad)


@dataclass(frozen=True, eq=False)
class FramePlan:
    """One generation's decisions. ``init``: the crop's pixels (RGBA, None for txt2img); ``regen``:
    HxW uint8 over the crop, 255 = regenerate, zero outside the frame (None for txt2img/img2img,
    which regenerate the whole frame and whose crop is the frame)."""

    mode: Mode
    frame: Rect
    crop: Rect
    init: np.ndarray | None
    regen: np.ndarray | None
    feather: int
    seed: int

    def request(self, settings: PromptFrame | None = None, **overrides: Any) -> GenerationRequest:
        """The request for this plan, with the generation settings of ``settings`` (a frame) and
        then ``overrides`` (e.g. tile_plan, loras, prompt)."""
        kwargs: dict[str, Any] = {}
        if settings is not None:
            # Regions are kept relative to the frame; the engine reads them relative to the crop.
            dx, dy = self.frame[0] - self.crop[0], self.frame[1] - self.crop[1]
            kwargs = frame_settings(settings)
            kwargs["regions"] = tuple(r.shifted(dx, dy) for r in settings.visible_regions())
        kwargs.update(overrides)
        cx, cy, cw, ch = self.crop
        return GenerationRequest(
            mode=self.mode,
            width=cw,
            height=ch,
            seed=self.seed,
            init_image=self.init,
            mask=self.regen,
            origin=(cx, cy),
            feather=self.feather,
            **kwargs,
        )


def _regen(init: np.ndarray, brushed: np.ndarray, frame_in_crop: Rect) -> np.ndarray:
    fx, fy, fw, fh = frame_in_crop
    inside = np.zeros(brushed.shape, bool)
    inside[fy : fy + fh, fx : fx + fw] = True
    regen = np.where(inside, brushed, 0).astype(np.uint8)
    regen[inside & empty_pixels(init)] = 255
    if not regen.any():
        # Only when the mode was forced (a re-roll of an inpaint/outpaint patch): nothing is
        # marked, so regenerate the whole frame, with the padding as context.
        regen[inside] = 255
    return regen


def decide_seed(seed: int | None) -> int:
    """The one decision of a run's seed, from the frame's seed setting (or a seed the run brings
    along: a patch's, a candidate's): a seed of its own is kept, so that running again reproduces
    the result; None or -1 ("random") picks a new one. Raises ValueError above MAX_SEED."""
    if seed is None or seed < 0:
        return random.randint(0, MAX_SEED)
    if seed > MAX_SEED:
        raise ValueError(f"seed must be at most {MAX_SEED}, got {seed}")
    return seed


def plan_frame(
    doc: Document,
    frame: PromptFrame,
    context_padding: int = DEFAULT_CONTEXT_PADDING,
    seed: int | None = None,
    mode: Mode | str | None = None,
    feather: int = DEFAULT_FEATHER,
    mask: tuple[tuple[int, int], np.ndarray] | None = None,
) -> FramePlan:
    """The plan for generating ``frame`` of ``doc``. ``seed`` overrides the frame's (a seed of -1
    picks a random one); ``mode`` forces a mode (re-rolls use the patch's original mode). ``mask``:
    (canvas x, y of its top-left, HxW uint8) to inpaint instead of the document's brushed mask (a
    seam repair's band); the mode is then inpaint unless forced. Raises ValueError when that mask
    marks nothing inside the frame."""
    if mask is not None:
        return _plan_with_mask(doc, frame, context_padding, seed, mode, feather, mask)
    if mode is None:
        mode = decide_mode(doc.image.read(*frame.rect), doc.mask.read(*frame.rect))
    mode = Mode(mode)
    crop = crop_rect(frame.rect, mode, context_padding)
    init = None if mode is Mode.TXT2IMG else doc.image.read(*crop)
    regen = None
    if mode in (Mode.INPAINT, Mode.OUTPAINT):
        assert init is not None
        frame_in_crop = (frame.x - crop[0], frame.y - crop[1], frame.w, frame.h)
        regen = _regen(init, doc.mask.read(*crop), frame_in_crop)
    return FramePlan(
        mode, frame.rect, crop, init, regen, feather, decide_seed(frame.seed if seed is None else seed)
    )


def _plan_with_mask(
    doc: Document,
    frame: PromptFrame,
    context_padding: int,
    seed: int | None,
    mode: Mode | str | None,
    feather: int,
    mask: tuple[tuple[int, int], np.ndarray],
) -> FramePlan:
    (mx, my), marks = mask
    mode = Mode(mode or Mode.INPAINT)
    if mode not in (Mode.INPAINT, Mode.OUTPAINT):
        raise ValueError(f"a mask needs inpaint or outpaint, not {mode.value}")
    crop = crop_rect(frame.rect, mode, context_padding)
    cx, cy, cw, ch = crop
    brushed = np.zeros((ch, cw), np.uint8)
    # The part of the mask that overlaps the crop, placed in the crop's grid.
    x0, y0 = max(cx, mx), max(cy, my)
    x1, y1 = min(cx + cw, mx + marks.shape[1]), min(cy + ch, my + marks.shape[0])
    if x1 > x0 and y1 > y0:
        brushed[y0 - cy : y1 - cy, x0 - cx : x1 - cx] = marks[y0 - my : y1 - my, x0 - mx : x1 - mx]
    fx, fy = frame.x - cx, frame.y - cy
    if not brushed[fy : fy + frame.h, fx : fx + frame.w].any():
        raise ValueError("the mask marks nothing inside the frame")
    init = doc.image.read(*crop)
    regen = _regen(init, brushed, (fx, fy, frame.w, frame.h))
    return FramePlan(
        mode, frame.rect, crop, init, regen, feather, decide_seed(frame.seed if seed is None else seed)
    )


def plan_image(
    init: np.ndarray | None,
    mask: np.ndarray | None,
    size: tuple[int, int],
    seed: int | None = None,
    feather: int = DEFAULT_FEATHER,
) -> FramePlan:
    """The plan for a stand-alone image (the CLI's PNG output): the frame is the whole image, there
    is no context around it. Raises ValueError when a mask is given but marks nothing and nothing
    is empty (there would be nothing to regenerate)."""
    w, h = size
    rect = (0, 0, w, h)
    if init is None:
        return FramePlan(Mode.TXT2IMG, rect, rect, None, None, feather, decide_seed(seed))
    mode = decide_mode(init, mask)
    if mask is not None and mode is Mode.IMG2IMG:
        raise ValueError("the mask marks nothing to regenerate (white = regenerate)")
    regen = None
    if mode in (Mode.INPAINT, Mode.OUTPAINT):
        brushed = np.zeros((h, w), np.uint8) if mask is None else mask
        regen = _regen(init, brushed, rect)
    return FramePlan(mode, rect, rect, init, regen, feather, decide_seed(seed))


def request_for_frame(
    doc: Document,
    frame: PromptFrame,
    context_padding: int = DEFAULT_CONTEXT_PADDING,
    seed: int | None = None,
    mode: Mode | str | None = None,
    **overrides: Any,
) -> GenerationRequest:
    """Shorthand: the request of :func:`plan_frame` with the frame's settings and ``overrides``."""
    return plan_frame(doc, frame, context_padding, seed, mode).request(frame, **overrides)

"""From document + frame to a GenerationRequest, and from a result back to a patch.

The mode follows from what lies under the frame:

- txt2img: every pixel under the frame is empty (alpha 0);
- outpaint: some pixels are empty; the mask regenerates the empty pixels (and any brushed mask);
- inpaint: nothing is empty but a mask is painted inside the frame; the mask is the brushed mask;
- img2img: otherwise (the whole frame is redrawn with ``strength``).

Inpaint and outpaint crops include ``context_padding`` pixels around the frame so that the model
sees the surroundings; the mask is zero outside the frame, so the padding is only context.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from canvas_app.core.document import Document
from canvas_app.core.frames import SNAP, Patch, PromptFrame
from canvas_app.core.limits import MAX_SEED
from canvas_app.core.raster import Rect
from canvas_app.core.request import GenerationRequest, Mode

DEFAULT_CONTEXT_PADDING = 32


def mode_for_frame(doc: Document, frame: PromptFrame) -> Mode:
    alpha = doc.image.read(*frame.rect)[..., 3]
    if not alpha.any():
        return Mode.TXT2IMG
    if not alpha.all():
        return Mode.OUTPAINT
    if doc.mask.read(*frame.rect).any():
        return Mode.INPAINT
    return Mode.IMG2IMG


def crop_rect(frame: PromptFrame, mode: Mode, context_padding: int = DEFAULT_CONTEXT_PADDING) -> Rect:
    """The canvas rectangle sent to the model: the frame, plus context for inpaint and outpaint."""
    if context_padding < 0:
        raise ValueError(f"context_padding must be >= 0, got {context_padding}")
    if mode in (Mode.TXT2IMG, Mode.IMG2IMG):
        return frame.rect
    # Keep the crop on the 8 px grid (frames already are) so the output size stays a multiple of 8.
    pad = -(-context_padding // SNAP) * SNAP
    return (frame.x - pad, frame.y - pad, frame.w + 2 * pad, frame.h + 2 * pad)


def request_for_frame(
    doc: Document,
    frame: PromptFrame,
    context_padding: int = DEFAULT_CONTEXT_PADDING,
    seed: int | None = None,
    mode: Mode | None = None,
    **overrides: Any,
) -> GenerationRequest:
    """The request that generates ``frame``. ``seed`` overrides the frame's seed (a frame seed of -1
    picks a random one); ``mode`` forces a mode (re-rolls use the patch's original mode; a forced
    inpaint/outpaint with nothing masked regenerates the whole frame); other ``overrides`` go into
    the request as given."""
    mode = mode_for_frame(doc, frame) if mode is None else Mode(mode)
    if seed is None:
        seed = frame.seed if frame.seed >= 0 else random.randint(0, MAX_SEED)
    cx, cy, cw, ch = crop_rect(frame, mode, context_padding)
    init: np.ndarray | None = None
    mask: np.ndarray | None = None
    if mode != Mode.TXT2IMG:
        init = doc.image.read(cx, cy, cw, ch)
    if mode in (Mode.INPAINT, Mode.OUTPAINT):
        inside = np.zeros((ch, cw), bool)
        fx, fy = frame.x - cx, frame.y - cy
        inside[fy : fy + frame.h, fx : fx + frame.w] = True
        brushed = doc.mask.read(cx, cy, cw, ch)
        mask = np.where(inside, brushed, 0).astype(np.uint8)
        if mode == Mode.OUTPAINT:
            assert init is not None
            mask[inside & (init[..., 3] == 0)] = 255
        if not mask.any():
            # Only when the mode was forced (a re-roll of an inpaint/outpaint patch): nothing is
            # marked, so regenerate the whole frame, with the padding as context.
            mask[inside] = 255
    kwargs: dict[str, Any] = dict(
        prompt=frame.prompt,
        negative_prompt=frame.negative_prompt,
        mode=mode,
        width=cw,
        height=ch,
        seed=seed,
        steps=frame.steps,
        guidance=frame.guidance,
        strength=frame.strength,
        scheduler=frame.scheduler,
        model=frame.model,
        batch=frame.batch,
        init_image=init,
        mask=mask,
        origin=(cx, cy),
    )
    kwargs.update(overrides)
    return GenerationRequest(**kwargs)


def accept_result(
    doc: Document, frame: PromptFrame, request: GenerationRequest, image: np.ndarray, seed: int
) -> Patch:
    """Write the part of ``image`` (the request's output, RGB or RGBA) that lies inside the frame
    into the document as a patch, one undoable command. Pixels outside the frame are not touched:
    the padding was context only."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 or HxWx4 uint8 image, got {image.shape} {image.dtype}")
    if image.shape[:2] != (request.height, request.width):
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]}, request was {request.width}x{request.height}"
        )
    ox, oy = request.origin
    fx, fy = frame.x - ox, frame.y - oy
    if fx < 0 or fy < 0 or fx + frame.w > request.width or fy + frame.h > request.height:
        raise ValueError("the frame does not lie inside the request's crop")
    pixels = image[fy : fy + frame.h, fx : fx + frame.w]
    if pixels.shape[2] == 3:
        pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], axis=2)
    lineage = request.with_changes(seed=seed, init_image=None, mask=None, batch=1)
    patch = Patch(
        frame_id=frame.id,
        x=frame.x,
        y=frame.y,
        w=frame.w,
        h=frame.h,
        seed=seed,
        request_json=lineage.to_json(include_pixels=False),
        created=time.time(),
    )
    return doc.add_patch(patch, np.ascontiguousarray(pixels))

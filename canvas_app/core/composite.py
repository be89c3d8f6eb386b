"""Composite a generated crop over the document at accept time, as one undoable patch.

The engine returns the decoded crop and nothing else; this module decides what of it lands. The
request's regenerate mask is feathered over the *whole* crop (so a mask that touches the frame edge
fades out into the context padding instead of stopping in a hard seam), the generated colours are
shifted so their mean matches the document along the seam, and the blend is done in integers: where
the feathered alpha is 0, the document's pixels stay bit for bit what they are *now*, so edits made
while the engine ran survive. Empty canvas that the model only saw as context stays empty.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from canvas_app.core.document import Document
from canvas_app.core.frame_plan import empty_pixels
from canvas_app.core.frames import Patch
from canvas_app.core.raster import Rect
from canvas_app.core.request import GenerationRequest, Mode


def feather_alpha(mask: np.ndarray, radius: int) -> np.ndarray:
    """HxW uint8 alpha: 255 where ``mask`` is set, fading to 0 over about ``radius`` pixels outside
    it (the mask's own soft values are kept inside)."""
    soft = mask.astype(np.float32) / 255.0
    if radius > 0:
        blurred = cv2.GaussianBlur(soft, (0, 0), sigmaX=radius / 2.0, borderType=cv2.BORDER_REPLICATE)
        # Stretch so the mask's edge stays fully generated and the fade lies outside it.
        soft = np.maximum(soft, np.clip(blurred * 2.0, 0.0, 1.0))
    return np.clip(np.rint(soft * 255.0), 0, 255).astype(np.uint8)


def color_match(
    generated: np.ndarray, original: np.ndarray, alpha: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Shift ``generated`` (HxWx3 uint8) so that on the seam band (0 < alpha < 255, where the original
    is valid) its mean colour equals the original's."""
    band = (alpha > 0) & (alpha < 255) & valid
    if band.sum() < 16:
        return generated
    delta = original[band][:, :3].astype(np.float32).mean(0) - generated[band].astype(np.float32).mean(0)
    shifted = generated.astype(np.float32) + delta
    return np.clip(np.rint(shifted), 0, 255).astype(np.uint8)


def regen_mask(request: GenerationRequest) -> np.ndarray:
    """HxW uint8 over the request's crop: what the request regenerates (the whole crop for
    txt2img/img2img, whose crop is the frame)."""
    if request.mode in (Mode.INPAINT, Mode.OUTPAINT) and request.mask is not None:
        return np.asarray(request.mask, np.uint8)
    return np.full((request.height, request.width), 255, np.uint8)


def composite(
    current: np.ndarray, generated: np.ndarray, regen: np.ndarray, feather: int, match_colors: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """current: HxWx4 uint8 (the document under the crop now); generated: HxWx3 or HxWx4 uint8;
    regen: HxW uint8. Returns (the composited RGBA crop, the HxW uint8 alpha used). Wherever the
    alpha is 0 the result is ``current`` bit for bit."""
    if generated.ndim != 3 or generated.shape[2] not in (3, 4) or generated.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 or HxWx4 uint8 image, got {generated.shape} {generated.dtype}")
    if generated.shape[:2] != current.shape[:2] or regen.shape != current.shape[:2]:
        raise ValueError(f"image {generated.shape[:2]}, document {current.shape[:2]}, mask {regen.shape}")
    rgb = np.ascontiguousarray(generated[..., :3])
    alpha = feather_alpha(regen, feather)
    empty = empty_pixels(current)
    # Empty pixels that are regenerated are filled outright; empty canvas that was only context
    # (or lies in the feather beyond the regenerated area) stays empty.
    alpha[empty & (regen > 0)] = 255
    alpha[empty & (regen == 0)] = 0
    if match_colors:
        rgb = color_match(rgb, current, alpha, ~empty)
    new = np.concatenate([rgb, np.full(alpha.shape + (1,), 255, np.uint8)], axis=2)
    a = alpha.astype(np.uint32)[..., None]
    out = ((new.astype(np.uint32) * a + current.astype(np.uint32) * (255 - a) + 127) // 255).astype(np.uint8)
    untouched = alpha == 0
    out[untouched] = current[untouched]
    return out, alpha


def _bounds(touched: np.ndarray) -> Rect | None:
    ys, xs = np.nonzero(touched)
    if len(ys) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def preview_candidate(doc: Document, request: GenerationRequest, image: np.ndarray) -> np.ndarray:
    """What accepting ``image`` would make of the request's crop now: RGBA over the crop, with
    alpha 0 where nothing would change (draw it over the canvas to show the result)."""
    cx, cy = request.origin
    current = doc.image.read(cx, cy, request.width, request.height)
    out, alpha = composite(
        current, np.asarray(image), regen_mask(request), request.feather, request.color_match
    )
    out[alpha == 0] = 0
    return out


def accepted_pixels(doc: Document, request: GenerationRequest, image: np.ndarray, rect: Rect) -> np.ndarray:
    """RGBA uint8 of canvas ``rect`` as accepting ``image`` would make it now (composited as
    ``accept_candidate`` does, the document where nothing changes): a staged result as the artist
    sees it, for what works on it before it is accepted (upscaling). ``rect`` must lie inside the
    request's crop."""
    cx, cy = request.origin
    x, y, w, h = rect
    if x < cx or y < cy or x + w > cx + request.width or y + h > cy + request.height:
        raise ValueError("the area does not lie inside the request's crop")
    current = doc.image.read(cx, cy, request.width, request.height)
    out, _alpha = composite(
        current, np.asarray(image), regen_mask(request), request.feather, request.color_match
    )
    return np.ascontiguousarray(out[y - cy : y - cy + h, x - cx : x - cx + w])


def accept_candidate(
    doc: Document, frame_id: str, frame_rect: Rect, request: GenerationRequest, image: np.ndarray, seed: int
) -> Patch:
    """Composite ``image`` (the request's decoded crop) over the document as it is now and record
    it as a patch of the frame (``frame_rect``: the frame as it was generated), one undoable step."""
    image = np.asarray(image)
    if image.shape[:2] != (request.height, request.width):
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]}, request was {request.width}x{request.height}"
        )
    cx, cy = request.origin
    fx, fy, fw, fh = frame_rect
    if fx < cx or fy < cy or fx + fw > cx + request.width or fy + fh > cy + request.height:
        raise ValueError("the frame does not lie inside the request's crop")
    current = doc.image.read(cx, cy, request.width, request.height)
    out, alpha = composite(current, image, regen_mask(request), request.feather, request.color_match)
    lineage = request.with_changes(seed=seed, init_image=None, mask=None, batch=1)
    patch = Patch(
        frame_id=frame_id,
        x=fx,
        y=fy,
        w=fw,
        h=fh,
        seed=seed,
        request_json=lineage.to_json(include_pixels=False),
        created=time.time(),
    )
    box = _bounds(alpha > 0)
    if box is None:
        return doc.add_patch(patch, None)
    bx, by, bw, bh = box
    # Inside the box, untouched pixels are written back with their own values: bit for bit.
    return doc.add_patch(patch, np.ascontiguousarray(out[by : by + bh, bx : bx + bw]), (cx + bx, cy + by))

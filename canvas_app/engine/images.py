"""Pixels in and out of latent space: init image and mask preparation (with infill for empty
pixels) and VAE encode/decode in tiles. The decoded crop is the engine's result: compositing it over
the document is core's job (``canvas_app.core.composite``), at accept time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from canvas_app.core.composite import feather_alpha
from canvas_app.core.frame_plan import empty_pixels
from canvas_app.engine.api import GenerationRequest, Mode
from canvas_app.engine.devices import latent_dtype
from canvas_app.engine.infill import infill
from canvas_app.engine.tiling import tiled_decode, tiled_map


@dataclass
class Inputs:
    init_latents: Any = None
    latent_mask: Any = None
    masked_image_latents: Any = None
    notices: list[str] = field(default_factory=list)
    # HxWx3 uint8: the pixels the run started from (the init image, its masked or empty pixels
    # filled), when the request asks for colour correction (see correct_colours), and HxW bool: which
    # of them were pixels of the image (not empty canvas).
    reference: np.ndarray | None = None
    known: np.ndarray | None = None


def _vae_tile(model: Any, tile_px: int) -> tuple[int, int]:
    """VAE tile edge and overlap in latent cells: the UNet tile, at least 256 px (VAE tiles are
    cheap next to the UNet), overlapping by a quarter."""
    edge = max(tile_px, 256) // model.vae_factor
    return edge, edge // 4


def encode(model: Any, rgb: np.ndarray, tile_px: int) -> Any:
    """HxWx3 uint8 -> scaled latents (1, C, h, w) in the sampler's latent dtype. The pixels become
    floats one VAE tile at a time (a view of the uint8 array is what gets tiled), so a large image
    never exists as a whole in floats."""
    import torch

    vae = model.vae
    param = next(vae.parameters())
    pixels = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]  # uint8 view

    def encode_tile(t: Any) -> Any:
        return vae.encode(_floats(t, param)).latent_dist.mode()

    edge, overlap = _vae_tile(model, tile_px)
    latents = tiled_map(pixels, encode_tile, edge, overlap, model.vae_factor, False)
    shift = float(vae.config.get("shift_factor") or 0.0)
    latents = (latents - shift) * float(vae.config.scaling_factor)
    return latents.to(latent_dtype(model.unet.dtype))


def _floats(pixels: Any, like: Any) -> Any:
    """(1, 3, h, w) uint8 -> [-1, 1] in ``like``'s device and dtype."""
    return (pixels.to(like.device).float() / 127.5 - 1.0).to(like.dtype)


def _to_uint8(image: Any) -> np.ndarray:
    """(1, 3, h, w) decoded floats -> h x w x 3 uint8; raises EngineError on NaN."""
    if not bool(image.isfinite().all()):  # e.g. a VAE overflowing in fp16: never paste garbage
        from canvas_app.engine.errors import EngineError

        raise EngineError(
            "the VAE produced invalid values (NaN) and there is no result; try the device with :fp32"
        )
    image = ((image[0].float().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return image.permute(1, 2, 0).cpu().numpy()


def decode(model: Any, latents: Any, tile_px: int) -> np.ndarray:
    """Scaled latents -> HxWx3 uint8, decoded in tiles and finished band by band (never the whole
    image in floats: ``tiling.tiled_decode``)."""
    vae = model.vae
    param = next(vae.parameters())
    shift = float(vae.config.get("shift_factor") or 0.0)
    z = (latents / float(vae.config.scaling_factor) + shift).to(param.dtype)
    edge, overlap = _vae_tile(model, tile_px)
    return tiled_decode(z, lambda t: vae.decode(t).sample, edge, overlap, model.vae_factor, _to_uint8)


def _latent_mask(alpha: np.ndarray, factor: int, like: Any, binary: bool) -> Any:
    import torch

    m = torch.from_numpy(alpha.astype(np.float32) / 255.0)[None, None].to(like.device)
    # Max-pool: a latent cell is regenerated if any pixel in it is, so thin strokes are not lost.
    m = torch.nn.functional.max_pool2d(m, factor)
    if binary:
        m = (m > 0).float()
    return m.to(like.dtype)


def _unmasked_inpaint_inputs(request: GenerationRequest, model: Any, inputs: Inputs) -> Inputs:
    """An inpainting UNet asked for txt2img/img2img: everything is masked, nothing is known."""
    import torch

    tile_px = request.tile_plan.tile_size or model.native_size
    grey = np.full((request.height, request.width, 3), 127, np.uint8)
    inputs.masked_image_latents = encode(model, grey, tile_px)
    lat = inputs.masked_image_latents
    inputs.latent_mask = torch.ones((1, 1) + tuple(lat.shape[2:]), device=lat.device, dtype=lat.dtype)
    return inputs


# The low-pass of the colour correction, in pixels (docs/benchmarks.md, "Fill on photographs": 4 px
# kept the photos' colours and grain better than 8 px).
COLOR_CORRECTION_SIGMA = 4.0


def correct_colours(
    image: np.ndarray,
    reference: np.ndarray | None,
    known: np.ndarray | None = None,
    sigma: float = COLOR_CORRECTION_SIGMA,
) -> np.ndarray:
    """A decoded candidate (HxWx3 uint8) whose low frequencies are those of ``reference`` (the pixels
    the run started from): image + lowpass(reference - image). The model's fine detail and grain
    stay; its colour cast and the colour of anything it paints larger than a few pixels go. What
    A1111's "color correction" does for a whole image with a histogram, done locally, so that a
    removed object's area takes the colours around it. ``known`` (HxW bool): where the reference
    holds the image's own pixels; over empty canvas (an outpaint) the reference is only infill, and
    the model's colours are kept there, fading in over the low-pass's width (a float HxW in [0, 1]
    weighs it, as a downscaled ``known`` does). ``sigma``: the low-pass in the image's pixels (a
    preview scales it to its resolution). None: the image unchanged."""
    if reference is None:
        return image
    import cv2

    diff = reference.astype(np.float32) - image.astype(np.float32)
    if known is not None:
        diff *= known.astype(np.float32)[..., None]
    low = cv2.GaussianBlur(diff, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return np.clip(np.rint(image.astype(np.float32) + low), 0, 255).astype(np.uint8)


class PreviewColours:
    """The colour correction of live previews: ``correct_colours`` at the preview's resolution, so
    that with the setting on a preview shows the colours the result will have instead of jumping
    at the end. The reference (and ``known``) are cropped to a tile and downscaled once per tile;
    each preview then costs one small blur."""

    def __init__(self, reference: np.ndarray, known: np.ndarray | None) -> None:
        self.reference, self.known = reference, known
        self._scaled: dict[tuple[tuple[int, int, int, int], tuple[int, int]], tuple[Any, Any]] = {}

    def __call__(self, preview: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """preview: hxwx3 uint8 of the tile ``box`` (x, y, w, h in output pixels)."""
        h, w = preview.shape[:2]
        key = (box, (h, w))
        if key not in self._scaled:
            self._scaled[key] = self._scale(box, w, h)
        reference, known = self._scaled[key]
        return correct_colours(preview, reference, known, COLOR_CORRECTION_SIGMA * w / box[2])

    def _scale(self, box: tuple[int, int, int, int], w: int, h: int) -> tuple[Any, Any]:
        import cv2

        x, y, bw, bh = box
        # Area averaging: a preview pixel is the mean colour of the pixels it covers.
        crop = self.reference[y : y + bh, x : x + bw]
        reference = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        if self.known is None:
            return reference, None
        weight = self.known[y : y + bh, x : x + bw].astype(np.float32)
        return reference, cv2.resize(weight, (w, h), interpolation=cv2.INTER_AREA)


def prepare(request: GenerationRequest, model: Any, infill_method: str) -> Inputs:
    inputs = _prepare(request, model, infill_method)
    if model.is_inpaint_unet and inputs.masked_image_latents is None:
        _unmasked_inpaint_inputs(request, model, inputs)
    return inputs


def _prepare(request: GenerationRequest, model: Any, infill_method: str) -> Inputs:
    inputs = Inputs()
    if request.mode is Mode.TXT2IMG:
        return inputs
    tile_px = request.tile_plan.tile_size or model.native_size
    assert request.init_image is not None
    image = request.init_image
    rgb = np.ascontiguousarray(image[..., :3])
    if request.mode is Mode.IMG2IMG:
        inputs.init_latents = encode(model, rgb, tile_px)
        return inputs

    # Inpaint / outpaint. The request's mask is what gets regenerated (the frame plan decided it);
    # empty pixels (the same threshold as the plan's) are filled before encoding and are unknown
    # to the model, but only the mask is composited at accept.
    empty = empty_pixels(image)
    mask = (empty * 255).astype(np.uint8) if request.mask is None else request.mask.astype(np.uint8)
    if not mask.any():
        raise _nothing_to_do()
    # "fill": what is under the mask is filled from its surroundings too, so the model starts from
    # the background instead of the object to remove (A1111's masked content "fill").
    fill = empty | (mask > 0) if request.masked_content == "fill" else empty
    if fill.any():
        rgb = infill(rgb, fill, infill_method, request.seed)
    unknown = feather_alpha(mask, request.feather)
    unknown[empty] = 255
    inputs.init_latents = encode(model, rgb, tile_px)
    if request.color_correction:
        inputs.reference, inputs.known = rgb, None if not empty.any() else ~empty
    unet_param = inputs.init_latents
    if model.is_inpaint_unet:
        inputs.latent_mask = _latent_mask(unknown, model.vae_factor, unet_param, binary=True)
        keep = (unknown == 0)[..., None]
        masked_rgb = np.where(keep, rgb, 127).astype(np.uint8)  # 127 ~ 0 in [-1, 1]: "unknown"
        inputs.masked_image_latents = encode(model, masked_rgb, tile_px)
    else:
        inputs.latent_mask = _latent_mask(unknown, model.vae_factor, unet_param, binary=False)
        inputs.notices.append("this model has no inpainting UNet; inpainted by latent blending")
    return inputs


def _nothing_to_do() -> Exception:
    from canvas_app.engine.errors import InputError

    return InputError("the mask is empty: there is nothing to regenerate")

"""Regional prompts in the denoising loop: one run, several prompts, each owning part of the frame.

Every step, for each tile, the UNet predicts noise once for a batch holding the shared negative
(unconditional) prompt, the background (the frame's prompt) and every region that reaches into the
tile (plus a region's own negative when it has one). Each prompt's guided prediction is then blended
by its soft weight (core/regions.py: the region's box or painted mask, softened; the background
takes what the regions leave), as in region-based MultiDiffusion / Mixture of Diffusers. The
scheduler steps the blended prediction, so the frame is denoised once and the regions share one
coherent latent. A batch of k + 2 rows instead of 2 costs far less than k + 1 separate runs.

The other method, masked cross-attention (engine/region_attention.py), shares the encoded prompts
and weights made here and is chosen by the request's ``regions_method``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from canvas_app.core.regions import DEFAULT_REGION_FEATHER, Region, blend_weights, region_weights
from canvas_app.core.request import REGIONS_METHODS
from canvas_app.engine.conditioning import Conditioning, encode


@dataclass
class RegionPrompts:
    """The prompts of one run and their blend weights over the latent.

    ``embeds``/``pooled``: every distinct text, one row each. ``prompts``: for the background (first)
    and each region, (row of its negative or None when unguided, row of its text). ``weights``:
    (P, 1, h, w) normalised blend weights at latent resolution, P = 1 + regions. ``method``: how the
    prompts are combined (core.request.REGIONS_METHODS).
    """

    embeds: Any
    pooled: Any | None
    prompts: list[tuple[int | None, int]]
    weights: Any
    method: str = "multidiffusion"

    def predict(
        self, model: Any, scaled: Any, extra: Any | None, t: Any, window: tuple[slice, ...], guidance: float
    ) -> Any:
        """The blended, guided noise prediction for one tile. ``scaled``: the tile's scaled model
        input (1, C, h, w); ``extra``: the inpainting UNet's mask channels for it, or None."""
        import torch

        if self.method == "attention":
            from canvas_app.engine import region_attention

            return region_attention.predict(self, model, scaled, extra, t, window, guidance)
        local = self.weights[window[0], slice(None), window[2], window[3]]
        # Only prompts that own some of this tile go through the UNet (the background always).
        active = [0] + [i for i in range(1, len(self.prompts)) if bool(local[i].max() > 0)]
        rows: list[int] = []
        for i in active:
            neg, pos = self.prompts[i]
            rows += ([] if neg is None else [neg]) + [pos]
        unique = sorted(set(rows))
        where = {row: k for k, row in enumerate(unique)}
        index = torch.tensor(unique, device=self.embeds.device)
        embeds = self.embeds.index_select(0, index)
        pooled = None if self.pooled is None else self.pooled.index_select(0, index)
        n = len(unique)
        unet_in = scaled.expand(n, -1, -1, -1)
        if extra is not None:
            unet_in = torch.cat([unet_in, extra.expand(n, -1, -1, -1)], dim=1)
        _, _, h, w = scaled.shape
        factor = model.vae_factor
        added = Conditioning(embeds, pooled, False).added_kwargs(model, h * factor, w * factor)
        unet = model.unet
        # The UNet may run in bf16 while the latents stay fp32 (engine/devices.py).
        out = unet(
            unet_in.to(unet.dtype),
            t,
            encoder_hidden_states=embeds.to(unet.dtype),
            added_cond_kwargs=added,
            return_dict=False,
        )[0].to(scaled.dtype)
        total = None
        for i in active:
            neg, pos = self.prompts[i]
            pred = out[where[pos] : where[pos] + 1]
            if neg is not None:
                uncond = out[where[neg] : where[neg] + 1]
                pred = uncond + guidance * (pred - uncond)
            part = pred * local[i : i + 1]
            total = part if total is None else total + part
        return total


def region_text(region_prompt: str, frame_prompt: str) -> str:
    """What a region's prompt reads: its own words, then the frame's (the setting and style shared by
    all, as Krita AI Diffusion does). Without them the model paints each region's own setting: the
    built-in model drew an orange sky around "a red house" under a frame's "blue sky"."""
    parts = [p.strip(" ,") for p in (region_prompt, frame_prompt) if p.strip(" ,")]
    return ", ".join(parts)


def prepare(
    model: Any,
    prompt: str,
    negative: str,
    regions: tuple[Region, ...],
    guidance: float,
    width: int,
    height: int,
    method: str = "multidiffusion",
) -> RegionPrompts:
    """Encode the background and region prompts and compute their blend weights for a request of
    width x height pixels (the regions in its coordinates)."""
    import torch

    if method not in REGIONS_METHODS:
        raise ValueError(f"regions_method must be one of {', '.join(REGIONS_METHODS)}, not {method!r}")

    factor = model.vae_factor
    guided = guidance > 1.0
    texts: dict[str, int] = {}
    embeds: list[Any] = []
    pooled: list[Any] = []

    def row(conditioning: Conditioning, key: str, which: int) -> int:
        if key not in texts:
            texts[key] = len(embeds)
            embeds.append(conditioning.embeds[which : which + 1])
            if conditioning.pooled is not None:
                pooled.append(conditioning.pooled[which : which + 1])
        return texts[key]

    prompts: list[tuple[int | None, int]] = []
    texts_in_order = [(prompt, negative)] + [
        (region_text(r.prompt, prompt), r.negative_prompt or negative) for r in regions
    ]
    for text, neg_text in texts_in_order:
        cond = encode(model, text, neg_text, guidance)
        neg_row = row(cond, "-" + neg_text, 0) if guided else None
        pos_row = row(cond, "+" + text, 1 if guided else 0)
        prompts.append((neg_row, pos_row))

    # The soft edge spans at least two latent cells, so the cross-fade is never a hard step.
    feather = max(DEFAULT_REGION_FEATHER, 2 * factor)
    lw, lh = width // factor, height // factor
    pixel = region_weights(regions, lw * factor, lh * factor, feather)
    latent = [w.reshape(lh, factor, lw, factor).mean(axis=(1, 3)) for w in pixel]
    background, parts = blend_weights(latent)
    stack = np.stack([background, *parts])[:, None].astype(np.float32)
    device, dtype = model.unet.device, model.unet.dtype
    if method == "attention":
        from canvas_app.engine import region_attention

        region_attention.install(model.unet)
    return RegionPrompts(
        embeds=torch.cat(embeds).to(device, dtype),
        pooled=torch.cat(pooled).to(device, dtype) if pooled else None,
        prompts=prompts,
        weights=torch.from_numpy(stack).to(device, dtype),
        method=method,
    )

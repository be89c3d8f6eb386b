"""Regions by masked cross-attention: one UNet batch of two rows whatever the number of regions.

The alternative to blending whole noise predictions (engine/regions.py, MultiDiffusion style): the
text tokens of the background and of every region go through the UNet together, and in every
cross-attention layer each latent pixel attends to the tokens of the prompt that owns it. A pixel
inside a region reads only that region's words, a pixel outside every region only the background's;
across a region's soft edge the attention outputs of the prompts are mixed by the same weights the
other method uses (core/regions.py), resized to the layer's resolution. Self-attention, convolutions
and the time embedding are shared, so the regions are drawn as one picture by one prediction.

The processor is installed on the UNet once (``install``) and wraps whatever processor each layer had:
without the ``regions`` keyword, which only this module passes, it calls the wrapped one unchanged,
so other runs on the same cached model compute exactly what they did before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class TileTokens:
    """What the cross-attention layers of one UNet call need: the token span of each prompt in the
    concatenated text, and the prompts' weights over the tile at latent resolution (P, 1, h, w)."""

    spans: list[tuple[int, int]]
    weights: Any

    def weights_for(self, tokens: int) -> Any:
        """The weights at the resolution of a layer with ``tokens`` query positions, as (P, 1, N, 1)."""
        import torch.nn.functional as F

        _, _, h, w = self.weights.shape
        for down in (1, 2, 4, 8, 16, 32, 64):
            lh, lw = math.ceil(h / down), math.ceil(w / down)
            if lh * lw == tokens:
                break
        else:
            raise ValueError(f"no downsampling of a {h}x{w} tile gives {tokens} positions")
        small = F.adaptive_avg_pool2d(self.weights, (lh, lw)) if (lh, lw) != (h, w) else self.weights
        # Averaging keeps the sum 1 per position; renormalise against rounding all the same.
        small = small / small.sum(dim=0, keepdim=True).clamp(min=1e-6)
        return small.reshape(small.shape[0], 1, lh * lw, 1)


class RegionAttnProcessor:
    """Cross-attention with each prompt's tokens masked to the pixels its region owns."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any | None = None,
        attention_mask: Any | None = None,
        temb: Any | None = None,
        regions: TileTokens | None = None,
        **kwargs: Any,
    ) -> Any:
        if regions is None or encoder_hidden_states is None or hidden_states.ndim != 3:
            extra = {} if temb is None else {"temb": temb}
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, **extra, **kwargs)
        import torch.nn.functional as F

        # 1. Projections: the query once, keys and values of all prompts' tokens at once.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        batch, tokens, _ = hidden_states.shape
        context = (
            attn.norm_encoder_hidden_states(encoder_hidden_states)
            if attn.norm_cross
            else encoder_hidden_states
        )
        heads = attn.heads

        def split(x: Any) -> Any:
            return x.view(batch, -1, heads, x.shape[-1] // heads).transpose(1, 2)

        query, key, value = (
            split(attn.to_q(hidden_states)),
            split(attn.to_k(context)),
            split(attn.to_v(context)),
        )
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        # 2. Each prompt's attention over its own tokens, mixed by who owns each pixel.
        weights = regions.weights_for(tokens).to(query.dtype)
        out = None
        for p, (start, end) in enumerate(regions.spans):
            part = F.scaled_dot_product_attention(query, key[:, :, start:end], value[:, :, start:end])
            part = part * weights[p : p + 1]
            out = part if out is None else out + part
        assert out is not None
        hidden_states = out.transpose(1, 2).reshape(batch, tokens, -1).to(query.dtype)
        # 3. Output projection (linear: mixing before it equals mixing after it).
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install(unet: Any) -> None:
    """Wrap every attention processor of ``unet`` (once; a no-op when already wrapped)."""
    processors = unet.attn_processors
    if all(isinstance(p, RegionAttnProcessor) for p in processors.values()):
        return
    unet.set_attn_processor(
        {
            name: p if isinstance(p, RegionAttnProcessor) else RegionAttnProcessor(p)
            for name, p in processors.items()
        }
    )


def predict(
    prompts: Any,
    model: Any,
    scaled: Any,
    extra: Any | None,
    t: Any,
    window: tuple[slice, ...],
    guidance: float,
) -> Any:
    """The guided noise prediction for one tile with every prompt's tokens masked to its region.

    ``prompts``: engine.regions.RegionPrompts. Two rows (negatives, positives) when guided, else one;
    each row holds the tokens of every prompt that owns part of the tile, one after another.
    """
    import torch

    from canvas_app.engine.conditioning import Conditioning

    local = prompts.weights[window[0], slice(None), window[2], window[3]]
    active = [0] + [i for i in range(1, len(prompts.prompts)) if bool(local[i].max() > 0)]
    guided = prompts.prompts[0][0] is not None
    rows = [[prompts.prompts[i][0] for i in active]] if guided else []
    rows.append([prompts.prompts[i][1] for i in active])
    embeds = torch.stack([torch.cat([prompts.embeds[r] for r in row]) for row in rows])
    spans, start = [], 0
    for i in active:
        length = int(prompts.embeds[prompts.prompts[i][1]].shape[0])
        spans.append((start, start + length))
        start += length
    # The background's pooled text (SDXL) stands for the whole frame.
    pooled = None
    if prompts.pooled is not None:
        pooled = torch.stack([prompts.pooled[row[0]] for row in rows])
    n = len(rows)
    unet_in = scaled.expand(n, -1, -1, -1)
    if extra is not None:
        unet_in = torch.cat([unet_in, extra.expand(n, -1, -1, -1)], dim=1)
    _, _, h, w = scaled.shape
    factor = model.vae_factor
    added = Conditioning(embeds, pooled, False).added_kwargs(model, h * factor, w * factor)
    unet = model.unet
    tokens = TileTokens(spans, local[active].to(unet.dtype))
    out = unet(
        unet_in.to(unet.dtype),
        t,
        encoder_hidden_states=embeds.to(unet.dtype),
        added_cond_kwargs=added,
        cross_attention_kwargs={"regions": tokens},
        return_dict=False,
    )[0].to(scaled.dtype)
    if not guided:
        return out
    uncond, text = out.chunk(2)
    return uncond + guidance * (text - uncond)

"""Text conditioning for SD 1.x/2.x and SDXL, through the pipeline's own ``encode_prompt``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Conditioning:
    """Prompt embeddings stacked [negative, positive] when guidance is on, else [positive]."""

    embeds: Any
    pooled: Any | None  # SDXL only
    guided: bool

    def added_kwargs(self, model: Any, tile_h: int, tile_w: int) -> dict[str, Any] | None:
        """SDXL's micro-conditioning for a tile of tile_h x tile_w pixels (None for SD 1.x/2.x)."""
        import torch

        if self.pooled is None:
            return None
        unet = model.unet
        projection = int(self.pooled.shape[-1])
        expected = int(unet.add_embedding.linear_1.in_features)
        per_id = int(unet.config.addition_time_embed_dim)
        count = (expected - projection) // per_id
        if count == 5:  # refiner-style: original size, crop, aesthetic score
            ids = [tile_h, tile_w, 0, 0, 6.0]
        else:
            ids = [tile_h, tile_w, 0, 0, tile_h, tile_w]
        time_ids = torch.tensor([ids], dtype=self.embeds.dtype, device=self.embeds.device)
        time_ids = time_ids.repeat(self.embeds.shape[0], 1)
        return {"text_embeds": self.pooled, "time_ids": time_ids}


def encode(model: Any, prompt: str, negative: str, guidance: float) -> Conditioning:
    pipe = model.pipe
    guided = guidance > 1.0
    device = model.unet.device
    if model.is_sdxl:
        pos, neg, pooled, neg_pooled = pipe.encode_prompt(
            prompt=prompt,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=guided,
            negative_prompt=negative or None,
        )
        if guided:
            import torch

            return Conditioning(torch.cat([neg, pos]), torch.cat([neg_pooled, pooled]), True)
        return Conditioning(pos, pooled, False)
    pos, neg = pipe.encode_prompt(prompt, device, 1, guided, negative_prompt=negative or None)
    if guided:
        import torch

        return Conditioning(torch.cat([neg, pos]), None, True)
    return Conditioning(pos, None, False)

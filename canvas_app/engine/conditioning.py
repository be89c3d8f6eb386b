"""Text conditioning for SD 1.x/2.x and SDXL, through the pipeline's own ``encode_prompt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canvas_app.core.vocabulary import (
    BUILTIN_POSITION_WORDS,
    FRAME_LABELS,
    OPEN_VOCABULARY,
    ModelWords,
    is_builtin_folder,
)


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


def truncation_notices(model: Any, prompt: str, negative: str) -> list[str]:
    """Notices for prompts longer than the text encoder reads (the rest is cut off, as diffusers
    does); empty when both fit."""
    tokenizer = getattr(model.pipe, "tokenizer", None)
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    if tokenizer is None or not 0 < limit < 10**6:
        return []
    out = []
    for label, text in (("prompt", prompt), ("negative prompt", negative)):
        if not text:
            continue
        count = len(tokenizer(text, truncation=False, add_special_tokens=True).input_ids)
        if count > limit:
            out.append(
                f"the {label} is {count} tokens long; the text encoder reads only the first {limit}, "
                "the rest was ignored"
            )
    return out


def model_words(model: Any) -> ModelWords:
    """What the loaded model's tokenizer knows (core.vocabulary decides, for the panel too)."""
    if "words" not in model.extras:
        tokenizer = getattr(model.pipe, "tokenizer", None)
        if tokenizer is None:
            model.extras["words"] = OPEN_VOCABULARY
        else:
            folder = Path(model.source.shares or model.source.location)
            ignored = BUILTIN_POSITION_WORDS if is_builtin_folder(folder) else ()
            model.extras["words"] = ModelWords.from_tokens(tokenizer.get_vocab(), ignored)
    return model.extras["words"]


def word_notices(model: Any, prompt: str, negative: str, labels: tuple[str, str] = FRAME_LABELS) -> list[str]:
    """Notices naming the prompt words the model does not know, or knows but ignores."""
    return model_words(model).notices(prompt, negative, labels)

"""Text conditioning for SD 1.x/2.x and SDXL, through the pipeline's own ``encode_prompt``."""

from __future__ import annotations

import re
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


# A tokenizer with fewer whole-word tokens than this is a closed word list (the built-in model's 42
# words), not a subword vocabulary such as CLIP's (some 30,000 whole words plus pieces that spell any
# other word): only with a word list does a word outside it mean nothing to the model.
CLOSED_VOCABULARY_MAX_WORDS = 5000
_WORD = re.compile(r"\w+(?:'\w+)*")


def vocabulary_size(tokenizer: Any) -> int | None:
    """Number of words of two letters or more that a closed word-list tokenizer knows (a one-letter
    word is also a letter of the alphabet); None for an open (subword) vocabulary."""
    words = sum(1 for token in tokenizer.get_vocab() if token.endswith("</w>") and len(token) > 5)
    return words if words < CLOSED_VOCABULARY_MAX_WORDS else None


def unknown_words(tokenizer: Any, text: str) -> list[str]:
    """The words of ``text`` (lower case, in order, once each) that a closed word-list tokenizer
    does not hold as one token: it spells them out letter by letter. Empty for open vocabularies."""
    if tokenizer is None or vocabulary_size(tokenizer) is None:
        return []
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        pieces = tokenizer.tokenize(word)
        if (len(pieces) != 1 or pieces[0] == tokenizer.unk_token) and word not in out:
            out.append(word)
    return out


def unknown_word_notices(model: Any, prompt: str, negative: str) -> list[str]:
    """A notice per prompt that holds words the model's tokenizer does not know, naming them."""
    tokenizer = getattr(model.pipe, "tokenizer", None)
    out = []
    for label, text in (("prompt", prompt), ("negative prompt", negative)):
        words = unknown_words(tokenizer, text)
        if words:
            named = ", ".join(f'"{w}"' for w in words)
            out.append(
                f"this model does not know the words {named} in the {label}: it reads them letter by "
                "letter and they mean nothing to it"
            )
    return out

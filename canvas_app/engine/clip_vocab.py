"""The CLIP BPE tokenizer of SD 1.x/2.x/SDXL, built from the vocabulary shipped in
``configs/bpe_simple_vocab_16e6.txt.gz`` (OpenAI CLIP's, via OpenCLIP; MIT licence), so single-file
checkpoints load without fetching a tokenizer."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path
from typing import Any

VOCAB_FILE = Path(__file__).with_name("configs") / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> list[str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]  # in CLIP's order: printable bytes first


@lru_cache(maxsize=1)
def vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """The 49408-token vocabulary and its merges, in the order CLIP assigns ids."""
    lines = gzip.open(VOCAB_FILE).read().decode("utf-8").split("\n")
    merges = tuple(tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1])
    tokens = _bytes_to_unicode()
    tokens = tokens + [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges  # type: ignore[return-value]


def clip_tokenizer(pad_token: str | None = None) -> Any:
    """A CLIPTokenizer equal to openai/clip-vit-large-patch14's (``pad_token='!'``: OpenCLIP's)."""
    from transformers import CLIPTokenizer

    vocab, merges = vocab_and_merges()
    kwargs: dict[str, Any] = {"model_max_length": 77}
    if pad_token is not None:
        kwargs["pad_token"] = pad_token
    merge_list: list[Any] = list(merges)
    return CLIPTokenizer(vocab=dict(vocab), merges=merge_list, **kwargs)

"""A word-level CLIP tokenizer built locally (nothing is fetched).

CLIPTokenizer is a byte-level BPE tokenizer; to make each vocabulary word a single token we build a
vocabulary holding every character, every word prefix and every word (with CLIP's ``</w>`` end
marker), and merges that joins them left to right. BPE picks merges by rank, so one word's
merge can pre-empt another's path; we tokenize every word after building and add the merges that join
the pieces actually produced until every word is one token.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
BASE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.-'!?"


def _initial_merges(words: list[str]) -> list[tuple[str, str]]:
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        left = pieces[0]
        for piece in pieces[1:]:
            merges.append((left, piece))
            left = left + piece
    return merges


def build_word_tokenizer(words: list[str], out_dir: str | Path, model_max_length: int = 32):
    """Write a CLIP tokenizer whose vocabulary holds ``words`` as single tokens; return it loaded.

    Unknown words still tokenize (into characters), so any prompt is accepted.
    """
    from transformers import CLIPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    words = sorted({w.lower() for w in words if w})
    merges = list(dict.fromkeys(_initial_merges(words)))

    for _ in range(20):
        vocab: dict[str, int] = {}
        for token in [*BASE_CHARS, *(c + "</w>" for c in BASE_CHARS)]:
            vocab.setdefault(token, len(vocab))
        for a, b in merges:
            vocab.setdefault(a, len(vocab))
            vocab.setdefault(b, len(vocab))
            vocab.setdefault(a + b, len(vocab))
        for token in SPECIAL_TOKENS:
            vocab.setdefault(token, len(vocab))
        tokenizer = CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=model_max_length)
        repairs = []
        for word in words:
            pieces = tokenizer.tokenize(word)
            if len(pieces) > 1:
                # Join the pieces BPE actually produced, left to right.
                left = pieces[0]
                for piece in pieces[1:]:
                    repairs.append((left, piece))
                    left = left + piece
        if not repairs:
            tokenizer.save_pretrained(out_dir)
            return CLIPTokenizer.from_pretrained(out_dir)
        merges = list(dict.fromkeys(merges + repairs))
    raise RuntimeError("could not build merges that keep every word a single token")

"""What a model's tokenizer knows, and the notices that name the prompt words it does not.

Torch- and Qt-free, so that the engine (after a run, from its loaded tokenizer) and the frame panel
(while the artist types, from the model's files) decide the same way and say it in the same words.

Only a closed word list can fail to know a word: the built-in model's tokenizer holds its 42 words
as whole tokens and spells anything else letter by letter, which means nothing to it. CLIP's
subword vocabulary (Stable Diffusion's; ``engine/clip_vocab.py``) spells every word out of pieces the
model has learned, so it has no unknown words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from canvas_app.core.request import BUILTIN_MODEL

# A tokenizer with fewer whole-word tokens than this is a closed word list (the built-in model's 42
# words), not a subword vocabulary such as CLIP's (some 30,000 whole words plus pieces that spell any
# other word): only with a word list does a word outside it mean nothing to the model.
CLOSED_VOCABULARY_MAX_WORDS = 5000
END_OF_WORD = "</w>"  # CLIP's BPE marks a token that ends a word
# The built-in model reads these words but places nothing by them (its card: "Position is still at
# chance"; "above" and "under" are in no training caption): the frame on the canvas says where.
BUILTIN_POSITION_WORDS = ("left", "center", "right", "above", "under")
POSITION_HINT = "on the canvas the frame says where (draw the frame where the thing should go)"
_WORD = re.compile(r"\w+(?:'\w+)*")
# How the notices name the prompt boxes: a frame's, and a region's (read by the same tokenizer).
FRAME_LABELS = ("prompt", "negative prompt")
REGION_LABELS = ("region prompt", "region negative prompt")


def prompt_words(text: str) -> list[str]:
    """The words of ``text``, lower case, in order, once each."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))


@dataclass(frozen=True)
class ModelWords:
    """The words a model knows (``known`` None: an open subword vocabulary, every word known) and
    those it knows but ignores (the built-in model's position words)."""

    known: frozenset[str] | None = None
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], ignored: Iterable[str] = ()) -> ModelWords:
        """From a CLIP-style BPE vocabulary: its whole-word tokens end in ``</w>``. A word list
        counts words of two letters or more (a one-letter word is also a letter of the alphabet)."""
        words = frozenset(t[: -len(END_OF_WORD)] for t in tokens if t.endswith(END_OF_WORD))
        long_words = sum(1 for w in words if len(w) > 1)
        known = words if long_words < CLOSED_VOCABULARY_MAX_WORDS else None
        return cls(known, tuple(ignored))

    @property
    def word_count(self) -> int | None:
        """How many words a word list holds (``"a"`` counts; other single letters do not); None
        for an open vocabulary."""
        if self.known is None:
            return None
        return sum(1 for w in self.known if len(w) > 1 or w == "a")

    def unknown(self, text: str) -> list[str]:
        """The words of ``text`` the model does not know (spelled letter by letter)."""
        if self.known is None:
            return []
        return [w for w in prompt_words(text) if w not in self.known]

    def ignored_in(self, text: str) -> list[str]:
        return [w for w in prompt_words(text) if w in self.ignored]

    def notices(self, prompt: str, negative: str = "", labels: tuple[str, str] = FRAME_LABELS) -> list[str]:
        """One sentence per finding, naming the words: unknown words in the prompt and in the
        negative prompt (named by ``labels``), and ignored position words in the prompt."""
        out = []
        for label, text in zip(labels, (prompt, negative), strict=True):
            words = self.unknown(text)
            if words:
                out.append(
                    f"this model does not know the words {_quoted(words)} in the {label}: it reads them "
                    "letter by letter and they mean nothing to it"
                )
        position = self.ignored_in(prompt)
        if position:
            out.append(f"this model ignores the position words {_quoted(position)}: {POSITION_HINT}")
        return out


def _quoted(words: list[str]) -> str:
    return ", ".join(f'"{w}"' for w in words)


OPEN_VOCABULARY = ModelWords()


def is_builtin_folder(path: Path) -> bool:
    """Whether ``path`` is the built-in model's folder or its inpainting folder (which shares the
    built-in tokenizer)."""
    from canvas_app.resources import builtin_inpaint_model_dir, builtin_model_dir

    try:
        builtin = {builtin_model_dir().resolve(), builtin_inpaint_model_dir().resolve()}
    except FileNotFoundError:
        return False
    return path.resolve() in builtin


def folder_words(folder: Path) -> ModelWords:
    """The words of a diffusers folder's tokenizer (``tokenizer/vocab.json`` or the vocabulary in
    ``tokenizer/tokenizer.json``); an open vocabulary when neither can be read."""
    stamp = tuple(_stamp(folder / "tokenizer" / name) for name in ("vocab.json", "tokenizer.json"))
    return _folder_words(folder.resolve(), stamp)


def _stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


@lru_cache(maxsize=16)
def _folder_words(folder: Path, _stamp: tuple[float, ...]) -> ModelWords:
    # _stamp (the files' times) is part of the cache key: a replaced tokenizer is read again.
    ignored = BUILTIN_POSITION_WORDS if is_builtin_folder(folder) else ()
    for name in ("vocab.json", "tokenizer.json"):
        try:
            data = json.loads((folder / "tokenizer" / name).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        vocab = data.get("model", {}).get("vocab") if name == "tokenizer.json" else data
        if isinstance(vocab, dict):
            return ModelWords.from_tokens(vocab, ignored)
    return OPEN_VOCABULARY


def words_for_model(model: str) -> ModelWords:
    """What the model a request names knows, read from its files without loading it. A checkpoint
    file (Stable Diffusion: the CLIP vocabulary), a model on a server or a missing one: open."""
    if model in ("", BUILTIN_MODEL):
        from canvas_app.resources import builtin_model_dir

        try:
            return folder_words(builtin_model_dir())
        except FileNotFoundError:
            return OPEN_VOCABULARY
    path = Path(model).expanduser()
    return folder_words(path) if path.is_dir() else OPEN_VOCABULARY

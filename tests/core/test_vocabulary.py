"""What a model knows, read from its files without torch (core.vocabulary; issue 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from canvas_app.core.vocabulary import (
    BUILTIN_POSITION_WORDS,
    ModelWords,
    folder_words,
    prompt_words,
    words_for_model,
)

SPECIALS = {"<|startoftext|>": 0, "<|endoftext|>": 1}


def _folder(root: Path, tokens: list[str], file: str = "vocab.json") -> Path:
    (root / "tokenizer").mkdir(parents=True)
    (root / "model_index.json").write_text("{}")
    vocab = dict(SPECIALS) | {t: i + 2 for i, t in enumerate(tokens)}
    data = vocab if file == "vocab.json" else {"model": {"type": "BPE", "vocab": vocab}}
    (root / "tokenizer" / file).write_text(json.dumps(data))
    return root


def test_prompt_words_are_lower_case_in_order_once_each() -> None:
    assert prompt_words("A Cat, a cat; don't\nSUN-set 猫") == ["a", "cat", "don't", "sun", "set", "猫"]


def test_the_builtin_model_knows_42_words_and_ignores_position_words() -> None:
    words = words_for_model("builtin")
    assert words.word_count == 42
    assert words_for_model("") == words
    assert set(BUILTIN_POSITION_WORDS) <= (words.known or set())  # it reads them, places nothing by them
    assert words.unknown("two yellow circles in the center, purple background") == []
    assert words.unknown("a cat on a sofa, sunset") == ["cat", "sofa", "sunset"]
    assert words.ignored_in("a red house on the LEFT, a tree right") == ["left", "right"]
    assert words.notices("a red house on the left, a cat", "blurry") == [
        'this model does not know the words "cat" in the prompt: it reads them letter by letter and '
        "they mean nothing to it",
        'this model does not know the words "blurry" in the negative prompt: it reads them letter by '
        "letter and they mean nothing to it",
        'this model ignores the position words "left": on the canvas the frame says where (draw the '
        "frame where the thing should go)",
    ]


def test_a_word_list_folder_is_read_from_vocab_json_or_tokenizer_json(tmp_path: Path) -> None:
    tokens = [*"abc", "a</w>", "red</w>", "sky</w>", "re", "sk"]
    for file in ("vocab.json", "tokenizer.json"):
        words = words_for_model(str(_folder(tmp_path / file, tokens, file)))
        assert words.known is not None and words.word_count == 3
        assert words.unknown("a red cat") == ["cat"]
        assert words.ignored == ()  # position words are the built-in model's limit, not every word list's


def test_a_clip_vocabulary_knows_every_word(tmp_path: Path) -> None:
    from canvas_app.engine.clip_vocab import vocab_and_merges  # torch-free: the vocabulary file only

    vocab, _merges = vocab_and_merges()
    folder = _folder(tmp_path / "sd", list(vocab))
    assert words_for_model(str(folder)).known is None
    assert words_for_model(str(folder)).notices("a cat on a sofa on the left", "blurry") == []


def test_checkpoints_missing_models_and_unreadable_tokenizers_are_open(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\0" * 16)
    broken = tmp_path / "broken"
    (broken / "tokenizer").mkdir(parents=True)
    (broken / "tokenizer" / "vocab.json").write_text("{not json")
    for model in (str(checkpoint), str(tmp_path / "gone"), "someone/model", str(broken)):
        assert words_for_model(model) == ModelWords(), model


def test_a_replaced_tokenizer_is_read_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m", ["red</w>"])
    assert folder_words(folder).unknown("red sky") == ["sky"]
    vocab_file = folder / "tokenizer" / "vocab.json"
    vocab_file.write_text(json.dumps(dict(SPECIALS) | {"red</w>": 2, "sky</w>": 3}))
    stat = vocab_file.stat()
    os.utime(vocab_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert folder_words(folder).unknown("red sky") == []

"""The engine names the prompt words a word-list model does not know, or ignores (issue 16)."""

from __future__ import annotations

from pathlib import Path

from conftest import run

from canvas_app.cli import main
from canvas_app.core.regions import Region
from canvas_app.core.vocabulary import ModelWords, words_for_model
from canvas_app.engine.api import Finished, GenerationRequest

BUILTIN_TOKENIZER = Path(__file__).parents[2] / "resources" / "models" / "builtin" / "tokenizer"


def test_the_builtin_tokenizer_knows_its_words_and_names_the_others() -> None:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(BUILTIN_TOKENIZER)
    words = ModelWords.from_tokens(tokenizer.get_vocab())
    assert words.word_count == 42  # the model card's count: 41 words and "a"
    assert words.unknown("a red house on the left, a green tree on the right, blue sky") == []
    assert words.unknown("A cat on a Sofa, a cat; sunset!") == ["cat", "sofa", "sunset"]
    assert words.unknown("猫 house") == ["猫"]
    # What the panel reads from the files is what the tokenizer holds as one token: the panel and
    # the engine name the same words.
    assert words_for_model("builtin").known == words.known
    for word in sorted(words.known or ()):
        assert tokenizer.tokenize(word) == [f"{word}</w>"], word
    for word in ("cat", "hou", "houses's", "don't", "42"):
        assert len(tokenizer.tokenize(word)) > 1 and words.unknown(word) == [word]


def test_an_open_vocabulary_has_no_unknown_words() -> None:
    # A subword vocabulary (CLIP's: about 30,000 whole words plus pieces) spells every word out of
    # pieces that mean something to the model, so nothing is reported.
    from transformers import CLIPTokenizer

    from canvas_app.engine.clip_vocab import clip_tokenizer

    vocab = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
    vocab.update({f"word{i}</w>": len(vocab) + i for i in range(6000)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    for tokenizer in (CLIPTokenizer(vocab=vocab, merges=[]), clip_tokenizer()):
        words = ModelWords.from_tokens(tokenizer.get_vocab())
        assert words.known is None and words.word_count is None
        assert words.notices("a cat on a sofa, on the left", "blurry") == []


def test_a_run_with_unknown_words_finishes_with_a_notice_naming_them(engine, sd4: str) -> None:
    # The tiny model's tokenizer knows twelve words (tiny_models.WORDS): "on" and "sofa" are not among them.
    request = GenerationRequest(
        prompt="a cat on a sofa", negative_prompt="blurry", model=sd4, width=64, height=64, steps=2, seed=1
    )
    events = run(engine, request)
    assert isinstance(events[-1], Finished)
    notices = [n for n in events[-1].notices if "words" in n]
    assert len(notices) == 2, events[-1].notices
    assert '"on", "sofa" in the prompt' in notices[0] and '"blurry" in the negative prompt' in notices[1]
    known = run(engine, request.with_changes(prompt="a red house", negative_prompt="dog"))[-1]
    assert isinstance(known, Finished) and not [n for n in known.notices if "words" in n]


def test_a_region_prompt_is_named_as_such_in_the_notice(engine, sd4: str) -> None:
    # The words the panel's region note names (core.vocabulary.REGION_LABELS), after the run too.
    region = Region(0, 0, 32, 64, prompt="a red sofa", negative_prompt="blurry")
    request = GenerationRequest(
        prompt="a red house", model=sd4, width=64, height=64, steps=2, seed=1, regions=(region,)
    )
    last = run(engine, request)[-1]
    assert isinstance(last, Finished), last
    words = [n for n in last.notices if "words" in n]
    assert len(words) == 2, last.notices
    assert '"sofa" in the region prompt:' in words[0] and '"blurry" in the region negative prompt' in words[1]


def test_a_builtin_run_says_position_words_are_ignored(engine) -> None:
    request = GenerationRequest(
        prompt="a red house on the left, a cat", model="builtin", width=64, height=64, steps=2, seed=1
    )
    last = run(engine, request)[-1]
    assert isinstance(last, Finished), last
    assert 'this model does not know the words "cat" in the prompt' in "\n".join(last.notices)
    position = [n for n in last.notices if "position words" in n]
    assert position == [
        'this model ignores the position words "left": on the canvas the frame says where '
        "(draw the frame where the thing should go)"
    ]


def test_the_cli_prints_the_unknown_words(sd4: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sofa.png"
    args = ["generate", "--prompt", "a cat on a sofa", "--model", sd4, "--size", "64x64"]
    assert main([*args, "--steps", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert 'note: this model does not know the words "on", "sofa" in the prompt' in err
    assert out.exists()

"""The engine names the prompt words a word-list model does not know (issue 16)."""

from __future__ import annotations

from pathlib import Path

from conftest import run

from canvas_app.cli import main
from canvas_app.engine.api import Finished, GenerationRequest
from canvas_app.engine.conditioning import unknown_words, vocabulary_size

BUILTIN_TOKENIZER = Path(__file__).parents[2] / "resources" / "models" / "builtin" / "tokenizer"


def test_the_builtin_tokenizer_knows_its_words_and_names_the_others() -> None:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(BUILTIN_TOKENIZER)
    assert 30 < vocabulary_size(tokenizer) < 100  # "a" is counted as a letter
    assert unknown_words(tokenizer, "a red house on the left, a green tree on the right, blue sky") == []
    assert unknown_words(tokenizer, "A cat on a Sofa, a cat; sunset!") == ["cat", "sofa", "sunset"]
    assert unknown_words(tokenizer, "猫 house") == ["猫"]


def test_an_open_vocabulary_has_no_unknown_words(tmp_path: Path) -> None:
    # A subword vocabulary (CLIP's: about 30,000 whole words plus pieces) spells every word out of
    # pieces that mean something to the model, so nothing is reported.
    from transformers import CLIPTokenizer

    vocab = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
    vocab.update({f"word{i}</w>": len(vocab) + i for i in range(6000)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    assert vocabulary_size(tokenizer) is None
    assert unknown_words(tokenizer, "a cat on a sofa") == []


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


def test_the_cli_prints_the_unknown_words(sd4: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sofa.png"
    args = ["generate", "--prompt", "a cat on a sofa", "--model", sd4, "--size", "64x64"]
    assert main([*args, "--steps", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert 'note: this model does not know the words "on", "sofa" in the prompt' in err
    assert out.exists()

"""A1111's ``parameters`` text: the one writer and parser, against strings A1111 and Forge write."""

from __future__ import annotations

import time

import pytest

from canvas_app.core.a1111 import (
    SAMPLER_NAMES,
    a1111_sampler,
    format_infotext,
    parse_infotext,
    quote,
    sampler_from_a1111,
)

FIELDS = [("Steps", 20), ("Sampler", "Euler a"), ("CFG scale", "7"), ("Seed", 1), ("Size", "512x512")]

TRICKY = [
    ("a cat, on a mat", "blurry, dark"),
    ("line one\nline two, with a comma\nline three: with a colon", "bad\nworse, much\nworst: ever"),
    ('a "quoted" word, (emphasis:1.3), [alt|ernate], <lora:x:0.8>', 'no "quotes", please'),
    ("ünïcødé 猫 🐱, émoji", "ぼやけた, 低品質"),
    ("Steps: 3, Sampler: fake, Seed: 9", "Steps: 4, Sampler: fake, Seed: 9"),  # looks like settings
    ("", "only a negative"),
    ("only a positive", ""),
    ("back\\slash, tab\tinside", "negative with trailing words Negative prompt: inside"),
]


@pytest.mark.parametrize(("prompt", "negative"), TRICKY)
def test_writer_then_parser_gives_back_prompts_and_fields(prompt: str, negative: str) -> None:
    fields = [*FIELDS, ("Model", "my, model: v2"), ("Lora hashes", 'x: "1a", y: "2b"')]
    info = parse_infotext(format_infotext(prompt, negative, fields))
    assert (info.prompt, info.negative_prompt) == (prompt, negative)
    assert info.fields == {k: str(v) for k, v in fields}


def test_multi_line_negative_prompt_stays_negative() -> None:
    # Defect 9: the old drop reader put the later lines of the negative prompt into the prompt.
    text = "castle\nNegative prompt: ugly\nblurry\nlow quality\nSteps: 30, Sampler: Euler a, CFG scale: 7.5"
    info = parse_infotext(text)
    assert info.prompt == "castle"
    assert info.negative_prompt == "ugly\nblurry\nlow quality"


def test_real_a1111_infotext() -> None:
    # As A1111 1.10 writes it (hires fix, ADetailer-style quoted values, a Lora hash list).
    text = (
        "masterpiece, 1girl, (Henri-Julien Dumont:1.4), <lora:add_detail:0.6>,\n"
        "looking at viewer\n"
        "Negative prompt: (worst quality:1.4), (low quality:1.4), watermark,\n"
        "text\n"
        "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 2179987202, "
        "Size: 512x768, Model hash: 93b79e09ed, Model: anything-v4.5-pruned, Denoising strength: 0.45, "
        'Clip skip: 2, ADetailer prompt: "face, smile", Hires upscale: 2, Hires upscaler: Latent, '
        'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1'
    )
    info = parse_infotext(text)
    assert (
        info.prompt
        == "masterpiece, 1girl, (Henri-Julien Dumont:1.4), <lora:add_detail:0.6>,\nlooking at viewer"
    )
    assert info.negative_prompt == "(worst quality:1.4), (low quality:1.4), watermark,\ntext"
    f = info.fields
    assert (f["Steps"], f["Sampler"], f["Schedule type"], f["CFG scale"]) == (
        "28",
        "DPM++ 2M",
        "Karras",
        "6.5",
    )
    assert (f["Seed"], f["Size"], f["Model"], f["Denoising strength"]) == (
        "2179987202",
        "512x768",
        "anything-v4.5-pruned",
        "0.45",
    )
    assert f["ADetailer prompt"] == "face, smile" and f["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert f["Version"] == "v1.10.1" and f["Clip skip"] == "2"


def test_old_a1111_infotext_and_no_negative() -> None:
    text = "a castle on a hill\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"
    info = parse_infotext(text)
    assert info.prompt == "a castle on a hill" and info.negative_prompt == ""
    assert info.fields["Sampler"] == "DPM++ 2M Karras" and "Schedule type" not in info.fields


def test_text_without_settings_line_is_all_prompt() -> None:
    info = parse_infotext("just a prompt\nwith: two lines, Steps: 3")
    assert info.prompt == "just a prompt\nwith: two lines, Steps: 3" and info.fields == {}


def test_quote_follows_a1111() -> None:
    assert quote("Euler a") == "Euler a"
    assert quote("a, b") == '"a, b"' and quote("ü: x") == '"ü: x"' and quote("x\ny") == '"x\\ny"'


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_sampler_round_trips_through_sampler_and_schedule_type(name: str) -> None:
    sampler, schedule = a1111_sampler(name)
    assert sampler_from_a1111(sampler, schedule) == (name, None)


@pytest.mark.parametrize(
    ("sampler", "schedule", "ours"),
    [
        ("DPM++ 2M", "Karras", "DPM++ 2M Karras"),
        ("DPM++ 2M", "Automatic", "DPM++ 2M Karras"),  # A1111 1.9+: Automatic is Karras for DPM++ 2M
        ("DPM++ 2M", None, "DPM++ 2M"),  # before 1.9 there was no schedule type: plain DPM++ 2M
        ("DPM++ 2M Karras", None, "DPM++ 2M Karras"),
        ("DPM++ SDE Karras", None, "DPM++ SDE"),
        ("euler  A", "automatic", "Euler a"),
        ("Euler", "Uniform", "Euler"),
    ],
)
def test_a1111_samplers_map_to_ours(sampler: str, schedule: str | None, ours: str) -> None:
    assert sampler_from_a1111(sampler, schedule) == (ours, None)


def test_unknown_sampler_or_schedule_says_so() -> None:
    assert sampler_from_a1111("Heun", "Automatic")[0] is None
    ours, notice = sampler_from_a1111("DPM++ 2M", "Exponential")
    assert ours == "DPM++ 2M" and notice and "Exponential" in notice


def test_sampler_names_match_the_engine() -> None:
    from canvas_app.engine.schedulers import SCHEDULER_NAMES

    assert set(SAMPLER_NAMES) == set(SCHEDULER_NAMES)


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1_000_000,  # A1111's own regex: 7 s at 20,000 characters, quadratic (hours here)
        "ab cd" * 200_000 + "\n" + "k:" * 100_000,
        'a: "x, ' * 100_000,
        ":" * 1_000_000,
        "\n" * 1_000_000,
        'Steps: "' + "\\" * 500_000,
    ],
)
def test_parser_time_is_linear_on_hostile_text(hostile: str) -> None:
    start = time.perf_counter()
    parse_infotext(hostile)
    assert time.perf_counter() - start < 3.0

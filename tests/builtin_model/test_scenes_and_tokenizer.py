import random

import numpy as np

from tools.builtin_model.scenes import (
    HALF_INSIDE,
    HELD_OUT,
    SCENE_H,
    SCENE_W,
    Scene,
    SceneObject,
    caption_for_crop,
    crop_groups,
    render_scene,
    vocabulary,
)
from tools.builtin_model.tokenizer import build_word_tokenizer


def test_scenes_are_deterministic_by_seed():
    a_scene, a = render_scene(42)
    b_scene, b = render_scene(42)
    assert a.shape == (SCENE_H, SCENE_W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and a_scene == b_scene
    assert not np.array_equal(a, render_scene(43)[1])


def test_training_scenes_never_show_held_out_combinations():
    seen = set()
    for seed in range(150):
        scene, _ = render_scene(seed)
        for crop_x in (0, 64, 128):
            seen |= {(kind, color) for kind, color, _, _ in crop_groups(scene, crop_x, 128)}
    assert seen and not (seen & HELD_OUT)
    held = set()
    for seed in range(150):
        scene, _ = render_scene(seed, include_held_out=True)
        held |= {(o.kind, o.color) for o in scene.objects}
    assert ("sun", "purple") in held and ("house", "black") in held


def test_captions_describe_what_the_crop_shows():
    for seed in range(50):
        scene, _ = render_scene(seed)
        caption = caption_for_crop(scene, 64, 128)
        assert caption.endswith("sky, hills") or "sky, hills," in caption or caption.endswith("background")
        for kind, color, _, position in crop_groups(scene, 64, 128):
            assert f"{color} {kind}" in caption
            assert position == "center" or f"on the {position}" in caption
    scene, _ = render_scene(3)
    short = caption_for_crop(scene, 64, 128, random.Random(0))
    assert len(short) <= len(caption_for_crop(scene, 64, 128))


def test_complete_captions_also_name_objects_half_inside_the_crop():
    scene = Scene("shapes", "white")
    scene.objects.append(SceneObject("circle", "red", (20, 40, 50, 70)))  # inside the crop
    scene.objects.append(SceneObject("circle", "red", (118, 40, 148, 70)))  # a third of it inside
    scene.objects.append(SceneObject("square", "blue", (-12, 10, 18, 40)))  # 18 of its 30 px inside
    assert caption_for_crop(scene, 0, 128) == "a red circle on the left, white background"
    assert (
        caption_for_crop(scene, 0, 128, min_inside=HALF_INSIDE)
        == "a red circle on the left, a blue square on the left, white background"
    )
    # Dropped phrases never include the first one.
    assert caption_for_crop(scene, 0, 128, random.Random(1), HALF_INSIDE).startswith("a red circle")


def test_every_vocabulary_word_is_one_token(tmp_path):
    words = vocabulary()
    tokenizer = build_word_tokenizer(words, tmp_path)
    for word in words:
        assert len(tokenizer.tokenize(word)) == 1, word
    # Unknown words still tokenize (into pieces), and the saved files reload offline.
    assert len(tokenizer.tokenize("zebra")) > 1
    from transformers import CLIPTokenizer

    again = CLIPTokenizer.from_pretrained(tmp_path)
    assert again("a red house").input_ids == tokenizer("a red house").input_ids

"""The attribute classifier that judges generated images: labels, augmentation, fit and predict."""

import numpy as np
import pytest
import torch

from tools.builtin_model import classifier
from tools.builtin_model.scenes import Scene, SceneObject, render_scene


def test_labels_name_the_largest_group_of_the_crop():
    scene, _ = render_scene(10_000_123, include_held_out=True)
    for crop_x in range(0, 129, 32):
        labels = classifier.crop_labels(scene, crop_x)
        if labels is None:
            continue
        assert labels["setting"] in classifier.ATTRIBUTES["setting"]
        assert labels["kind"] in classifier.ATTRIBUTES["kind"]
        assert labels["position"] in ("left", "center", "right")


def test_a_main_object_is_clear_only_when_no_other_group_rivals_its_size():
    def scene_with(*objects):
        scene = Scene("shapes", "white")
        scene.objects.extend(SceneObject(*o) for o in objects)
        return scene

    big = ("circle", "red", (10, 10, 46, 46))
    assert classifier.main_object_is_clear(scene_with(big), 0)
    assert classifier.main_object_is_clear(scene_with(big, ("square", "blue", (60, 10, 82, 32))), 0)
    assert not classifier.main_object_is_clear(scene_with(big, ("square", "blue", (60, 10, 94, 44))), 0)
    # Two of the same group do not compete with each other.
    assert classifier.main_object_is_clear(scene_with(big, ("circle", "red", (60, 10, 94, 44))), 0)
    assert not classifier.main_object_is_clear(scene_with(), 0)


def test_augmentation_softens_and_tints_but_keeps_the_shape():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 3, 64, 64)
    x[:, :, 20:40, 20:40] = 1.0
    outs = [classifier.augment(x, gen) for _ in range(8)]
    assert all(o.shape == x.shape for o in outs)
    assert all(not torch.equal(o, x) for o in outs)
    # Still recognisably the same square: the centre stays brighter than the corner.
    assert all(float((o[:, :, 30, 30] - o[:, :, 2, 2]).min()) > 0.5 for o in outs)


def test_a_short_fit_reports_every_attribute_and_predicts_valid_labels():
    clf = classifier.AttributeClassifier()
    accuracy = clf.fit(n_scenes=40, epochs=1)
    assert {"main_object_clear", "all_crops", "kind_recall_main_object_clear"} <= set(accuracy)
    for split in (accuracy["main_object_clear"], accuracy["all_crops"]):
        assert set(split) == set(classifier.ATTRIBUTES)
        assert all(0.0 <= a <= 1.0 for a in split.values())
    _, pixels = render_scene(5)
    predictions = clf.predict(np.stack([pixels[:, :128], pixels[:, 128:]]))
    assert len(predictions) == 2
    for p in predictions:
        assert all(p[k] in classifier.ATTRIBUTES[k] for k in classifier.ATTRIBUTES)


def test_zoomed_crops_keep_their_main_object_and_teach_no_position():
    rng = np.random.default_rng(0)
    images, labels, clear, placed = classifier.labelled_crops(
        range(10_000_000, 10_000_030), rng, 3, zoom_share=1.0
    )
    assert images.shape[1:] == (128, 128, 3)
    assert not placed[clear].any()  # every clear crop was zoomed
    assert placed[~clear].all()  # unclear ones are left as they were
    # Without zoom every crop is a window of its scene, as before zooming existed.
    plain, _, _, plain_placed = classifier.labelled_crops(
        range(10_000_000, 10_000_010), np.random.default_rng(0), 3
    )
    assert plain_placed.all()
    scene_pixels = render_scene(10_000_000, include_held_out=True)[1]
    assert any(np.array_equal(plain[0], scene_pixels[:, x : x + 128]) for x in range(0, 129, 4))


def test_a_fit_resumed_from_its_checkpoint_ends_where_an_unbroken_fit_does(tmp_path, monkeypatch):
    torch.manual_seed(0)
    whole = classifier.AttributeClassifier()
    whole.fit(n_scenes=16, epochs=2)
    real_save = torch.save

    def save_then_stop(obj, path):  # the run is killed right after its first checkpoint
        real_save(obj, path)
        raise KeyboardInterrupt

    checkpoint = tmp_path / "fit.pt"
    torch.manual_seed(0)
    monkeypatch.setattr(torch, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        classifier.AttributeClassifier().fit(n_scenes=16, epochs=2, checkpoint=checkpoint)
    monkeypatch.undo()
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1
    resumed = classifier.AttributeClassifier()
    resumed.fit(n_scenes=16, epochs=2, checkpoint=checkpoint)
    for key, value in whole.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


def test_shipped_weights_load_small_and_judge_renders():
    assert classifier.WEIGHTS.stat().st_size < 2_000_000
    clf = classifier.AttributeClassifier()
    accuracy = clf.load()
    assert accuracy["main_object_clear"]["kind"] > 0.85  # what the fit measured: 0.90
    images, labels, clear, _ = classifier.labelled_crops(
        range(50_000_000, 50_000_040), np.random.default_rng(1), 2
    )
    predicted = clf.predict(images[clear])
    wanted = [lab for lab, c in zip(labels, clear, strict=True) if c]
    kind = np.mean([p["kind"] == w["kind"] for p, w in zip(predicted, wanted, strict=True)])
    color = np.mean([p["color"] == w["color"] for p, w in zip(predicted, wanted, strict=True)])
    assert kind > 0.7 and color > 0.8, (kind, color)

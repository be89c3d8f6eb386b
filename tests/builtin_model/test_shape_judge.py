"""The inpainting judge that needs no fit reads the cases' own renders right (issue 16)."""

from __future__ import annotations

import numpy as np

from tools.builtin_model import shape_judge
from tools.builtin_model.evaluate import inpaint_cases
from tools.builtin_model.scenes import COLORS


def test_it_reads_kind_and_colour_of_every_case_render_and_nothing_in_an_empty_mask() -> None:
    cases = inpaint_cases(20)  # the first 20 of the 50 that evaluate.py uses
    assert {labels["kind"] for _, _, labels, _ in cases} == {"circle", "square", "triangle"}
    for crop, mask, labels, want in cases:
        assert shape_judge.judge(crop, mask) == {"kind": labels["kind"], "color": labels["color"]}
        assert (want["kind"], want["color"]) != (labels["kind"], labels["color"])
        # The object painted over with the background: nothing there.
        background = np.median(crop[mask == 0], axis=0).astype(np.uint8)
        assert shape_judge.judge(np.where(mask[..., None] > 0, background, crop), mask)["kind"] == "none"


def test_a_blurred_recoloured_square_is_still_a_square_of_the_new_colour() -> None:
    import cv2

    image = np.full((128, 128, 3), COLORS["white"], np.uint8)
    image[40:80, 50:90] = COLORS["purple"]
    image = cv2.GaussianBlur(image, (5, 5), 1.5)
    mask = np.zeros((128, 128), np.uint8)
    mask[30:90, 40:100] = 255
    assert shape_judge.judge(image, mask) == {"kind": "square", "color": "purple"}

"""The photo VAE's loss: its CIELAB term matches the numpy measure and weighs colour casts as ΔE does."""

import numpy as np
import torch

from canvas_app.core.colour import srgb_to_lab as numpy_lab
from tools.builtin_model.photo_loss import reconstruction_loss, srgb_to_lab


def test_torch_lab_matches_the_numpy_measure_and_has_finite_gradients_at_black_and_white():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 6, 5, 3)).astype(np.uint8)
    pixels[0, 0, 0], pixels[0, 0, 1] = 0, 255
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255).requires_grad_(True)
    lab = srgb_to_lab(x)
    np.testing.assert_allclose(lab.detach().permute(0, 2, 3, 1).numpy(), numpy_lab(pixels), atol=1e-3)
    lab.sum().backward()
    assert torch.isfinite(x.grad).all()


def _flat(rgb):
    return (torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 127.5 - 1).expand(1, 3, 8, 8)


def test_lab_term_weighs_a_grey_turned_pink_more_than_the_same_change_on_a_green():
    # Both change two channels by 25 (the same RGB L1); ΔE00 15.5 for the grey, 7.4 for the green.
    grey, pink = _flat((128, 128, 128)), _flat((153, 128, 153))
    green, greener = _flat((40, 160, 40)), _flat((40, 185, 65))
    rgb_only = reconstruction_loss(pink, grey), reconstruction_loss(greener, green)
    assert torch.isclose(*rgb_only)
    lab_terms = [
        reconstruction_loss(a, b, 5.0) - loss
        for (a, b), loss in zip(((pink, grey), (greener, green)), rgb_only)
    ]
    assert lab_terms[0] > 1.5 * lab_terms[1] > 0
    assert reconstruction_loss(grey, grey, 5.0) == 0

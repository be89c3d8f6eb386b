"""The photo VAE's training loss, in torch: what the round trip must keep of a photograph.

Measured on the held-out photos, nearly all of the fine-tuned VAE's colour error is at low frequency
(mean CIEDE2000 9.0 per pixel, 8.2 on 4 x 4 block means, 7.5 on 16 x 16 block means): a cast over
whole areas, not lost grain. An L1 in RGB weighs a grey turned pink as little as a slightly darker
green; an L1 in CIELAB on the block means weighs them as the eye (and ΔE00) does.
"""

from __future__ import annotations

# sRGB (linear) to CIE XYZ divided by the D65 white, as in colour.py (the numpy measure).
_RGB_TO_XYZ = (
    (0.4124564 / 0.95047, 0.3575761 / 0.95047, 0.1804375 / 0.95047),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339 / 1.08883, 0.1191920 / 1.08883, 0.9503041 / 1.08883),
)


def srgb_to_lab(rgb):
    """(N, 3, H, W) sRGB in 0..1 -> CIELAB (L in 0..100), differentiable everywhere."""
    import torch

    c = rgb.clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055).clamp_min(1e-6) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,njhw->nihw", m, linear)
    eps = (6 / 29) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def reconstruction_loss(rec, x, lab_weight: float = 0.0):
    """L1, plus L1 of the image gradients (edges and grain, which L1 alone blurs), plus L1 at a
    quarter of the size (the colour of areas), plus (``lab_weight``) the L1 in CIELAB of those
    quarter-size images, per 100 Lab units. ``rec`` and ``x`` are in -1..1."""
    import torch.nn.functional as F

    def grads(t):
        return t[..., 1:, :] - t[..., :-1, :], t[..., :, 1:] - t[..., :, :-1]

    (ry, rx), (xy, xx) = grads(rec), grads(x)
    edge = (ry - xy).abs().mean() + (rx - xx).abs().mean()
    rec4, x4 = F.avg_pool2d(rec, 4), F.avg_pool2d(x, 4)
    loss = (rec - x).abs().mean() + 0.5 * edge + (rec4 - x4).abs().mean()
    if lab_weight:
        lab = (srgb_to_lab((rec4 + 1) / 2) - srgb_to_lab((x4 + 1) / 2)).abs().mean()
        loss = loss + lab_weight * lab / 100
    return loss

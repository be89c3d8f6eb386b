"""A wider copy of a VAE that computes the same function (Net2WiderNet, Chen et al. 2016).

The built-in VAE (channels 32/64/64, 0.92 M parameters) serves the rendered scenes and photographs
with one decoder, and every step that teaches it photographs costs the scenes (30.7 dB down to
29.2-29.8). More channels give it room for both, and starting from the shipped weights keeps the
latent space, so the UNets still fit the widened VAE's latents, where a VAE trained anew would need
them retrained.

Each channel ``c`` of a widened layer becomes channels ``k * c .. k * c + k - 1``, copies of it. A
convolution reading widened channels splits each old weight over the copies, unevenly (the shares
sum to one, so the output is unchanged), otherwise the copies would get equal gradients and stay
copies forever. GroupNorm keeps its number of groups: each group then holds ``k`` copies of each of
its old channels, so its mean and variance, and so the whole function, stay exactly the same.
"""

from __future__ import annotations


def widened_config(config, factor: int) -> dict:
    out = dict(config)
    out["block_out_channels"] = [c * factor for c in config["block_out_channels"]]
    return out


def widen(vae, factor: int = 2, seed: int = 0, spread: float = 0.2):
    """A VAE with ``factor`` times the channels, the same function as ``vae`` (up to float rounding).

    ``spread`` is how unevenly a weight is split over a channel's copies (0: evenly, no symmetry
    breaking); the split shares are ``1/k +- spread/k`` and sum to one."""
    import torch
    from diffusers import AutoencoderKL

    wide = AutoencoderKL.from_config(widened_config(vae.config, factor))
    generator = torch.Generator().manual_seed(seed)
    narrow_state = vae.state_dict()
    new_state = {}
    for name, wide_value in wide.state_dict().items():
        old = narrow_state[name]
        value = old
        if old.ndim == 0:
            new_state[name] = old.clone()
            continue
        # Output channels (dim 0) of weights, biases and norms: copies of the old channel.
        if wide_value.shape[0] != old.shape[0]:
            k = wide_value.shape[0] // old.shape[0]
            value = value.repeat_interleave(k, dim=0)
        # Input channels (dim 1 of a convolution): the old weight split over the copies.
        if value.ndim == 4 and wide_value.shape[1] != old.shape[1]:
            k = wide_value.shape[1] // old.shape[1]
            value = value.repeat_interleave(k, dim=1)
            shares = _split_shares(value.shape, k, spread, generator)
            value = value * shares
        if value.shape != wide_value.shape:
            raise ValueError(f"cannot widen {name}: {tuple(old.shape)} -> {tuple(wide_value.shape)}")
        new_state[name] = value.to(wide_value.dtype)
    wide.load_state_dict(new_state)
    return wide


def _split_shares(shape, k: int, spread: float, generator):
    """Per weight, ``k`` shares along dim 1 (each old input channel's copies are adjacent) that sum
    to one: 1/k plus a random offset, the offsets of one group of copies summing to zero."""
    import torch

    out_ch, in_ch, kh, kw = shape
    offsets = (torch.rand((out_ch, in_ch // k, k, kh, kw), generator=generator) * 2 - 1) * spread
    offsets = offsets - offsets.mean(dim=2, keepdim=True)
    shares = (1.0 + offsets) / k
    return shares.reshape(out_ch, in_ch, kh, kw)

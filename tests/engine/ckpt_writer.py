"""Write a diffusers pipeline folder as an original (LDM layout) single-file checkpoint.

The inverse of the conversion that diffusers' ``from_single_file`` runs, for the SD 1.x layout and
any block count or ``layers_per_block``, so tests can produce a real single-file checkpoint from a
tiny random pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
]
_VAE_ATTN = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def _unet_prefix_map(config: dict) -> list[tuple[str, str]]:
    """(diffusers prefix, ldm prefix) pairs for blocks, longest diffusers prefixes first."""
    n = len(config["block_out_channels"])
    per = config["layers_per_block"]
    pairs: list[tuple[str, str]] = []
    for i in range(n):
        for j in range(per):
            ldm = 1 + i * (per + 1) + j
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{ldm}.0."))
            pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{ldm}.1."))
        if i < n - 1:
            ldm = 1 + i * (per + 1) + per
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{ldm}.0.op."))
    for i in range(n):
        has_attn = config["up_block_types"][i].startswith("CrossAttn")
        for j in range(per + 1):
            ldm = i * (per + 1) + j
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{ldm}.0."))
            pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{ldm}.1."))
        if i < n - 1:
            ldm = i * (per + 1) + per
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{ldm}.{2 if has_attn else 1}."))
    pairs += [
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
    ]
    return sorted(pairs, key=lambda p: -len(p[0]))


def _convert_unet(state: dict, config: dict) -> dict:
    out = {}
    pairs = _unet_prefix_map(config)
    for key, value in state.items():
        for old, new in pairs:
            if key.startswith(old):
                rest = key[len(old) :]
                if ".resnets." in old or old.startswith("mid_block.resnets"):
                    for d, ldm in _RESNET:
                        rest = rest.replace(d, ldm)
                out["model.diffusion_model." + new + rest] = value
                break
        else:
            raise KeyError(f"no LDM name for UNet weight {key}")
    return out


def _convert_vae(state: dict, config: dict) -> dict:
    n = len(config["block_out_channels"])
    out = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out")
        for i in range(n):
            new = new.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
            new = new.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
            new = new.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{n - 1 - i}.block.")
            new = new.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.")
        new = new.replace("mid_block.resnets.0.", "mid.block_1.").replace(
            "mid_block.resnets.1.", "mid.block_2."
        )
        new = new.replace("conv_shortcut", "nin_shortcut")
        if "mid_block.attentions.0." in new:
            new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
            for d, ldm in _VAE_ATTN:
                new = new.replace(d, ldm)
            if value.ndim == 2:  # LDM stores the attention projections as 1x1 convolutions
                value = value[:, :, None, None]
        out["first_stage_model." + new] = value
    return out


def write_single_file(pipeline_dir: Path, out_file: Path) -> Path:
    """Save ``pipeline_dir`` (an SD 1.x style diffusers folder) as one LDM .safetensors file."""
    from safetensors.torch import load_file, save_file

    state: dict = {}
    unet_cfg = json.loads((pipeline_dir / "unet" / "config.json").read_text())
    vae_cfg = json.loads((pipeline_dir / "vae" / "config.json").read_text())
    state.update(
        _convert_unet(load_file(pipeline_dir / "unet" / "diffusion_pytorch_model.safetensors"), unet_cfg)
    )
    state.update(
        _convert_vae(load_file(pipeline_dir / "vae" / "diffusion_pytorch_model.safetensors"), vae_cfg)
    )
    for key, value in load_file(pipeline_dir / "text_encoder" / "model.safetensors").items():
        # transformers 5 saves CLIPTextModel without its "text_model." prefix; LDM files have it.
        name = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + name] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(out_file))
    return out_file

"""Why the built-in model ignores position words: three measurements on a shipped pipeline folder.

    python bench/position_diagnostics.py [--model resources/models/builtin]

- separation: how far apart "... on the left ..." and "... on the right ..." are in the text
  encoder's output (at the word and over the whole sequence) and in the UNet's output from pure noise.
- attention: the share of each cross-attention layer's weight on each prompt word at the pure-noise
  step, by thirds of the image (left / middle / right). Equal thirds mean the layer conditions what
  is drawn, not where.
- signal: on single-object crops of rendered training scenes (encoded with the model's own VAE), the
  share of latent variance that setting, kind + colour, and position explain: how much a perfect
  model could gain from each at the pure-noise step.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

PROMPT = "a red circle on the {}, white background"


def load(model: Path):
    from diffusers import StableDiffusionPipeline

    from canvas_app.engine.builtin_weights import from_pretrained

    return from_pretrained(StableDiffusionPipeline, model, safety_checker=None)


def encode(pipe, prompts: list[str]) -> torch.Tensor:
    from tools.builtin_model.train import encode_text

    return encode_text(pipe.tokenizer, pipe.text_encoder, prompts)


def pure_noise(pipe, n: int) -> torch.Tensor:
    size = pipe.unet.config.sample_size
    return torch.randn(
        n, pipe.unet.config.in_channels, size, size, generator=torch.Generator().manual_seed(0)
    )


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


def separation(pipe) -> None:
    left, right, blue = (
        encode(pipe, [p])
        for p in (PROMPT.format("left"), PROMPT.format("right"), PROMPT.replace("red", "blue").format("left"))
    )
    word = pipe.tokenizer(PROMPT.format("left")).input_ids.index(
        pipe.tokenizer.convert_tokens_to_ids("left</w>")
    )
    print(
        f"text encoder, left vs right: at the word {relative(left[0, word], right[0, word]):.1%}, "
        f"whole sequence {relative(left, right):.1%} (red vs blue: {relative(left, blue):.1%})"
    )
    x, t = pure_noise(pipe, 4), torch.full((4,), pipe.scheduler.config.num_train_timesteps - 1)
    out = {
        k: pipe.unet(x, t, c.expand(4, -1, -1)).sample for k, c in (("L", left), ("R", right), ("B", blue))
    }
    print(
        f"UNet output from pure noise, left vs right: {relative(out['L'], out['R']):.2%} "
        f"(red vs blue: {relative(out['L'], out['B']):.2%})"
    )


def attention(pipe) -> None:
    prompt = PROMPT.format("left")
    ids = pipe.tokenizer(prompt).input_ids
    words = pipe.tokenizer.convert_ids_to_tokens(ids)[1:-1]
    context = encode(pipe, [prompt] * 4)
    rows = []

    def record(name):
        def hook(module, args, kwargs, _out):
            hidden = args[0] if args else kwargs["hidden_states"]
            b, n, c = hidden.shape
            q = module.to_q(hidden).view(b, n, module.heads, -1).transpose(1, 2)
            k = module.to_k(context).view(b, context.shape[1], module.heads, -1).transpose(1, 2)
            weights = ((q @ k.transpose(-1, -2)) * module.scale).softmax(-1).mean(1)  # b, n, tokens
            side = int(n**0.5)
            by_x = weights.view(b, side, side, -1).mean(dim=(0, 1))  # x, tokens
            thirds = [by_x[: side // 3], by_x[side // 3 : 2 * side // 3], by_x[2 * side // 3 :]]
            rows.append((name, side, [part.mean(0) for part in thirds]))

        return hook

    handles = [
        m.register_forward_hook(record(name), with_kwargs=True)
        for name, m in pipe.unet.named_modules()
        if name.endswith("attn2")
    ]
    x, t = pure_noise(pipe, 4), torch.full((4,), pipe.scheduler.config.num_train_timesteps - 1)
    pipe.unet(x, t, context)
    for h in handles:
        h.remove()
    print(
        f"share of attention on each word, left / middle / right third (uniform: {1 / context.shape[1]:.1%})"
    )
    for name, side, thirds in rows:
        cells = "  ".join(
            f"{w.removesuffix('</w>')} " + "/".join(f"{float(part[i + 1]):.1%}" for part in thirds)
            for i, w in enumerate(words)
            if w.removesuffix("</w>") in ("red", "circle", "left", "white", "background")
        )
        print(f"{name} ({side}x{side}): {cells}")


def signal(pipe, scenes: int) -> None:
    from tools.builtin_model.scenes import HALF_INSIDE, SCENE_W, crop_groups, render_scene

    size = pipe.unet.config.sample_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    scale = pipe.vae.config.scaling_factor
    latents, keys = [], []
    for seed in range(scenes):
        scene, pixels = render_scene(10_000_000 + seed)
        for crop_x in range(0, SCENE_W - size + 1, 16):
            groups = crop_groups(scene, crop_x, size, HALF_INSIDE)
            if len(groups) != 1 or groups[0][2] != 1:
                continue
            kind, colour, _, position = groups[0]
            image = (
                torch.from_numpy(pixels[:, crop_x : crop_x + size]).permute(2, 0, 1)[None].float() / 127.5 - 1
            )
            latents.append(pipe.vae.encode(image).latent_dist.mean[0].numpy() * scale)
            keys.append((scene.background, kind, colour, position))
    z = np.stack(latents)
    total = float(((z - z.mean(0)) ** 2).sum())

    def explained(key) -> float:
        groups = defaultdict(list)
        for i, k in enumerate(keys):
            groups[key(k)].append(i)
        within = sum(float(((z[g] - z[g].mean(0)) ** 2).sum()) for g in groups.values())
        return 1 - within / total

    setting, kind_colour, everything = (explained(lambda k, n=n: k[:n]) for n in (1, 3, 4))
    print(
        f"{len(z)} single-object crops of {scenes} scenes: setting explains {setting:.1%} of the "
        f"latent variance, kind + colour {kind_colour - setting:.1%} more, position {everything - kind_colour:.1%} more"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("resources/models/builtin"))
    parser.add_argument("--scenes", type=int, default=1500, help="rendered scenes for the signal measurement")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    pipe = load(args.model)
    separation(pipe)
    attention(pipe)
    signal(pipe, args.scenes)


if __name__ == "__main__":
    main()

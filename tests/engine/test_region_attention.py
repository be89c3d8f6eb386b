"""Regions by masked cross-attention (engine/region_attention.py) on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run

from canvas_app.core.regions import Region
from canvas_app.engine.api import Finished, GenerationRequest, Mode, TilePlan
from canvas_app.engine.region_attention import RegionAttnProcessor, TileTokens, install

LEFT = Region(0, 0, 24, 64, prompt="a red house")
RIGHT = Region(40, 0, 24, 64, prompt="a cat", negative_prompt="dog")


def _request(model: str, **kw) -> GenerationRequest:
    base = dict(prompt="blue sky", width=64, height=64, steps=3, seed=7, model=model)
    base.update(kw)
    return GenerationRequest(**base)


def _image(events) -> np.ndarray:
    assert isinstance(events[-1], Finished), getattr(events[-1], "message", events[-1])
    return events[-1].candidates[0].astype(np.float32)


def test_each_pixel_attends_only_to_the_tokens_of_the_prompt_that_owns_it() -> None:
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=8, heads=2, dim_head=8).eval()
    attn.set_processor(RegionAttnProcessor(AttnProcessor2_0()))
    x = torch.randn(1, 4 * 4, 16)
    background, region = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    weights = torch.zeros(2, 1, 4, 4)
    weights[1, :, :, :2] = 1  # the region owns the left half, the background the rest
    weights[0] = 1 - weights[1]
    tokens = TileTokens([(0, 5), (5, 10)], weights)
    with torch.no_grad():
        masked = attn(x, torch.cat([background, region], dim=1), regions=tokens)
        only_region = attn(x, region)
        only_background = attn(x, background)
        plain = attn(x, background)  # without ``regions`` the wrapped processor runs unchanged
    left = weights[1, 0].flatten().bool()
    torch.testing.assert_close(masked[0, left], only_region[0, left])
    torch.testing.assert_close(masked[0, ~left], only_background[0, ~left])
    torch.testing.assert_close(plain, AttnProcessor2_0()(attn, x, background))


def test_weights_follow_the_layer_resolution() -> None:
    weights = torch.zeros(2, 1, 6, 10)
    weights[1, :, :, :4] = 1
    weights[0] = 1 - weights[1]
    tokens = TileTokens([(0, 1), (1, 2)], weights)
    half = tokens.weights_for(3 * 5)  # a layer downsampled once
    assert half.shape == (2, 1, 15, 1)
    torch.testing.assert_close(half.sum(0), torch.ones(1, 15, 1))
    assert (
        half[1, 0, :, 0].reshape(3, 5)[:, :2].min() == 1 and half[1, 0, :, 0].reshape(3, 5)[:, 2:].max() == 0
    )
    with pytest.raises(ValueError, match="positions"):
        tokens.weights_for(7)


@pytest.mark.parametrize("name", ["sd4", "sdxl4", "inpaint4"])
def test_attention_regions_run_and_a_background_region_changes_nothing(request, engine, name: str) -> None:
    model = request.getfixturevalue(name)
    mode = Mode.TXT2IMG
    extra: dict = {}
    if name == "inpaint4":  # the 9-channel UNet: mask channels go through with the two rows
        mode, mask = Mode.INPAINT, np.zeros((64, 64), np.uint8)
        mask[8:56, 8:56] = 255
        extra = dict(init_image=np.full((64, 64, 3), 128, np.uint8), mask=mask, strength=0.8)
    plain = _image(run(engine, _request(model, mode=mode, **extra)))
    regional = _image(
        run(engine, _request(model, mode=mode, regions=(LEFT, RIGHT), regions_method="attention", **extra))
    )
    assert np.abs(regional - plain).mean() > 0.05
    # A region that reads the frame's prompt: every pixel attends to the same tokens as without it.
    same = Region(8, 8, 32, 32, prompt="")
    unchanged = _image(
        run(engine, _request(model, mode=mode, regions=(same,), regions_method="attention", **extra))
    )
    assert np.abs(unchanged - plain).max() <= 1.0


def test_two_unet_rows_per_tile_whatever_the_regions(engine, sd4: str) -> None:
    model = engine.load(sd4)
    sizes: list[int] = []
    handle = model.unet.register_forward_pre_hook(lambda _m, args: sizes.append(int(args[0].shape[0])))
    try:
        _image(run(engine, _request(sd4, steps=2, regions=(LEFT, RIGHT), regions_method="attention")))
    finally:
        handle.remove()
    assert sizes == [2, 2]  # negatives and positives; multidiffusion sends 5 here


def test_the_installed_processors_change_nothing_without_regions(engine, sd4: str) -> None:
    unet = engine.load(sd4).unet
    install(unet)
    wrapped = unet.attn_processors
    assert all(isinstance(p, RegionAttnProcessor) for p in wrapped.values())
    torch.manual_seed(1)
    x = torch.randn(2, unet.config.in_channels, 8, 8)
    text = torch.randn(2, 77, unet.config.cross_attention_dim)
    with torch.inference_mode():
        through_wrapper = unet(x, 500, encoder_hidden_states=text).sample
        unet.set_attn_processor({name: p.inner for name, p in wrapped.items()})
        try:
            original = unet(x, 500, encoder_hidden_states=text).sample
        finally:
            unet.set_attn_processor(dict(wrapped))
    assert torch.equal(through_wrapper, original)


def test_attention_regions_across_tiles(engine, sd4: str) -> None:
    kw = dict(width=128, tile_plan=TilePlan(64, 32), regions_method="attention")
    plain = _image(run(engine, _request(sd4, **kw)))
    same = _image(run(engine, _request(sd4, regions=(Region(40, 0, 48, 64, prompt=""),), **kw)))
    assert np.abs(same - plain).max() <= 1.0
    other = _image(run(engine, _request(sd4, regions=(Region(40, 0, 48, 64, prompt="a red cat"),), **kw)))
    assert np.abs(other - plain).mean() > 0.05


def test_a_region_changes_mostly_its_own_box_with_attention(engine, sd4: str) -> None:
    plain = _image(run(engine, _request(sd4, width=128, steps=1)))
    box = Region(0, 0, 40, 64, prompt="a red house")
    regional = _image(
        run(engine, _request(sd4, width=128, steps=1, regions=(box,), regions_method="attention"))
    )
    diff = np.abs(regional - plain).mean(axis=2)
    inside, far = diff[:, :32].mean(), diff[:, 72:].mean()
    assert inside > 3 * far, (inside, far)


def test_an_unknown_regions_method_is_refused() -> None:
    with pytest.raises(ValueError, match="regions_method"):
        GenerationRequest(regions_method="cross")
    request = GenerationRequest(regions=(LEFT,), regions_method="attention")
    assert GenerationRequest.from_json(request.to_json()).regions_method == "attention"


def test_a_request_saved_before_the_choice_existed_still_blends_predictions() -> None:
    saved = GenerationRequest(regions=(LEFT,), regions_method="multidiffusion").to_dict()
    del saved["regions_method"]  # what a patch's lineage from an older version holds
    assert GenerationRequest.from_dict(saved).regions_method == "multidiffusion"
    assert GenerationRequest(regions=(LEFT,)).regions_method == "attention"  # new requests: the default

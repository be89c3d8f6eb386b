"""bench.weight_precision's int8 rounding (the shipped format's): what the sizes and images it reports are made of."""

import torch

from bench.weight_precision import int8_per_channel


def test_int8_rounding_is_per_output_channel_and_keeps_small_tensors_half():
    torch.manual_seed(0)
    conv = torch.randn(6, 3, 3, 3) * torch.tensor([1e-3, 1e-2, 0.1, 1.0, 10.0, 0.0]).view(-1, 1, 1, 1)
    state = {"conv.weight": conv, "conv.bias": torch.randn(6), "linear.weight": torch.randn(4, 5)}
    rounded, stored = int8_per_channel(state)

    assert stored["conv.weight"].dtype == torch.int8 and stored["conv.weight:scale"].dtype == torch.float16
    assert stored["conv.weight:scale"].shape == (6,) and stored["linear.weight:scale"].shape == (4,)
    assert stored["conv.bias"].dtype == torch.float16 and "conv.bias:scale" not in stored
    assert torch.equal(rounded["conv.bias"], state["conv.bias"].half().float())
    # Each channel's largest weight maps to +-127 of its own scale, so even the 1e-3 channel keeps
    # 8 bits: the error is at most half a step of that channel (plus the fp16 rounding of the scale).
    step = conv.abs().flatten(1).amax(1) / 127
    error = (rounded["conv.weight"] - conv).abs().flatten(1).amax(1)
    assert torch.all(error <= step * 0.51 + 1e-12)
    assert torch.all(rounded["conv.weight"][5] == 0)
    assert stored["conv.weight"].abs().flatten(1).amax(1)[:5].tolist() == [127] * 5

import pytest
import torch
import torch.nn.functional as F

from freqnet.archs.heads import DySample
from freqnet.archs.hf_block import DynamicChannelGate


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_dysample_with_zero_offsets_is_bilinear_upsampling(scale):
    up = DySample(8, scale, groups=4)
    torch.nn.init.zeros_(up.offset.weight)
    x = torch.randn(2, 8, 7, 5)
    expected = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up(x), expected, atol=1e-5, rtol=1e-5)


def test_dysample_offsets_are_learned():
    up = DySample(8, 2)
    x = torch.randn(1, 8, 6, 6)
    up(x).square().sum().backward()
    assert up.offset.weight.grad.abs().sum() > 0


def test_channel_gate_starts_as_identity_and_stays_local():
    gate = DynamicChannelGate(8, cell=4)
    x = torch.randn(1, 8, 16, 16)
    torch.testing.assert_close(gate(x), x)
    torch.nn.init.normal_(gate.excite.weight, std=0.5)
    y = x.clone()
    y[:, :, :4, :4] += 5.0  # change one cell in the corner
    far = (slice(None), slice(None), slice(10, None), slice(10, None))
    torch.testing.assert_close(gate(y)[far], gate(x)[far], msg="a far-away pixel's gain must not change")

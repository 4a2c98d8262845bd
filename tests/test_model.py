"""Every preset x scale x ablation builds, runs forward and backward on awkward sizes."""

import pytest
import torch

import freqnet

ABLATIONS = {
    "full": {},
    "no_moe": {"use_moe": False},
    "no_hf_path": {"use_hf_path": False},
    "no_attention": {"use_attention": False},
    "laplacian": {"splitter": "laplacian"},
    "dysample": {"upsampler": "dysample"},
    "pruning": {"prune_threshold": 1e-3},
    "top2_fixed_cutoff": {"top_k": 2, "fft_learnable_cutoff": False},
}


def output_conv(model) -> torch.nn.Conv2d:
    head = model.reconstruct
    return head.conv if hasattr(head, "conv") else head.to_image


def test_untrained_model_is_exactly_bicubic_upsampling():
    """The output conv starts at zero, so training starts from the global residual, not from noise."""
    for scale in (2, 3, 4):
        model = freqnet.build_model("tiny", scale).eval()
        x = torch.rand(1, 3, 10, 13)
        with torch.no_grad():
            expected = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
            torch.testing.assert_close(model(x), expected)


# `large` is `small` with more blocks of the same kinds: every ablation on it adds ~1 min of suite time, not coverage.
CASES = [(preset, ablation) for preset in ("tiny", "small", "base") for ablation in ABLATIONS] + [("large", "full")]


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("preset, ablation", CASES)
def test_forward_backward_odd_size(preset, ablation, scale):
    model = freqnet.build_model(preset, scale, drop_path=0.1, **ABLATIONS[ablation]).train()
    torch.nn.init.normal_(output_conv(model).weight, std=0.02)  # as after training: gradients reach the body
    x = torch.rand(1, 3, 37, 53)
    y = model(x)
    assert y.shape == (1, 3, 37 * scale, 53 * scale)
    assert torch.isfinite(y).all()
    (y.square().mean() + model.aux_loss()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.stem.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (9, 1), (8, 8), (17, 33)])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_any_input_size_and_channel_count(size, in_channels):
    model = freqnet.build_model("tiny", 2, in_channels=in_channels).eval()
    with torch.no_grad():
        y = model(torch.rand(2, in_channels, *size))
    assert y.shape == (2, in_channels, size[0] * 2, size[1] * 2)
    assert torch.isfinite(y).all()


def test_batch_items_are_independent_in_eval():
    """Inference has no capacity limit and no global pooling: an image's output never depends on its batch."""
    model = freqnet.build_model("small", 2).eval()
    a, b = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        alone = model(a)
        together = model(torch.cat([a, b]))[:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-6)


def test_aux_loss_is_zero_without_moe_and_positive_with_it():
    x = torch.rand(1, 3, 16, 16)
    dense = freqnet.build_model("tiny", 2, use_moe=False)
    dense(x)
    assert dense.aux_loss().item() == 0.0
    assert dense.expert_stats() == []
    moe = freqnet.build_model("tiny", 2)
    moe(x)
    assert moe.aux_loss().item() > 0.0
    stats = moe.expert_stats()
    assert len(stats) == moe.config.bottleneck_blocks
    assert sum(stats[0]["load"]) == pytest.approx(1.0)
    assert 0.0 <= stats[0]["dropped"] <= 1.0
    with torch.no_grad():
        moe.eval()(x)
    assert moe.aux_loss().item() == 0.0 and sum(moe.expert_stats()[0]["load"]) == pytest.approx(1.0)

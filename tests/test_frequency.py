import math

import pytest
import torch
import torch.nn.functional as F

from freqnet.archs.frequency import FFTSplitter, LaplacianSplitter


@pytest.mark.parametrize("splitter", [FFTSplitter(4, 0.15, True), LaplacianSplitter(4)])
def test_bands_sum_to_input_and_keep_size(splitter):
    x = torch.randn(2, 4, 13, 21)
    low, high = splitter(x)
    assert low.shape == high.shape == x.shape
    torch.testing.assert_close(low + high, x)


def fft_splitter(channels: int, cutoff: float, spatial: bool) -> FFTSplitter:
    splitter = FFTSplitter(channels, cutoff, False)
    splitter.spatial = spatial
    return splitter


@pytest.mark.parametrize("splitter", [fft_splitter(3, 0.1, False), fft_splitter(3, 0.1, True), LaplacianSplitter(3)])
def test_constant_is_all_low_frequency(splitter):
    low, high = splitter(torch.full((1, 3, 9, 9), 0.7))
    assert high.abs().max() < 1e-5
    torch.testing.assert_close(low, torch.full_like(low, 0.7))


@pytest.mark.parametrize("spatial", [False, True])
def test_checkerboard_is_all_high_frequency(spatial):
    """The Nyquist pattern sits at 0.5 cycles/pixel, far above a 0.1 cut-off: almost nothing stays in LF."""
    n = 32
    board = ((torch.arange(n)[:, None] + torch.arange(n)[None, :]) % 2).float()[None, None] * 2 - 1
    low, high = fft_splitter(1, 0.1, spatial)(board)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # away from the replicate padding
    assert low[inner].abs().max() < 1e-3
    torch.testing.assert_close(high[inner], board[inner], atol=1e-3, rtol=0)


def test_fft_response_is_the_gaussian_at_the_cutoff():
    """A sinusoid at the cut-off frequency keeps exp(-1/2) of its amplitude in the LF band."""
    n, cutoff = 64, 0.125  # 8 samples per period: an exact DFT bin of a 64-sample periodic signal
    x = torch.cos(2 * math.pi * cutoff * torch.arange(n)).expand(1, 1, n, n)
    low = FFTSplitter(1, cutoff, False).low_pass_fft(x)  # unpadded: the signal is exactly periodic
    torch.testing.assert_close(low, x * math.exp(-0.5), atol=1e-5, rtol=0)


def splitter_with_cutoffs(initial: float, cutoffs: list[float]) -> FFTSplitter:
    splitter = FFTSplitter(len(cutoffs), initial, True)
    with torch.no_grad():
        splitter.log_cutoff.copy_(torch.log(torch.tensor(cutoffs)))
    return splitter


def low_pass_both_ways(splitter: FFTSplitter, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    splitter.spatial = False
    low_fft, _ = splitter(x)
    splitter.spatial = True
    low_spatial, _ = splitter(x)
    return low_fft, low_spatial


@pytest.mark.parametrize("size", [(1, 1), (7, 12), (33, 18), (64, 64)])
def test_spatial_kernel_matches_fft_at_trained_cutoffs(size):
    """The shipped models' cut-offs (0.10-0.22 from an initial 0.15): on white noise, the hardest input, the LF
    band of the two paths differs by < 2e-3 of its norm (the response is not zero at Nyquist; its taps beyond the
    8-px radius are < 1e-3 of the centre one)."""
    torch.manual_seed(0)
    splitter = splitter_with_cutoffs(0.15, [0.10, 0.13, 0.16, 0.19, 0.22])
    assert splitter.margin == 8
    low_fft, low_spatial = low_pass_both_ways(splitter, torch.randn(2, 5, *size))
    assert (low_spatial - low_fft).norm() / low_fft.norm() < 2e-3


def test_spatial_kernel_is_exact_for_a_narrow_response():
    """At 0.05 cycles/pixel the response vanishes long before Nyquist and the margin grows to 4 sigma (20 px):
    the two paths agree to float rounding."""
    torch.manual_seed(0)
    splitter = splitter_with_cutoffs(0.05, [0.04, 0.05, 0.06])
    assert splitter.margin == 20
    low_fft, low_spatial = low_pass_both_ways(splitter, torch.randn(1, 3, 37, 29))
    torch.testing.assert_close(low_spatial, low_fft, atol=1e-5, rtol=1e-5)


def test_inference_takes_the_spatial_kernel_and_training_the_fft():
    splitter = splitter_with_cutoffs(0.15, [0.12, 0.2])
    x = torch.randn(1, 2, 24, 24)
    low_train, _ = splitter(x)
    with torch.no_grad():
        low_eval, _ = splitter(x)
    splitter.spatial = True
    torch.testing.assert_close(low_eval, splitter(x)[0].detach())
    splitter.spatial = False
    torch.testing.assert_close(low_train, splitter(x)[0])
    assert not torch.equal(low_train.detach(), low_eval)


def test_learnable_cutoff_gets_gradient_and_fixed_one_is_a_buffer():
    learnable = FFTSplitter(2, 0.15, True)
    low, _ = learnable(torch.randn(1, 2, 16, 16))
    low.square().sum().backward()
    assert learnable.log_cutoff.grad is not None and learnable.log_cutoff.grad.abs().sum() > 0
    fixed = FFTSplitter(2, 0.15, False)
    assert "log_cutoff" in dict(fixed.named_buffers()) and not list(fixed.parameters())


def test_laplacian_low_band_is_the_binomial_blur():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    low, _ = LaplacianSplitter(1)(x)
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    expected = F.pad(taps[:, None] * taps[None, :], (2, 2, 2, 2))
    torch.testing.assert_close(low[0, 0], expected)


def test_replicate_pad_matches_torch_pad_values_and_gradient():
    from freqnet.archs.frequency import replicate_pad

    x = torch.rand(2, 3, 5, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    weights = torch.rand(2, 3, 11, 13)
    ours = replicate_pad(x, 3)
    (grad,) = torch.autograd.grad((ours * weights).sum(), x)
    theirs = F.pad(x, (3, 3, 3, 3), mode="replicate")
    (expected,) = torch.autograd.grad((theirs * weights).sum(), x)
    assert torch.equal(ours, theirs)
    torch.testing.assert_close(grad, expected)

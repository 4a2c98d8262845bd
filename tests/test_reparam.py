import pytest
import torch

import freqnet
from freqnet.archs.reparam import Conv3XC, PartialLargeKernelConv, polyphase_conv2d
from freqnet.export import export_ready
from freqnet.info import count_parameters


def randomise(module: torch.nn.Module, std: float = 0.2) -> None:
    """Fresh inits leave some parts at exactly zero (gates, offsets); random weights make parity tests bite."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, std)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def assert_same_function_and_gradients(reference, candidate, layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`candidate(x)` equals `reference(x)`, and so do the gradients of the input and of `layer`'s parameters."""
    outputs, grads = [], []
    for form in (reference, candidate):
        leaf = x.clone().requires_grad_()
        out = form(leaf)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outputs.append(out.detach())
        grads.append([leaf.grad, *(p.grad.clone() for p in layer.parameters())])
        layer.zero_grad()
    assert relative_error(outputs[0], outputs[1]) < 1e-5
    for reference_grad, candidate_grad in zip(*grads):
        assert relative_error(reference_grad, candidate_grad) < 1e-5
    return outputs[0]


@pytest.mark.parametrize("cin, cout", [(8, 8), (4, 12)])
def test_conv3xc_trains_and_fuses_as_its_branches_including_borders(cin, cout):
    layer = Conv3XC(cin, cout)
    randomise(layer)
    x = torch.randn(2, cin, 9, 7)
    expected = assert_same_function_and_gradients(layer.branches, layer, layer, x)
    layer.fuse_()
    assert isinstance(layer.fused, torch.nn.Conv2d) and layer.fused.kernel_size == (3, 3)
    assert relative_error(expected, layer(x)) < 1e-5


@pytest.mark.parametrize("kernel", [7, 13, 17])
def test_partial_large_kernel_trains_and_fuses_as_its_branches(kernel):
    layer = PartialLargeKernelConv(16, kernel, 0.25)
    layer.fft_conv = False
    randomise(layer)
    x = torch.randn(1, 16, 20, 23)
    c = layer.conv_channels
    expected = assert_same_function_and_gradients(layer.branches, layer, layer, x)
    params_before = count_parameters(layer)
    layer.fuse_()
    after = layer(x)
    assert relative_error(expected, after) < 1e-5
    assert torch.equal(after[:, c:], x[:, c:]), "channels beyond the ratio pass through untouched"
    assert count_parameters(layer) < params_before


@pytest.mark.parametrize("fused", [False, True])
def test_fft_large_kernel_equals_the_convolution_with_gradients(fused):
    layer = PartialLargeKernelConv(32, 17, 0.25)
    randomise(layer, 0.05)
    if fused:
        layer.fuse_()
    x = torch.randn(2, 32, 21, 30).to(memory_format=torch.channels_last)  # odd sizes, 21 + 16 is not 5-smooth

    def run(fft: bool):
        def form(x):
            layer.fft_conv = fft
            return layer(x)
        return form
    assert_same_function_and_gradients(run(False), run(True), layer, x)


def test_fft_large_kernel_keeps_the_layout_of_its_input():
    """The FFT returns NCHW; a channels-last model must get channels-last back (as from the conv), or every later
    elementwise op of the block mixes layouts (a training step of `base` 1.06x slower)."""
    layer = PartialLargeKernelConv(32, 17, 0.25)
    layer.fft_conv = True
    for layout in (torch.channels_last, torch.contiguous_format):
        x = torch.randn(2, 32, 12, 15).to(memory_format=layout)
        out = layer(x)
        assert out.is_contiguous(memory_format=layout)
        layer.fft_conv = False
        torch.testing.assert_close(out, layer(x), rtol=1e-5, atol=1e-5)
        layer.fft_conv = True


def test_fft_large_kernel_runs_in_cpu_training_of_large_kernels_only_and_never_in_exports():
    x = torch.zeros(1, 8, 8, 8)
    assert PartialLargeKernelConv(8, 17, 0.25).runs_fft(x)
    assert not PartialLargeKernelConv(8, 13, 0.25).runs_fft(x)
    with torch.no_grad():
        assert not PartialLargeKernelConv(8, 17, 0.25).runs_fft(x), "inference keeps the (faster) conv"
    model = freqnet.build_model("tiny", scale=2, plk_kernel=17)
    layers = [m for m in export_ready(model).modules() if isinstance(m, PartialLargeKernelConv)]
    assert layers and not any(layer.runs_fft(x) for layer in layers)


@pytest.mark.parametrize("kernel, phases", [(17, 2), (13, 2), (9, 3), (7, 4)])
def test_polyphase_conv_equals_the_convolution(kernel, phases):
    torch.manual_seed(0)
    weight, bias = torch.randn(6, 6, kernel, kernel, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    x = torch.randn(2, 6, 12 * phases, 8 * phases, dtype=torch.float64)
    expected = torch.nn.functional.conv2d(x, weight, bias, padding=kernel // 2)
    assert relative_error(expected, polyphase_conv2d(x, weight, bias, phases)) < 1e-12


def test_fused_large_kernel_runs_on_pixel_phases_on_cpu_and_in_exports_for_even_sides():
    layer = PartialLargeKernelConv(32, 17, 0.25)
    randomise(layer, 0.05)
    layer.fuse_()
    even = torch.randn(1, 32, 16, 24).to(memory_format=torch.channels_last)
    odd = torch.randn(1, 32, 15, 24)
    assert layer.runs_polyphase(even) and not layer.runs_polyphase(odd)
    with torch.no_grad():
        out = layer(even)
        layer.polyphase = False
        torch.testing.assert_close(out, layer(even), rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last), "the block's later ops keep channels-last"
    model = freqnet.build_model("tiny", scale=2, plk_kernel=17)
    layers = [m for m in export_ready(model).modules() if isinstance(m, PartialLargeKernelConv)]
    assert layers and all(layer.polyphase for layer in layers)
    for m in model.modules():
        if isinstance(m, PartialLargeKernelConv):
            m.polyphase = False
    assert not any(m.polyphase for m in export_ready(model).modules() if isinstance(m, PartialLargeKernelConv))


@pytest.mark.parametrize("preset", ["tiny", "base"])
@pytest.mark.parametrize("overrides", [{}, {"upsampler": "dysample", "splitter": "laplacian"}])
def test_fused_model_matches_training_form(preset, overrides):
    model = freqnet.build_model(preset, 4, **overrides).eval()
    randomise(model, std=0.05)
    x = torch.rand(1, 3, 29, 34)
    with torch.no_grad():
        before = model(x)
        fused = freqnet.fuse(model)
        after = fused(x)
    assert relative_error(before, after) < 1e-5
    assert count_parameters(fused) < count_parameters(model)
    assert not any(hasattr(m, "fuse_") and m.fused is None for m in fused.modules())
    assert model.training is False and hasattr(model.hf_encoder[0][0].local, "expand"), "original left intact"

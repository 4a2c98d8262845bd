"""Re-parameterisable convolutions: parameterised as several linear branches, computed as one convolution.

Training keeps the branches' weights (their over-parameterisation is what helps optimisation) but runs the
kernel they add up to; `fuse_` stores that kernel for deployment. Each layer keeps its `branches` (the
definition), `merged_kernel` and `fuse_` side by side, so the proof of equivalence is read in one place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def filled(conv: nn.Conv2d, weight: torch.Tensor | float, bias: torch.Tensor | float, like: torch.Tensor) -> nn.Conv2d:
    """`conv` on `like`'s device and dtype holding `weight` and `bias` (tensors or a constant): how `fuse_` and
    `unfuse_` hand merged or split kernels to new layers."""
    conv.to(like)
    conv.weight.copy_(torch.as_tensor(weight))
    conv.bias.copy_(torch.as_tensor(bias))
    return conv


class Conv3XC(nn.Module):
    """SPAN-style 3x3 conv trained as 1x1 expand -> 3x3 -> 1x1 reduce, plus a 1x1 skip.

    The branches are linear, so training runs them as the one 3x3 conv they add up to (`merged_kernel`, rebuilt
    from the branch weights each step; autograd carries the gradient back to every branch): the same function
    and the same gradients as running the branches, at a quarter of the FLOPs. `fuse_` stores that conv. The
    input counts as zero-padded *before* the expand, so the expand's bias also reaches the border taps and the
    zero-padded 3x3 conv equals the branches exactly, borders included.
    """

    def __init__(self, in_channels: int, out_channels: int, gain: int = 2) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.gain = in_channels, out_channels, gain
        self.expand = nn.Conv2d(in_channels, in_channels * gain, 1)
        self.spatial = nn.Conv2d(in_channels * gain, out_channels * gain, 3)
        self.reduce = nn.Conv2d(out_channels * gain, out_channels, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return F.conv2d(x, *self.merged_kernel(), padding=1)

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        """The training form written out (the definition; tests and benchmarks compare `forward` with it)."""
        return self.reduce(self.spatial(self.expand(F.pad(x, (1, 1, 1, 1))))) + self.skip(x)

    def merged_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the 3x3 conv equal to `branches`."""
        expand = self.expand.weight[:, :, 0, 0]  # (gi, i)
        reduce = self.reduce.weight[:, :, 0, 0]  # (o, go)
        spatial = self.spatial.weight  # (go, gi, 3, 3)
        weight = torch.einsum("om,mnhw,ni->oihw", reduce, spatial, expand)
        weight = weight + F.pad(self.skip.weight, (1, 1, 1, 1))
        mid_bias = torch.einsum("mnhw,n->m", spatial, self.expand.bias) + self.spatial.bias
        return weight, reduce @ mid_bias + self.reduce.bias + self.skip.bias

    @torch.no_grad()
    def fuse_(self) -> None:
        weight, bias = self.merged_kernel()
        self.fused = filled(nn.Conv2d(self.in_channels, self.out_channels, 3, padding=1), weight, bias, weight)
        del self.expand, self.spatial, self.reduce, self.skip

    @torch.no_grad()
    def unfuse_(self, generator: torch.Generator) -> None:
        """Back to branches that merge into the fused conv exactly, so shipped weights can be fine-tuned. Random
        orthonormal expand/reduce (E^T E = I, R R^T = I) with spatial = R^T K E^T make every branch live (zeros
        would leave the expanded channels without gradient); skip starts at zero and learns."""
        weight, bias = self.fused.weight.double(), self.fused.bias.double()
        gi, go = self.in_channels * self.gain, self.out_channels * self.gain
        expand = torch.linalg.qr(torch.randn(gi, self.in_channels, generator=generator, dtype=torch.float64))[0]
        reduce = torch.linalg.qr(torch.randn(go, self.out_channels, generator=generator, dtype=torch.float64))[0].T
        spatial = torch.einsum("om,oihw,ni->mnhw", reduce, weight, expand)
        like = self.fused.weight
        self.expand = filled(nn.Conv2d(self.in_channels, gi, 1), expand[..., None, None], 0, like)
        self.spatial = filled(nn.Conv2d(gi, go, 3), spatial, 0, like)
        self.reduce = filled(nn.Conv2d(go, self.out_channels, 1), reduce[..., None, None], bias, like)
        self.skip = filled(nn.Conv2d(self.in_channels, self.out_channels, 1), 0, 0, like)
        self.fused = None


def fft_size(n: int) -> int:
    """The smallest 5-smooth length >= n: the FFT is fast on these, slow on large prime factors."""
    size = n
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


def fft_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=k // 2)` for an odd square k, computed by FFT.

    On CPU, oneDNN's backward of a 17x17 conv runs at a few GFLOP/s; the FFT form of the same linear map makes a
    `base` training step 1.22x faster than the merged conv (docs/reparam_training.md). Its forward is not faster
    than a channels-last conv, so inference keeps the conv. Zero padding to at least H + k - 1 makes the circular
    convolution a linear one: the result equals the conv up to float rounding (~1e-7 relative).
    """
    k, pad = weight.shape[-1], weight.shape[-1] // 2
    h, w = x.shape[-2:]
    size = (fft_size(h + k - 1), fft_size(w + k - 1))
    spectrum = torch.fft.rfft2(x.float(), s=size)
    # conv2d correlates; the FFT convolves: flip the kernel, then output pixel (i, j) sits at (i + pad, j + pad).
    kernel = torch.fft.rfft2(weight.float().flip(-2, -1), s=size)
    out = spectrum[:, :1] * kernel[:, 0]  # (B, 1) x (C_out) broadcast: one input channel at a time saves memory
    for channel in range(1, x.shape[1]):
        out = out + spectrum[:, channel : channel + 1] * kernel[:, channel]
    out = torch.fft.irfft2(out, s=size)[..., pad : pad + h, pad : pad + w]
    out = (out + bias.float().view(1, -1, 1, 1)).to(x.dtype)
    # Like conv2d, keep a channels-last input's layout (a channel slice of NHWC has channel stride 1): an NCHW
    # result here made every later elementwise op of the block mix layouts (a `base` training step 1.06x slower).
    return out.contiguous(memory_format=torch.channels_last) if x.stride(1) == 1 else out


def polyphase_kernel(weight: torch.Tensor, phases: int) -> torch.Tensor:
    """The kernel that does on `pixel_unshuffle(x, s)` what the stride-1 KxK `weight` does on x.

    Output phase a and input phase b (along each axis) meet at offset d through tap q = s * d + r + b - a (r = K // 2,
    |d| <= ceil(r / s)), zero where q falls outside the kernel: a strided slice of the zero-padded kernel. Slices, not
    a gather, so ONNX export folds it into a constant.
    """
    c_out, c_in, k, _ = weight.shape
    s, r = phases, k // 2
    reach = (r + s - 1) // s  # ceil(r / s) on non-negative ints: the exporter turns -(-r // s) into truncation
    size = 2 * reach + 1
    pad = s * reach - r + s - 1
    padded = F.pad(weight, (pad, pad, pad, pad))

    def taps(ay: int, ax: int, by: int, bx: int) -> torch.Tensor:
        y, x = by - ay + s - 1, bx - ax + s - 1
        return padded[:, :, y : y + s * (size - 1) + 1 : s, x : x + s * (size - 1) + 1 : s]

    kernel = torch.stack([torch.stack([torch.stack([torch.stack([taps(ay, ax, by, bx) for bx in range(s)])
                                                    for by in range(s)]) for ax in range(s)]) for ay in range(s)])
    # (ay, ax, by, bx, out, in, dy, dx) -> pixel_unshuffle's channel order: (out, ay, ax) and (in, by, bx)
    return kernel.permute(4, 0, 1, 5, 2, 3, 6, 7).reshape(c_out * s * s, c_in * s * s, size, size)


def polyphase_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, phases: int = 2) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=k // 2)` for an odd square k and H, W divisible by `phases`, computed on
    the s x s pixel phases: a 9x9 conv over 4x the channels for a 17x17 one. Same function up to float rounding;
    ONNX Runtime runs `base`'s 8-channel 17x17 conv as a skinny GEMM, and this form takes 9 % off the whole model's
    time there (docs/polyphase_conv.md)."""
    kernel = polyphase_kernel(weight, phases)
    out = F.conv2d(F.pixel_unshuffle(x, phases), kernel, bias.repeat_interleave(phases * phases),
                   padding=kernel.shape[-1] // 2)
    return F.pixel_shuffle(out, phases)


class PartialLargeKernelConv(nn.Module):
    """PLKSR's partial large kernel: a dense KxK conv on the first `ratio` of channels, the rest untouched.

    Training adds parallel branches on the same channels (a 5x5, a dilated 3x3, identity) that widen the
    optimisation landscape; they are all linear, so `merged_kernel` zero-pads each to KxK and sums them into one
    conv, which training runs (same function and gradients as the four branches) and `fuse_` keeps. Training on
    CPU runs it as an FFT convolution (`fft_conv = None`: CPU, K >= 17, gradients on, outside export and
    `torch.compile`); the fused conv runs on its 2x2 pixel phases on CPU and in export (`polyphase = None`).
    """

    def __init__(self, channels: int, kernel: int, ratio: float, small_kernel: int = 5, dilation: int = 3) -> None:
        super().__init__()
        self.conv_channels = max(1, round(channels * ratio))
        self.kernel = kernel
        self.small_kernel = min(small_kernel, kernel)
        self.dilation = min(dilation, (kernel - 1) // 2)
        c = self.conv_channels
        self.large = nn.Conv2d(c, c, kernel, padding=kernel // 2)
        self.small = nn.Conv2d(c, c, self.small_kernel, padding=self.small_kernel // 2)
        self.dilated = nn.Conv2d(c, c, 3, padding=self.dilation, dilation=self.dilation)
        self.fused: nn.Conv2d | None = None
        self.fft_conv: bool | None = None  # None: FFT in CPU training for K >= 17; export sets False
        self.polyphase: bool | None = None  # None: the fused conv as `polyphase_conv2d` on CPU; export sets True

    def runs_fft(self, x: torch.Tensor) -> bool:
        if self.fft_conv is not None:
            return self.fft_conv
        return (x.device.type == "cpu" and self.kernel >= 17 and torch.is_grad_enabled()
                and not torch.compiler.is_compiling())

    def runs_polyphase(self, x: torch.Tensor) -> bool:
        wanted = x.device.type == "cpu" if self.polyphase is None else self.polyphase
        return wanted and self.kernel >= 9 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        if self.runs_fft(x):
            return fft_conv2d(x, *self.merged_kernel())
        if self.fused is not None:
            return polyphase_conv2d(x, self.fused.weight, self.fused.bias) if self.runs_polyphase(x) else self.fused(x)
        return F.conv2d(x, *self.merged_kernel(), padding=self.kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, tail = x[:, : self.conv_channels], x[:, self.conv_channels :]
        return torch.cat([self.mix(head), tail], dim=1)

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        """The training form written out (the definition; tests and benchmarks compare `forward` with it)."""
        head, tail = x[:, : self.conv_channels], x[:, self.conv_channels :]
        return torch.cat([self.large(head) + self.small(head) + self.dilated(head) + head, tail], dim=1)

    def merged_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the one KxK conv equal to the four branches; differentiable in training."""
        if self.fused is not None:
            return self.fused.weight, self.fused.bias
        k, c = self.kernel, self.conv_channels
        pad = (k - self.small_kernel) // 2
        weight = self.large.weight + F.pad(self.small.weight, (pad, pad, pad, pad))
        dilated = self.dilated.weight.new_zeros(c, c, 2 * self.dilation + 1, 2 * self.dilation + 1)
        dilated[:, :, :: self.dilation, :: self.dilation] = self.dilated.weight
        pad = (k - dilated.shape[-1]) // 2
        identity = torch.zeros_like(weight)
        identity[torch.arange(c), torch.arange(c), k // 2, k // 2] = 1.0
        weight = weight + F.pad(dilated, (pad, pad, pad, pad)) + identity
        return weight, self.large.bias + self.small.bias + self.dilated.bias

    @torch.no_grad()
    def fuse_(self) -> None:
        weight, bias = self.merged_kernel()
        c, k = self.conv_channels, self.kernel
        self.fused = filled(nn.Conv2d(c, c, k, padding=k // 2), weight, bias, weight)
        del self.large, self.small, self.dilated

    @torch.no_grad()
    def unfuse_(self, generator: torch.Generator) -> None:
        """Back to branches that merge into the fused conv exactly (for fine-tuning shipped weights): the large
        branch takes the kernel less the identity tap, the small and dilated branches start at zero and learn."""
        k, c = self.kernel, self.conv_channels
        weight, bias = self.fused.weight.clone(), self.fused.bias
        weight[torch.arange(c), torch.arange(c), k // 2, k // 2] -= 1.0
        self.large = filled(nn.Conv2d(c, c, k, padding=k // 2), weight, bias, weight)
        self.small = filled(nn.Conv2d(c, c, self.small_kernel, padding=self.small_kernel // 2), 0, 0, weight)
        self.dilated = filled(nn.Conv2d(c, c, 3, padding=self.dilation, dilation=self.dilation), 0, 0, weight)
        self.fused = None

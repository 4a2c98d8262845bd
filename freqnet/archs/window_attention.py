"""Shifted-window self-attention (Swin/SwinIR) with relative position bias and optional token pruning.

Any map size works: the map is padded to a multiple of the window, and padded keys are masked out, so a
window on the border behaves like a smaller window rather than attending to invented pixels. Windows that
need no mask (the vast majority) run as one batched attention with only the position bias.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

MASKED = -100.0  # added to the logits of token pairs that must not attend (exp(-100) ~ 0, never NaN)


def relative_position_index(window: int) -> torch.Tensor:
    """(W*W, W*W) index into the (2W-1)^2 bias table for every (query, key) pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, L, L), each in [0, 2W-2]
    return relative[0] * (2 * window - 1) + relative[1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, num_windows, window*window, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (h // window) * (w // window), window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`."""
    b, c = windows.shape[0], windows.shape[-1]
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def padded(length, window: int):
    """Smallest multiple of `window` >= length (integer ops only, so symbolic sizes stay symbolic)."""
    return (length + window - 1) // window * window


@functools.lru_cache(maxsize=64)
def window_labels(h: int, w: int, window: int, shift: int, device: torch.device | None = None) -> torch.Tensor:
    """(num_windows, window*window) region label of every token of the padded, rolled map.

    Tokens may attend to each other only when their labels are equal; -1 marks padding. Labels follow Swin:
    after the cyclic roll, the strips that wrapped around form their own regions.
    """
    hp, wp = padded(h, window), padded(w, window)
    labels = torch.zeros(hp, wp, dtype=torch.long, device=device)
    if shift:
        bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
        for i, rows in enumerate(bands):
            for j, cols in enumerate(bands):
                labels[rows, cols] = 3 * i + j
    valid = torch.zeros(hp, wp, dtype=torch.bool, device=device)
    valid[:h, :w] = True
    if shift:
        valid = torch.roll(valid, (-shift, -shift), (0, 1))
    labels[~valid] = -1
    return window_partition(labels[None, :, :, None], window)[0, :, :, 0]


def window_labels_traceable(h, w, window: int, shift: int, device=None) -> torch.Tensor:
    """`window_labels` from tensor ops only: the same labels, for exporters that follow symbolic sizes."""
    hp, wp = padded(h, window), padded(w, window)
    rows, cols = torch.arange(hp, device=device), torch.arange(wp, device=device)
    if shift:
        row_band = (rows >= hp - window).long() + (rows >= hp - shift).long()
        col_band = (cols >= wp - window).long() + (cols >= wp - shift).long()
    else:
        row_band, col_band = torch.zeros_like(rows), torch.zeros_like(cols)
    labels = row_band[:, None] * 3 + col_band[None, :]
    valid = (rows < h)[:, None] & (cols < w)[None, :]
    if shift:
        valid = torch.roll(valid, (-shift, -shift), (0, 1))
    labels = torch.where(valid, labels, torch.full_like(labels, -1))
    return window_partition(labels[None, :, :, None], window)[0, :, :, 0]


def pair_mask(labels: torch.Tensor) -> torch.Tensor:
    """(N, L) window labels -> (N, 1, L, L) additive mask: 0 where a query may attend to a key."""
    allowed = (labels[:, :, None] == labels[:, None, :]) & (labels[:, None, :] >= 0)
    return torch.where(allowed, 0.0, MASKED)[:, None]


def needs_mask(labels: torch.Tensor) -> torch.Tensor:
    """(num_windows,) bool: the window mixes regions or holds padding, so its attention needs a mask."""
    return (labels != labels[:, :1]).any(dim=1) | (labels[:, 0] < 0)


@functools.lru_cache(maxsize=64)
def mask_plan(h: int, w: int, window: int, shift: int, num_windows: int,
              device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Which of a batch's `num_windows` windows need a mask, and their masks, found once per shape on the CPU:
    a forward without pruning then never waits for the GPU to answer `nonzero`."""
    labels = window_labels(h, w, window, shift)
    batch = num_windows // labels.shape[0]
    per_image = needs_mask(labels).nonzero()[:, 0]
    index = (per_image[None] + labels.shape[0] * torch.arange(batch)[:, None]).flatten()
    mask = pair_mask(labels[per_image]).repeat(batch, 1, 1, 1) if per_image.numel() else None
    return index.to(device), None if mask is None else mask.to(device)


# (window, head) pairs whose attention runs at once on CPU: their logits (128 x 64 x 64 floats, 2 MB) stay in
# cache through bias, mask, softmax and the value product; all 2048 pairs of a 256x256 map at once ran 3.5x slower.
CPU_CHUNK = 128


def chunk_masks(n: int, chunk: int, masked: torch.Tensor | None, mask: torch.Tensor | None):
    """(start, stop, (masked, mask)) for consecutive chunks of `n` windows, each with the part of the sparse mask
    (`masked` ascending window indices, `mask` their rows, as `attend_windows` passes them) that falls in it."""
    if mask is None:
        yield from ((start, min(start + chunk, n), (None, None)) for start in range(0, n, chunk))
        return
    bounds = torch.searchsorted(masked, torch.arange(0, n + chunk, chunk)).tolist()
    for i, start in enumerate(range(0, n, chunk)):
        low, high = bounds[i], bounds[i + 1]
        yield start, min(start + chunk, n), (masked[low:high] - start, mask[low:high]) if high > low else (None, None)


@torch.library.custom_op("freqnet::window_attention_core", mutates_args=())
def attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                   mask: torch.Tensor | None, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(scale q k^T + bias + mask) v for (N, heads, L, d) windows; returns the output and the attention
    weights (kept for the backward).

    An opaque op for compiled training on CPU: inductor gave the softmax output a batch-innermost layout, and
    ATen's CPU bmm then multiplied it window by window with a copy each (a compiled `base` step at 16 x HR 128
    took 1.04 s, 0.59 s with this op; docs/benchmarks.md). Inside the op every operand is contiguous. Compiled
    inference keeps inductor's own attention, which measured faster there."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    logits = torch.matmul(q * scale, k.transpose(-2, -1)) + bias
    if mask is not None:
        logits = logits + mask
    # At least fp32, as autocast runs softmax in eager (float64 stays float64).
    probs = logits.softmax(dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32)).to(v.dtype)
    return torch.matmul(probs, v), probs


@attention_core.register_fake
def _(q, k, v, bias, mask, scale):
    n, heads, length, _ = q.shape
    return q.new_empty(n, heads, length, v.shape[-1]), q.new_empty(n, heads, length, length)


@torch.library.custom_op("freqnet::window_attention_core_backward", mutates_args=())
def attention_core_backward_op(grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               probs: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                           torch.Tensor]:
    """Gradients of `attention_core` for q, k, v and the position bias; opaque too, so that inductor does not
    re-lay out the backward's operands either."""
    grad_out, q, k, v = grad_out.contiguous(), q.contiguous(), k.contiguous(), v.contiguous()
    grad_v = probs.transpose(-2, -1) @ grad_out
    grad_probs = grad_out @ v.transpose(-2, -1)
    grad_logits = probs * (grad_probs - (grad_probs * probs).sum(dim=-1, keepdim=True))
    grad_q = (grad_logits @ k) * scale
    grad_k = (grad_logits.transpose(-2, -1) @ q) * scale
    return grad_q, grad_k, grad_v, grad_logits.sum(dim=0)


@attention_core_backward_op.register_fake
def _(grad_out, q, k, v, probs, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), probs.new_empty(probs.shape[1:])


def attention_core_context(ctx, inputs, output) -> None:
    q, k, v, _, _, ctx.scale = inputs
    ctx.save_for_backward(q, k, v, output[1])


def attention_core_backward(ctx, grad_out: torch.Tensor, _grad_probs):
    grad_q, grad_k, grad_v, grad_bias = attention_core_backward_op(grad_out, *ctx.saved_tensors, ctx.scale)
    return grad_q, grad_k, grad_v, grad_bias, None, None


attention_core.register_autograd(attention_core_backward, setup_context=attention_core_context)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside (optionally shifted) windows of an NCHW map."""

    def __init__(self, channels: int, heads: int, window: int, shift: bool, prune_threshold: float = 0.0) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.shift = window // 2 if shift else 0
        self.prune_threshold = prune_threshold
        self.scale = (channels // heads) ** -0.5
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("position_index", relative_position_index(window), persistent=False)
        self.pruned_fraction = 0.0  # of the last forward, for benchmarks and logging
        self.export_mode = False  # set by freqnet.export: traceable masks, no data-dependent shapes
        self.fused_attention: bool | None = None  # scaled_dot_product_attention; None = on CUDA only

    def position_bias(self) -> torch.Tensor:
        n = self.window * self.window
        return self.bias_table[self.position_index.view(-1)].view(n, n, self.heads).permute(2, 0, 1)

    def attend(self, tokens: torch.Tensor, masked: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        """(N, L, C) windows -> (N, L, C); `mask` (len(masked), 1, L, L) is added to windows `masked` only, or
        (N, 1, L, L) to every window when `masked` is None (a plain add: exporters turn index_add into a slow
        scatter)."""
        n, length, c = tokens.shape
        q, k, v = self.qkv(tokens).view(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        fused = tokens.is_cuda if self.fused_attention is None else self.fused_attention
        if fused:  # fused kernels on GPU (memory-efficient attention takes the additive bias)
            bias = self.add_mask(self.position_bias().to(q.dtype).expand(n, -1, -1, -1), masked, mask)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
            return self.proj(out.transpose(1, 2).reshape(n, length, c))
        # Explicit matmuls: on CPU, SDPA with a broadcast bias is ~3x slower for 64-token windows.
        bias = self.position_bias()
        traced = self.export_mode or torch.compiler.is_compiling()
        if tokens.device.type != "cpu" or traced or n * self.heads <= CPU_CHUNK:
            out = self.explicit_attention(q, k, v, bias, masked, mask)
        else:
            out = torch.cat([self.explicit_attention(q[start:stop], k[start:stop], v[start:stop], bias, *part)
                             for start, stop, part in chunk_masks(n, max(1, CPU_CHUNK // self.heads), masked, mask)])
        return self.proj(out.transpose(1, 2).reshape(n, length, c))

    def explicit_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                           masked: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        if torch.compiler.is_compiling() and torch.is_grad_enabled() and q.device.type == "cpu" and masked is None:
            # Contiguous here, in the graph, where inductor fuses the copy with the qkv split: no-ops inside the op.
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
            return attention_core(q, k, v, bias.to(q.dtype), None if mask is None else mask.to(q.dtype), self.scale)[0]
        logits = (q * self.scale) @ k.transpose(-2, -1)
        logits = self.add_mask(logits + bias.to(logits.dtype), masked, mask)
        return logits.softmax(dim=-1).to(v.dtype) @ v

    def add_mask(self, logits: torch.Tensor, masked: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return logits
        if masked is None:
            return logits + mask.to(logits.dtype)
        return logits.index_add(0, masked, mask.to(logits.dtype).expand(-1, self.heads, -1, -1))

    def keep_windows(self, windows: torch.Tensor) -> torch.Tensor | None:
        """(N,) bool of windows worth attending to, or None when pruning is off."""
        if self.prune_threshold <= 0:
            return None
        variance = windows.float().var(dim=1, unbiased=False).mean(dim=-1)
        return variance > self.prune_threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws, s = self.window, self.shift
        hp, wp = padded(h, ws), padded(w, ws)
        x = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, wp - w, 0, hp - h))
        if s:
            x = torch.roll(x, (-s, -s), (1, 2))
        windows = window_partition(x, ws).flatten(0, 1)  # (B * nW, L, C)
        # Exporters and torch.compile follow symbolic shapes: no shape-keyed caches, no data-dependent sizes.
        traced = self.export_mode or torch.compiler.is_compiling()
        out = self.attend_traceable(windows, h, w) if traced else self.attend_windows(windows, h, w)
        out = out.view(b, -1, ws * ws, c)
        x = window_reverse(out, ws, hp, wp)
        if s:
            x = torch.roll(x, (s, s), (1, 2))
        return x[:, :h, :w].permute(0, 3, 1, 2)

    def attend_windows(self, windows: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Only the windows that need a mask get one; pruned windows are skipped entirely."""
        keep = self.keep_windows(windows)
        if keep is None:
            self.pruned_fraction = 0.0
            masked, mask = mask_plan(h, w, self.window, self.shift, windows.shape[0], windows.device)
            return self.attend(windows, masked, mask)
        labels = window_labels(h, w, self.window, self.shift, windows.device)
        self.pruned_fraction = 1.0 - keep.float().mean().item()
        chosen = keep.nonzero()[:, 0]
        ids = chosen % labels.shape[0]
        masked = needs_mask(labels)[ids].nonzero()[:, 0]
        mask = pair_mask(labels[ids[masked]]) if masked.numel() else None
        attended = self.attend(windows[chosen], masked, mask)
        return torch.zeros_like(windows).index_copy(0, chosen, attended)

    def attend_traceable(self, windows: torch.Tensor, h, w) -> torch.Tensor:
        """Same result with shape-independent control flow: every window gets its (possibly all-zero) mask,
        and pruned windows are zeroed instead of skipped. Used by `freqnet export` and under `torch.compile`."""
        labels = window_labels_traceable(h, w, self.window, self.shift, windows.device)
        mask = pair_mask(labels).repeat(windows.shape[0] // labels.shape[0], 1, 1, 1)
        out = self.attend(windows, None, mask)
        keep = self.keep_windows(windows)
        return out if keep is None else out * keep[:, None, None].to(out.dtype)

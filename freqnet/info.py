"""Model cost and structure summaries (`freqnet info`)."""

from __future__ import annotations

import json
from collections import Counter

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .models import fuse, is_fused


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward on a (1, C, height, width) input, from PyTorch's FLOP counter
    (convolutions, matmuls and attention; element-wise ops are not counted, as in the field's tables)."""
    was_training = model.training
    model.eval()
    x = torch.rand(1, model.config.in_channels, height, width, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2


def module_summary(model: nn.Module) -> list[tuple[str, str, int]]:
    """(name, type, parameters) of each top-level part, in forward order."""
    return [(name, type(child).__name__, count_parameters(child)) for name, child in model.named_children()]


def block_census(model: nn.Module) -> Counter[str]:
    interesting = {"LFBlock", "HFBlock", "TransformerBlock", "WindowAttention", "SelectiveMoEFFN", "GDFN",
                   "CrossFrequencyFusion", "PartialLargeKernelConv", "Conv3XC", "DySample", "FFTSplitter",
                   "LaplacianSplitter", "ConvMixer"}
    return Counter(type(m).__name__ for m in model.modules() if type(m).__name__ in interesting)


def card_fields(metadata: dict[str, str]) -> str:
    """A model file's OpenModelDB-style card (name, licence, scale, data, description...), one field per line."""
    record = json.loads(metadata.get("openmodeldb", "{}"))
    if not record:
        return f"name: {metadata.get('name', '(unnamed)')} (no card fields in this file)"
    fields = [f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
              for key, value in record.items()]
    if "training_history" in metadata:  # trainingIterations counts only the last stage; this says what came before
        fields.append(f"trainingHistory: {metadata['training_history']}")
    return "\n".join(fields)


def describe(model: nn.Module, size: int = 128) -> str:
    """Human-readable report: parameters (training and fused form), MACs per output pixel, module table."""
    config = model.config
    fused = fuse(model)
    macs = count_macs(fused, size, size)
    out_pixels = (size * config.scale) ** 2
    lines = [
        f"HybridMoE-FreqNet x{config.scale}",
        (f"parameters: {count_parameters(fused):,} (fused file)" if is_fused(model) else
         f"parameters: {count_parameters(model):,} (training form), {count_parameters(fused):,} (fused)"),
        f"MACs: {macs / 1e9:.2f} G for a {size}x{size} input = {macs / out_pixels:,.0f} per output pixel (fused)",
        "",
        f"{'module':<18}{'type':<26}{'parameters':>12}",
    ]
    lines += [f"{name:<18}{kind:<26}{params:>12,}" for name, kind, params in module_summary(model)]
    lines += ["", "blocks: " + ", ".join(f"{n}x {k}" for k, n in sorted(block_census(model).items()))]
    switches = ["splitter", "use_hf_path", "use_attention", "use_moe", "upsampler", "num_experts", "top_k",
                "window_size", "plk_kernel", "prune_threshold"]
    lines += ["config: " + ", ".join(f"{k}={getattr(config, k)}" for k in switches)]
    return "\n".join(lines)

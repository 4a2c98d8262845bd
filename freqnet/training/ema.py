"""Exponential moving average of a model's parameters *and buffers* (used for validation and saved)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        """ema = d * ema + (1 - d) * current for floating tensors; other buffers are copied."""
        d = self.decay if decay is None else decay
        source = model.state_dict()
        for name, tensor in self.model.state_dict().items():
            current = source[name].detach()
            if tensor.dtype.is_floating_point:
                tensor.mul_(d).add_(current.to(tensor.dtype), alpha=1 - d)
            else:
                tensor.copy_(current)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

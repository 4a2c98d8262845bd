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
        """ema = d * ema + (1 - d) * current for floating tensors, as one multi-tensor lerp (a handful of kernels
        on a GPU, where a per-tensor loop launched two per tensor); d = 0 copies exactly; other buffers are copied."""
        d = self.decay if decay is None else decay
        source = model.state_dict()
        averaged, current = [], []
        for name, tensor in self.model.state_dict().items():
            if tensor.dtype.is_floating_point:
                averaged.append(tensor)
                current.append(source[name].detach().to(tensor.dtype))
            else:
                tensor.copy_(source[name])
        if d == 0:
            torch._foreach_copy_(averaged, current)
        else:
            torch._foreach_lerp_(averaged, current, 1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

"""Selective MoE FFN for the bottleneck: token-level top-k routing over small gated experts.

Experts are GDFN-style gated MLPs. GDFN's depthwise conv needs spatial neighbours, which a routed token has
lost, so one shared depthwise conv runs *before* routing and gives every token its local context.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class GatedExpert(nn.Module):
    """One expert: Linear -> GELU-gated halves -> Linear, on a flat batch of tokens."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.expand = nn.Linear(channels, 2 * hidden)
        self.project = nn.Linear(hidden, channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        value, gate = self.expand(tokens).chunk(2, dim=-1)
        return self.project(F.gelu(value) * gate)


class Routing(NamedTuple):
    expert: torch.Tensor  # (T, k) chosen expert per token and choice
    gate: torch.Tensor  # (T, k) weight of each choice
    kept: torch.Tensor  # (T, k) False where the expert was over capacity (token bypasses it)
    probs: torch.Tensor  # (T, E) router probabilities
    logits: torch.Tensor  # (T, E)


class SelectiveMoEFFN(nn.Module):
    """Top-1/top-2 routed experts with a capacity limit in training, Switch balance loss and router z-loss.

    At inference there is no capacity limit: a token's output never depends on the rest of the image, which
    keeps tiling exact.
    """

    def __init__(
        self,
        channels: int,
        expansion: float,
        num_experts: int,
        top_k: int,
        capacity_factor: float,
        balance_weight: float,
        zloss_weight: float,
        router_noise: float,
    ) -> None:
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k
        self.capacity_factor = capacity_factor
        self.balance_weight, self.zloss_weight = balance_weight, zloss_weight
        self.router_noise = router_noise
        self.context = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.router = nn.Linear(channels, num_experts, bias=False)
        hidden = max(4, int(channels * expansion))
        self.experts = nn.ModuleList(GatedExpert(channels, hidden) for _ in range(num_experts))
        self.aux = torch.zeros(())
        self.load = torch.zeros(num_experts)
        self.dropped = torch.zeros(())

    def capacity(self, num_tokens: int) -> int | None:
        if not self.training:
            return None
        return math.ceil(self.capacity_factor * self.top_k * num_tokens / self.num_experts)

    def route(self, tokens: torch.Tensor) -> Routing:
        with torch.autocast(device_type=tokens.device.type, enabled=False):  # routing decisions in fp32
            logits = F.linear(tokens.float(), self.router.weight.float())
        if self.training and self.router_noise > 0:
            logits = logits + torch.randn_like(logits) * self.router_noise
        probs = logits.softmax(dim=-1)
        gate, expert = probs.topk(self.top_k, dim=-1)
        if self.top_k > 1:
            gate = gate / gate.sum(dim=-1, keepdim=True)
        kept = torch.ones_like(expert, dtype=torch.bool)
        routing = Routing(expert, gate, kept, probs, logits)
        capacity = self.capacity(tokens.shape[0])
        if capacity is not None:
            routing = routing._replace(kept=self.queue_position(routing) < capacity)
        return routing

    def one_hot(self, expert: torch.Tensor) -> torch.Tensor:
        """(..., E) bool; unlike F.one_hot, never reads the indices back to the host to range-check them."""
        return expert[..., None] == torch.arange(self.num_experts, device=expert.device)

    def assignment_fraction(self, routing: Routing) -> torch.Tensor:
        """f_i: the fraction of routed assignments (all k choices) that went to each expert."""
        return self.one_hot(routing.expert).float().mean(dim=(0, 1))

    def losses(self, routing: Routing) -> torch.Tensor:
        """Switch balance loss `w * E * sum_i f_i P_i` (= w when balanced) plus router z-loss."""
        fraction = self.assignment_fraction(routing)
        balance = self.num_experts * (fraction * routing.probs.mean(dim=0)).sum()
        zloss = routing.logits.logsumexp(dim=-1).square().mean()
        return self.balance_weight * balance + self.zloss_weight * zloss

    def combine_weights(self, routing: Routing) -> torch.Tensor:
        """(T, E): each token's gate on each expert, zero where not chosen or dropped."""
        weights = routing.gate * routing.kept.to(routing.gate.dtype)
        return torch.zeros(routing.gate.shape[0], self.num_experts, device=weights.device,
                           dtype=weights.dtype).scatter_add_(1, routing.expert, weights)

    def dispatch(self, tokens: torch.Tensor, routing: Routing) -> torch.Tensor:
        """Training: every expert runs on a fixed-capacity buffer of its tokens. Inference on GPU and under
        torch.compile: every expert runs on every token and the gates pick (exact: no token can be dropped). Both
        have static shapes: no `nonzero`, no host synchronisation, one graph. Eager inference on CPU and the
        exported graphs route each token to its expert only (benchmarks/moe_dispatch.py: 3-4x cheaper than dense
        on CPU; ONNX has dynamic shapes, and ONNX Runtime runs on the CPU)."""
        capacity = self.capacity(tokens.shape[0])
        if capacity is not None:
            return self.dispatch_buffered(tokens, routing, capacity)
        if tokens.is_cuda or torch.compiler.is_compiling():
            return self.dispatch_dense(tokens, self.combine_weights(routing))
        return self.dispatch_routed(tokens, routing)

    def dispatch_routed(self, tokens: torch.Tensor, routing: Routing) -> torch.Tensor:
        """Each expert on exactly its own tokens (found with `nonzero`, which on a GPU waits for the device), at
        inference, where every assignment is kept. The experts' outputs, concatenated expert by expert, come back
        to token order by one gather: an assignment's row there is its expert's offset plus its queue position.
        No scatter, which exporters turn into a slow ScatterND."""
        t = tokens.shape[0]
        choices = routing.expert.t().reshape(-1)  # (k * T): all first choices, then all second (queue order)
        gates = routing.gate.t().reshape(-1, 1).to(tokens.dtype)
        outputs = []
        for index, expert in enumerate(self.experts):
            assignment = (choices == index).nonzero()[:, 0]  # ascending: the expert's queue
            outputs.append(expert(tokens[assignment % t]) * gates[assignment])
        counts = self.one_hot(choices).sum(dim=0)
        row = (counts.cumsum(dim=0) - counts)[routing.expert] + self.queue_position(routing)  # (T, k)
        return torch.cat(outputs)[row.reshape(-1)].view(t, self.top_k, -1).sum(dim=1)

    def dispatch_dense(self, tokens: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(tokens)
        for index, expert in enumerate(self.experts):
            out = out + expert(tokens) * weights[:, index:index + 1].to(tokens.dtype)
        return out

    def dispatch_buffered(self, tokens: torch.Tensor, routing: Routing, capacity: int) -> torch.Tensor:
        """Scatter each kept assignment to slot `position` of its expert's buffer (dropped ones to a spare slot that
        is never read), run each expert on its whole buffer, gather the outputs back with the gates."""
        t, c = tokens.shape
        slots = capacity + 1  # the last slot of each buffer takes the overflow
        position = self.queue_position(routing).clamp(max=capacity)  # (T, k)
        slot = routing.expert * slots + position  # (T, k) index into the flat (E * slots) buffer
        buffer = tokens.new_zeros(self.num_experts * slots, c)
        buffer = buffer.index_copy(0, slot.t().reshape(-1), tokens.repeat(self.top_k, 1))
        buffer = buffer.view(self.num_experts, slots, c)
        outputs = torch.stack([expert(buffer[e]) for e, expert in enumerate(self.experts)]).view(-1, c)
        gate = (routing.gate * routing.kept.to(routing.gate.dtype)).to(tokens.dtype)
        return (outputs[slot.reshape(-1)].view(t, self.top_k, c) * gate[..., None]).sum(dim=1)

    def queue_position(self, routing: Routing) -> torch.Tensor:
        """(T, k): each assignment's place in its expert's queue, all first choices before all second choices."""
        one_hot = self.one_hot(routing.expert.t().reshape(-1)).long()
        position = ((one_hot.cumsum(dim=0) - 1) * one_hot).sum(dim=-1)
        return position.view(self.top_k, -1).t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.context(x).permute(0, 2, 3, 1).reshape(-1, c)
        routing = self.route(tokens)
        out = self.dispatch(tokens, routing)
        # The balance and z-loss only train the router: inference skips them.
        self.aux = self.losses(routing) if self.training else routing.logits.new_zeros(())
        with torch.no_grad():
            self.load = self.assignment_fraction(routing)
            self.dropped = 1.0 - routing.kept.float().mean()
        return out.view(b, h, w, c).permute(0, 3, 1, 2)

"""Learning-rate schedule (linear warmup, then cosine / multi-step / constant) and the loss curriculum."""

from __future__ import annotations

import bisect
import dataclasses
import math

from .config import LossWeights, OptimSection, Stage


def lr_factor(iteration: int, total: int, optim: OptimSection) -> float:
    """Multiplier of the base learning rate at `iteration` (0-based)."""
    if optim.warmup and iteration < optim.warmup:
        return (iteration + 1) / optim.warmup
    if optim.schedule == "cosine":
        span = max(1, total - optim.warmup)
        progress = min(1.0, (iteration - optim.warmup) / span)
        floor = optim.min_lr / optim.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if optim.schedule == "multistep":
        return optim.gamma ** bisect.bisect_right(sorted(optim.milestones), iteration)
    return 1.0


def loss_weights(iteration: int, base: LossWeights, curriculum: list[Stage]) -> dict[str, float]:
    """Weights in force at `iteration`: each started stage moves its losses from the previous value to the
    stage's value linearly over `ramp` iterations (a step change when ramp is 0)."""
    weights = dataclasses.asdict(base)
    for stage in sorted(curriculum, key=lambda s: s.start):
        if iteration < stage.start:
            break
        progress = 1.0 if stage.ramp <= 0 else min(1.0, (iteration - stage.start + 1) / stage.ramp)
        for name, target in stage.losses.items():
            weights[name] = weights[name] + (target - weights[name]) * progress
    return weights

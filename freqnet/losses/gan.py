"""Adversarial losses: vanilla (BCE on logits), LSGAN (least squares) and hinge."""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_TYPES = ("vanilla", "lsgan", "hinge")


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"GAN type {kind!r}: allowed {GAN_TYPES}")


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "vanilla":
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    if kind == "lsgan":
        return F.mse_loss(real_logits, torch.ones_like(real_logits)) + F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    raise ValueError(f"GAN type {kind!r}: allowed {GAN_TYPES}")

"""Training: config, losses curriculum, EMA, checkpoints, DDP loop."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig, load_config
from .trainer import Trainer, TrainingStopped


def train(config: TrainConfig, run_dir: str | Path, resume: str | None = None) -> int:
    """Run (or continue) a training run; returns the process exit code."""
    return Trainer(config, run_dir, resume).run()


__all__ = ["TrainConfig", "Trainer", "TrainingStopped", "load_config", "train"]

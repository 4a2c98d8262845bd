"""Run logging on rank 0: a plain-text log in the run folder, a progress bar, and TensorBoard when installed."""

from __future__ import annotations

import re
import time
import warnings
from datetime import datetime
from pathlib import Path

import torch


class RunLogger:
    def __init__(self, run_dir: Path, total: int, start: int, enabled: bool, tensorboard: bool, progress: bool) -> None:
        self.enabled = enabled
        self.text = open(run_dir / "train.log", "a", buffering=1) if enabled else None
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                warnings.warn("tensorboard is not installed: logging to train.log only (pip install tensorboard)")
        self.bar = None
        if enabled and progress:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True)
            except ImportError:
                pass
        self.started = time.perf_counter()

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        self.text.write(line + "\n")
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def step(self, postfix: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            self.bar.update(1)

    def scalars(self, iteration: int, values: dict[str, float], prefix: str = "") -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}{key}", value, iteration)

    def histogram(self, iteration: int, tag: str, values: torch.Tensor) -> None:
        if self.writer is not None:
            self.writer.add_histogram(tag, values, iteration)

    def image(self, iteration: int, tag: str, image: torch.Tensor) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, image.clamp(0, 1), iteration)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.text is not None:
            self.text.close()


def wall_seconds(run_dir: str | Path) -> float:
    """Seconds between the first and last lines of a run's train.log (all sessions of a resumed run)."""
    stamps = [datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
              for line in (Path(run_dir) / "train.log").read_text().splitlines()
              if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)]
    return (stamps[-1] - stamps[0]).total_seconds() if stamps else 0.0

"""Timing helpers shared by the benchmark scripts: interleaved repeats, medians, machine description."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def inference_call(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """`model(x)` without autograd, as a no-argument callable for `interleaved_medians`."""
    def run():
        with torch.inference_mode():
            return model(x)
    return run


def interleaved_medians(candidates: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each candidate, measured round-robin so that machine noise hits all alike."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}

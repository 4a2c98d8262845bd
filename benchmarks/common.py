"""Helpers shared by the benchmark scripts: interleaved repeats, medians, machine description, report writing."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def in_fresh_process(script: str, *args: str, checkout: str | Path | None = None) -> dict:
    """Run `python script --child ARGS...` and return the JSON its last output line holds: peak memory, compile
    caches and thread pools are then that configuration's own. `checkout`: import freqnet from that source tree
    (e.g. a `git worktree` of an older commit) to time the code before a change in the same run."""
    env = {**os.environ, "PYTHONPATH": str(Path(checkout).resolve())} if checkout else None
    result = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(script).name} --child {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def inference_call(model: Callable[[torch.Tensor], object], x: torch.Tensor) -> Callable[[], object]:
    """`model(x)` (a module, or an `Upscaler`'s `infer`) without autograd, as a no-argument callable for
    `interleaved_medians`."""
    def run():
        with torch.inference_mode():
            return model(x)
    return run


def onnx_call(model, x) -> Callable[[], object]:
    """An `OnnxModel`'s forward on the numpy array `x`, as a no-argument callable for `interleaved_medians`."""
    return lambda: model.forward(x)


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


def speed_config(preset: str, batch: int, patch: int, steps: int, **fields):
    """A ×4 training config for timing `steps` steps on the bundled photos: no validation, checkpoints or logs."""
    from freqnet.training import load_config

    return load_config(base={
        "iterations": steps, "model": {"preset": preset, "scale": 4},
        "data": {"train": {"hr": "builtin:samples", "patch_size": patch, "batch_size": batch, "workers": 0},
                 "val": {"every": 0}},
        "checkpoint": {"every": 10**9}, "log": {"every": 10**9, "tensorboard": False, "progress": False}, **fields})


class TrainingRate(NamedTuple):
    first_step_s: float  # the first step alone: tracing and compiling when the config compiles
    it_per_s: float      # after the warm-up steps


def training_rate(config, steps: int, warmup: int, synchronize: Callable[[], None] = lambda: None) -> TrainingRate:
    """Trainer.step calls per second on prefetched batches (data loading excluded), after `warmup` steps that
    build lazy modules (VGG, discriminator), compile when asked, and warm the allocator."""
    from freqnet.training import Trainer
    from freqnet.training.schedule import loss_weights

    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(config, run)
        data = trainer.batches()
        batches = [next(data) for _ in range(warmup + steps)]
        weights = loss_weights(0, config.losses, config.curriculum)
        start = time.perf_counter()
        for i, batch in enumerate(batches[:warmup]):
            trainer.step(batch, weights)
            if i == 0:
                synchronize()
                first_step = time.perf_counter() - start
        synchronize()
        start = time.perf_counter()
        for batch in batches[warmup:]:
            trainer.step(batch, weights)
        synchronize()
        return TrainingRate(first_step, steps / (time.perf_counter() - start))


def write_report(lines: list[str], out=None) -> str:
    """Join a generated Markdown report, print it, and write it to `out` when given (every script's --out)."""
    report = "\n".join(lines).rstrip("\n") + "\n"
    print(report)
    if out:
        Path(out).write_text(report)
    return report


def replace_block(text: str, tag: str, block: str) -> str:
    """Swap the `<!-- tag -->...<!-- /tag -->` block of a document for `block` (which carries the same markers), or
    append it: generated tables live inside hand-written docs."""
    pattern = re.compile(rf"<!-- {re.escape(tag)} -->.*?<!-- /{re.escape(tag)} -->", re.S)
    return pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"

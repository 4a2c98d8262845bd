"""Which arithmetic a model runs in: `auto` picks bf16 where the hardware computes it natively and it pays."""

from __future__ import annotations

import torch

# Each precision's autocast dtype (None: plain fp32).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = tuple(AUTOCAST_DTYPES)


def native_bf16_cpu() -> bool:
    """An x86 CPU with bf16 arithmetic (AVX512-BF16: AMD Zen 4 and later, Intel Cooper Lake; or AMX). There the
    shipped models run 1.3-1.9x faster in bf16 than in fp32 with the same scores to 0.01 dB on the standard sets
    (docs/standard_benchmarks.md); elsewhere oneDNN emulates bf16, which does not pay."""
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is bf16 on a CPU with native bf16 and fp32 everywhere else (on GPUs this small model is bound by
    kernel launches, not arithmetic: docs/gpu_checks.md); any other value is checked and kept."""
    if precision == "auto":
        return "bf16" if device.type == "cpu" and native_bf16_cpu() else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: allowed auto, {', '.join(PRECISIONS)}")
    return precision

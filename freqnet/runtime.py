"""Process-level settings that make CPU inference and training faster; the CLI applies them, library users may."""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Stop glibc from returning large freed blocks to the OS after every tensor.

    By default each activation over ~32 MB is mmap'ed fresh and page-faulted in, every forward: measured
    here, a 512x512 x4 forward of `tiny` spent a third of its time in page faults (1066 ms -> 678 ms with
    this). Returns False where it does not apply (not glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold_bytes)) and bool(libc.mallopt(M_TRIM_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False

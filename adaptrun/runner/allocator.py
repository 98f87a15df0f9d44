"""Keep freed tensor memory in the process instead of handing it back to the OS.

PyTorch's CPU tensors come from glibc's malloc, which serves every block over its mmap
threshold (128 KB at first) with a fresh mmap and unmaps it on free. A full-batch step
frees and reallocates the same few-MB tensors every step, so each step page-faults and
zeroes all of them again: on the Burgers preset that is half the step time (measured in
BENCHMARKS.md). Raising the mmap and trim thresholds keeps the blocks in malloc's heap.
No dependency sets this (jemalloc/tcmalloc would need LD_PRELOAD before Python starts),
hence ctypes and ``mallopt``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper bound for this setting on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where the C library
    is not glibc (macOS, musl) and nothing was changed."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )

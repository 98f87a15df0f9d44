"""The allocator setting that keeps freed tensor memory in the process (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys, torch
from adaptrun.runner.allocator import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()  # idempotent
before = libc.mallinfo2().hblkhd
x = torch.empty(1 << 20)  # 4 MB
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_large_tensors_come_from_the_heap_not_fresh_mappings():
    def mapped(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout.split()[-1])

    assert mapped("default") >= 4 << 20  # glibc maps each block over 128 KB on its own
    assert mapped("keep") == 0  # served from the heap, which keeps what tensors free

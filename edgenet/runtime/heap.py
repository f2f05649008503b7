"""Keep freed memory in the process: large NumPy temporaries without a page fault per byte.

glibc's ``malloc`` serves blocks above ``M_MMAP_THRESHOLD`` with a fresh ``mmap`` and gives the
top of the heap back to the kernel once more than ``M_TRIM_THRESHOLD`` of it is free. A 224 px
image in float64 is 1.2 MB, so every preprocessing or quantization step of every image maps new
pages and faults them in again: measured in the model server, quantizing one Lite0 input took
2.3-2.7 ms with the defaults and 0.28 ms with freed memory kept (``benchmarks/isolated_overhead.py``:
a classification round trip 5.4 against 2.7 ms). :func:`retain_freed_memory` raises both
thresholds, bounded (a few images' worth: a Raspberry Pi keeps its RAM), in processes that run
models over many images: the CLI and the model server. Elsewhere (musl, macOS) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "retain_freed_memory"]

#: Blocks below this come from the heap (glibc's own ceiling for its adaptive threshold is 32 MiB).
MMAP_THRESHOLD_BYTES = 32 << 20
#: Free memory kept at the top of the heap before it is returned to the kernel.
TRIM_THRESHOLD_BYTES = 64 << 20

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; ``True`` when they were set."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt  # absent outside glibc (e.g. musl): nothing to tune
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        return (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
    return False

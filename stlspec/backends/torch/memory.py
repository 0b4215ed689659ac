"""Host memory behaviour that matters for the torch backend on CPU."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make the C library's ``malloc`` keep freed memory for reuse instead of returning it to the system.

    With glibc's defaults every large allocation (above the mmap threshold: 128 KB, adapting up to
    32 MB) is a fresh ``mmap``: its pages are faulted in and zeroed by the kernel on first touch and
    given back on ``free``. A torch backward pass over a large batch allocates dense gradients the
    size of the fact tensors on every call (420 MB for ``binary`` at B = 1,024, T = 32, N = 8, 50
    predicates), so that cost grows with the batch: on the 2-core development machine, ``laser``
    fwd+bwd at B = 1,024 ran at 553 videos/s with glibc's defaults and 1,314 with freed memory kept
    (B = 64: 1,762 and 1,795; ``bench/eval_throughput.py --system-malloc`` measures without it).

    The trade-off: the process's resident memory stays at its high-water mark. The setting is
    process-wide and stays for the life of the process (forked children inherit it); call it once
    at start-up, as ``python -m laser_train`` and the benchmarks do. The evaluator never calls it
    itself. Returns True if applied, False where the C library is not glibc (nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu = libc.gnu_get_libc_version  # glibc only: musl's mallopt is a stub
    except (OSError, AttributeError):
        return False
    del gnu
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1

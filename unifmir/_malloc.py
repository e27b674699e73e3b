"""Keep freed tensor memory from piling up in the C heap (glibc) during long CPU jobs.

glibc serves an allocation from its heap unless it is larger than the *mmap threshold*, and that
threshold adapts upwards (to 32 MiB) each time a large mmapped block is freed. PyTorch on the CPU
frees and reallocates tensors of many sizes (every layer, every image size, the TorchScript
executor's buffers), so after a few whole-image runs most activations come from the heap, and
the freed ones stay mapped as fragments: measured for the full-size denoise network on an
8 x 80 x 80 test stack, one eager or TorchScript forward needs ~0.35 GiB, yet the process held
1.4-3.4 GiB afterwards (``malloc_trim`` gave it back at once), and an export holding several
modules reached 4.8 GiB in Python plus 3 GiB in the libtorch check's child process.

:func:`limit_heap_fragmentation` fixes the threshold (which also stops its adaptation): blocks of
``threshold`` bytes and more are mmapped and returned to the system when freed. Measured on the
same forward: peak 0.66 GiB instead of 1.4-3.4 GiB, no slower within the noise of a shared
machine. Child processes inherit it through ``MALLOC_MMAP_THRESHOLD_``. A value the user already
set in the environment is left alone; other platforms are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["DEFAULT_MMAP_THRESHOLD", "limit_heap_fragmentation"]

DEFAULT_MMAP_THRESHOLD = 4 << 20
"""4 MiB: every activation of a whole-image run is larger; small objects stay on the heap."""

_M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
_ENV = "MALLOC_MMAP_THRESHOLD_"


def limit_heap_fragmentation(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Serve allocations of ``threshold`` bytes and more with mmap (glibc only; see the module doc).

    Returns True when the setting is in effect for this process (applied now or set by the user
    through ``MALLOC_MMAP_THRESHOLD_`` before start), False where it does not apply.
    """
    if not sys.platform.startswith("linux"):
        return False
    if _ENV in os.environ:
        return True  # glibc read the user's value at start-up
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, ...)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, int(threshold)) != 1:
        return False
    os.environ[_ENV] = str(int(threshold))  # child processes (libtorch check, bioimageio CLI)
    return True

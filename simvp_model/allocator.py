"""glibc malloc settings that keep training and inference from page-faulting every step.

With glibc's defaults, every tensor above the (adaptive, ≤ 32 MiB) mmap threshold is ``mmap``-ed
on allocation and ``munmap``-ed on free, so a training step page-faults (and the kernel zeroes)
its large activations afresh each time: ~300–900 k minor faults per taxibj step, 10–20 % of the
step. Raising the mmap and trim thresholds lets freed blocks stay in the heap for the next step.
The product's entry points (``nowcast``, the Prefect flows, ``make demo``) call
:func:`tune_glibc_malloc` first; it is the runtime form of exporting ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_``. The cost is that the process keeps its peak heap until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

# mallopt parameters (<malloc.h>)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap and are reused
TRIM_THRESHOLD_BYTES = (1 << 31) - 1  # never hand the heap top back (largest C int)
OPT_OUT_VARIABLE = "NOWCAST_TUNE_MALLOC"
USER_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "GLIBC_TUNABLES",
    "LD_PRELOAD",
)


def tune_glibc_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds for this process; True when applied.

    Nothing is changed (and False returned) off Linux/glibc, when ``NOWCAST_TUNE_MALLOC=0``, or
    when the user already chose allocator settings through ``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES`` or ``LD_PRELOAD`` (theirs win).
    """
    if os.environ.get(OPT_OUT_VARIABLE, "1") == "0":
        log.debug("malloc tuning off (%s=0)", OPT_OUT_VARIABLE)
        return False
    chosen = [name for name in USER_VARIABLES if os.environ.get(name)]
    if chosen:
        log.debug("malloc tuning left to the environment (%s)", ", ".join(chosen))
        return False
    if not sys.platform.startswith("linux"):
        return False
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # musl and others: no mallopt
        log.debug("no glibc mallopt in %r; malloc left as it is", path)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    log.debug("glibc malloc mmap/trim thresholds raised: %s", applied)
    return applied

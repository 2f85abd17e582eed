"""Giving memory back after large request bodies (issue 9 finding 10).

glibc raises its mmap threshold each time a large block is freed, so after a
few large bodies, later ones are carved out of the heap and arenas instead of
mapped, and stay resident after they are freed: twelve 26 MB bodies left the
daemon at 800 MB for good.  Fixing the threshold makes every block of
``MMAP_THRESHOLD`` or more its own mapping, returned to the system the moment
Python frees it; ``malloc_trim`` after a large request returns what smaller
pieces left free in the heaps.  Without glibc (musl) both are skipped.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 1024 * 1024


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc only)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def tune_allocator() -> None:
    """Fix glibc's mmap and trim thresholds so large blocks go back to the system when freed."""
    if _LIBC is None:
        return
    if not (_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _LIBC.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        log.warning("mallopt refused the mmap/trim thresholds; memory may stay resident after large requests")


def release_memory() -> None:
    """Return free heap pages to the system (after a large request is done)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)

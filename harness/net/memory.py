"""Giving freed memory back to the operating system after a burst of connections.

Receive buffers of partial PDUs grow to a megabyte or more; glibc serves such sizes from
its heap once it has freed one of them (its mmap threshold adapts upwards), and a heap freed
in pieces stays resident. ``malloc_trim(0)`` returns those free pages; elsewhere (no glibc)
this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
with contextlib.suppress(OSError, AttributeError, TypeError):
    _name = ctypes.util.find_library("c")
    if _name:
        _trim = ctypes.CDLL(_name).malloc_trim


def release_heap() -> bool:
    """Return free heap pages to the system; True if the C library could be asked."""
    if _trim is None:
        return False
    _trim(0)
    return True

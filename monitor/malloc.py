"""Fewer glibc malloc arenas, so memory freed by one poller is reused by the next.

glibc gives each thread that contends for the allocator an arena of its own (up to eight
per core) and keeps what is freed in it for that arena's later use. The pollers
allocate a feed's text, its parsed entries and SQLite pages on ten threads; with an
arena each, a cold pass over 200 feeds of 50 items peaked 17 MiB higher than with two
(136 against 119 MiB). ``MALLOC_ARENA_MAX`` does the same from the environment, but
only when it is set before the process starts, which a user's service file or shell may
not do. Elsewhere (musl, macOS) there is nothing to set.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_arenas() -> bool:
    """Cap glibc's arenas at ``ARENAS`` unless ``MALLOC_ARENA_MAX`` already chose; whether
    the cap was set. Call before the first threads start."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS))

"""Allocator settings for a load: what keeps a run's peak memory flat (issue 13, `make bench`).

Measured on a first load of 100k executions (20 syncs, 50k rows per load), peak RSS:
373 MB as shipped by the libraries, 318 MB with Arrow on the system allocator (mimalloc, its
default, keeps freed pages for reuse), 287 MB with glibc also limited to two arenas (each
walking thread otherwise gets an arena of its own, and freed memory scattered over them is
not returned). Neither changes the CPU time measurably. A value the user set in the
environment (`ARROW_DEFAULT_MEMORY_POOL`, `MALLOC_ARENA_MAX`) is left alone.

DuckDB's cache is not capped by default, although a cap saves 25-40 MB at 200k executions:
DuckDB keeps a transaction's uncommitted rows in memory, so under a cap a load with many
columns (an API that grows fields) fails with "Out of Memory" (50k rows of 100 text columns
need more than 64 MB). A user can set one: `[destination.duckdb.credentials] global_config`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

_M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def tune_allocators() -> None:
    """Arrow's default pool becomes the system allocator; glibc keeps at most two arenas."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        if "pyarrow" in sys.modules:
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())
        else:
            os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # read when pyarrow loads
    if "MALLOC_ARENA_MAX" not in os.environ and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, TypeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt(_M_ARENA_MAX, ARENAS)  # not glibc (musl): no such call, no harm

"""Memory hygiene of the sidecar process: the collector off the start-up heap and seldomer, a tidy allocator.

The provider SDKs bring hundreds of thousands of objects that live as long as the process
(module code, classes, pydantic models). CPython's full collections traverse all of them:
at 32 connections that showed as a p99 of ~175 ms through the sidecar against ~30 ms with
them frozen (bench/throughput.py, bench/README.md). ``settle()`` runs after each applied
config; when modules were loaded since the last call (the first config, or one that brought
a new SDK) it moves every object alive now into the permanent generation (``gc.freeze``),
so later collections look only at objects made after it. Cheap (no collection is run), and a
no-op on every other config.

``resume_collector()`` ends the start: ``modelroute.sidecar.prelude`` pauses the collector while the
sidecar's ~630 modules import (collections there find nothing to free); once the sidecar serves, the
start-up heap is frozen and the collector runs again, with these thresholds.

``tune_collector()`` (called once at start) runs a generation-0 collection every
``GEN0_THRESHOLD`` net allocations of tracked objects instead of CPython's 700: a request through
the sidecar leaves a few hundred young objects alive for its duration, so at 32 connections the
default collected (and promoted into older generations, collected again) ~every request: ~16 µs of
CPU per request, against ~2 µs at 20,000 (bench/README.md, ``runsidecar.py --gc-stats``). Garbage
without cycles is freed by reference counts either way; what waits longer is cyclic garbage only.

``tune_allocator()`` (glibc only; called once at start) keeps one malloc arena, serves
allocations over 128 KiB from their own mappings (no dynamic threshold) and returns freed
heap above 64 KiB to the system: with glibc's defaults the resident size of a
sidecar crept up ~5 MB over a 100k-request soak although nothing leaked; with these it stays
flat (bench/memory.py, bench/README.md).
"""

from __future__ import annotations

import ctypes
import gc
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
TRIM_THRESHOLD = 64 * 1024
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value; fixed, so big buffers stay mmapped and go back when freed

GEN0_THRESHOLD = 10_000

_modules_at_freeze = 0


def settle() -> bool:
    """Freeze the heap if modules were loaded since the last freeze; True if it did."""
    global _modules_at_freeze
    loaded = len(sys.modules)
    if loaded <= _modules_at_freeze:
        return False
    gc.freeze()
    _modules_at_freeze = loaded
    return True


def resume_collector() -> bool:
    """Once serving: freeze the start-up heap and turn the collector back on; True if it was paused.

    ``modelroute.sidecar.prelude`` pauses it before the sidecar's modules import; a collector
    nobody paused (the sidecar run inside another program, tests) is left as it is.
    """
    if gc.isenabled():
        return False
    gc.freeze()
    gc.enable()
    return True


def tune_collector() -> None:
    """Collect generation 0 every ``GEN0_THRESHOLD`` allocations; the older generations' thresholds stay."""
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])


def tune_allocator() -> bool:
    """One malloc arena, trimmed above ``TRIM_THRESHOLD``; True if glibc took both settings."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols, libc's among them: ``ctypes.util.find_library("c")`` would run
        # ``ldconfig -p`` in a child process at every start.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all([mallopt(_M_ARENA_MAX, 1), mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)])

"""What `modelroute sidecar` does before it imports anything of its own (``modelroute.cli.main`` runs it).

Starting the sidecar imports ~630 modules (aiohttp, pydantic, the provider SDKs) whose objects
live as long as the process. While they load, the cyclic garbage collector runs collection
after collection over that growing heap and finds nothing to free: ~3% of the instructions
from exec to ready with one provider, more with three (bench/README.md). ``starting()`` pauses
the collector; ``modelroute.sidecar.cli`` freezes the start-up heap and resumes it, with the
sidecar's thresholds, once it serves (``server.memory.resume_collector``). It also looks the
CA anchors up by directory while the modules import (``trustdir``).

Stdlib only: importing this must not import aiohttp.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from modelroute.sidecar import trustdir


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Around the import of ``modelroute.sidecar.cli``: the collector stays paused after it."""
    gc.disable()
    trustdir.prefer_directory()
    try:
        yield
    finally:
        trustdir.restore()

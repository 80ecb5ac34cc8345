"""What `modelroute sidecar` does before it imports anything of its own (``modelroute.cli.main`` runs it).

Starting the sidecar imports ~630 modules (aiohttp, pydantic, the provider SDKs) whose objects
live as long as the process. While they load, the cyclic garbage collector runs collection
after collection over that growing heap and finds nothing to free: ~3% of the instructions
from exec to ready with one provider, more with three (bench/README.md). ``starting()`` pauses
the collector; ``modelroute.sidecar.cli`` freezes the start-up heap and resumes it, with the
sidecar's thresholds, once it serves (``server.memory.resume_collector``). It also looks the
CA anchors up by directory while the modules import (``trustdir``), and tells pydantic that the
sidecar uses no pydantic plugin (``PYDANTIC_DISABLE_PLUGINS``, unless the environment sets it):
else the first model built scans every installed distribution's entry points for one (~1 % of
the instructions to ready with one provider, more the more packages the image holds).

Stdlib only: importing this must not import aiohttp.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

from modelroute.sidecar import trustdir

NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Around the import of ``modelroute.sidecar.cli``: the collector stays paused after it."""
    gc.disable()
    os.environ.setdefault(NO_PLUGINS, "__all__")  # kept: models built later (admin answers) skip the scan too
    trustdir.prefer_directory()
    try:
        yield
    finally:
        trustdir.restore()

"""Waiting in tests for a condition the code under test has no event for.

A file watcher's next poll, a request reaching a lease inside the server: ``eventually``
polls the condition and fails naming what never happened. Where the code exposes an event
(``MirrorPool.drained``, ``RuntimeHolder.retired``, ``Scheduler.settled``), await that instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], object], what: str, *, within: float = 10.0, every: float = 0.01) -> None:
    """Return once ``check()`` is truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)

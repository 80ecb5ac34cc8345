"""Waiting in tests for a condition the code under test has no event for.

A file watcher's next poll, a request reaching a lease inside the server: ``eventually``
polls the condition and fails naming what never happened. Where the code exposes an event
(``MirrorPool.drained``, ``RuntimeHolder.retired``, ``Scheduler.settled``), await that instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], object], what: str, *, within: float = 10.0, every: float = 0.01) -> None:
    """Return once ``check()`` is truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll ``fn`` (blocking) until it returns something truthy; fail with ``what`` and the last value/error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
            last = got
        except Exception as e:  # a probe that raises just is not there yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")

"""A bound on each wait of a stream, with one timer per stream instead of one per wait.

Used twice per relayed stream: the transport bounds each socket read of the upstream's answer
(``timeout`` of ``Adapter.stream``) and the router each wait for the next chunk (the idle
timeout, ``routing.stream``). aiohttp's own ``sock_read`` and an ``asyncio.timeout`` per
chunk both cancel and re-arm a loop timer for every read; at 200 chunks a second per stream
that was a tenth of the relay's CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    """Where an ``IdleWatch`` reads the time and schedules its timer: the running loop, or a test's fake."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class IdleWatch:
    """The idle timeout of a live stream: each wait (for a chunk, a read: ``arm`` .. ``disarm``) may
    last at most ``seconds``; a longer one is cancelled and ``expired()`` says why.

    What ``asyncio.timeout`` around every ``anext`` did, without a timer armed and cancelled
    per chunk (at 200 chunks a second per stream that was a tenth of the relay's CPU): one
    timer per stream that, when it fires, re-arms itself at the wait's own deadline if the
    current wait has not lasted ``seconds`` yet. Waits while the app is being written to do
    not count (the consumer holds the generator then). ``clock``: the running loop unless a
    test passes a fake one (time and timers it moves itself).
    """

    __slots__ = ("_cancelling", "_clock", "_expired", "_handle", "_loop", "_since", "_task", "seconds")

    def __init__(self, seconds: float, clock: Clock | None = None) -> None:
        self.seconds = seconds
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._handle: Cancellable | None = None
        self._since: float | None = None  # when the current wait began (None: not waiting)
        self._expired = False
        self._cancelling = 0

    def arm(self) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            if self._clock is None:
                self._clock = loop
        clock = self._clock
        assert clock is not None
        self._task = task = asyncio.current_task(loop)  # the task waiting now (a stream may change hands)
        self._since = now = clock.time()
        if self._handle is None and task is not None:
            self._handle = clock.call_at(now + self.seconds, self._check)

    def disarm(self) -> None:
        self._since = None

    def _check(self) -> None:
        assert self._clock is not None and self._task is not None
        since = self._since
        now = self._clock.time()
        if since is not None and now >= since + self.seconds:
            self._handle = None
            self._expired = True
            self._cancelling = self._task.cancelling()  # cancellations asked before this one
            self._task.cancel()
            return
        self._handle = self._clock.call_at((since if since is not None else now) + self.seconds, self._check)

    def expired(self) -> bool:
        """Whether the watch cancelled the wait (the cancellation is then taken back)."""
        if not self._expired or self._task is None:
            return False
        self._expired = False  # asked once per cancellation
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

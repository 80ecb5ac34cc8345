"""Per-namespace debounced work queue: many events, one reconcile at a time per namespace.

``mark(ns)`` is all a handler does. A worker per namespace waits ``debounce`` seconds after
the first mark (so a burst of pod and route events becomes one reconcile), runs the
reconcile, and runs again if marked meanwhile. A reconcile can ask to be retried later
(push failures); retries back off exponentially and reset after a clean round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Reconcile = Callable[[str], Awaitable[bool]]  # returns True when the namespace is fully converged

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Scheduler:
    def __init__(self, reconcile: Reconcile, debounce: float = 0.03) -> None:
        self.reconcile = reconcile
        self.debounce = debounce
        self._dirty: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._failures: dict[str, int] = {}
        self._later: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._busy: set[str] = set()  # marked and not yet reconciled since
        self.idle = asyncio.Event()  # set while no namespace is marked or reconciling
        self.idle.set()

    def later(self, namespace: str, delay: float) -> None:
        """Mark ``namespace`` again after ``delay`` seconds (the earliest of several asks wins)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, delay)
        pending = self._later.get(namespace)
        if pending is not None and pending[0] <= due and not pending[1].cancelled():
            return
        if pending is not None:
            pending[1].cancel()

        def fire() -> None:
            self._later.pop(namespace, None)
            self.mark(namespace)

        self._later[namespace] = (due, loop.call_at(due, fire))

    def mark(self, namespace: str) -> None:
        event = self._dirty.get(namespace)
        if event is None:
            event = self._dirty[namespace] = asyncio.Event()
            self._workers[namespace] = asyncio.create_task(self._work(namespace), name=f"reconcile {namespace}")
        event.set()
        self._busy.add(namespace)
        self.idle.clear()

    async def _work(self, namespace: str) -> None:
        event = self._dirty[namespace]
        while True:
            await event.wait()
            await asyncio.sleep(self.debounce)
            event.clear()
            try:
                converged = await self.reconcile(namespace)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile of namespace %s failed", namespace)
                converged = False
            self._schedule_retry(namespace, converged)
            if not event.is_set():
                self._busy.discard(namespace)
                if not self._busy:
                    self.idle.set()

    async def settled(self) -> None:
        """Return once no namespace is marked or reconciling (a retry due later does not count)."""
        await self.idle.wait()

    def _schedule_retry(self, namespace: str, converged: bool) -> None:
        handle = self._retries.pop(namespace, None)
        if handle is not None:
            handle.cancel()
        if converged:
            self._failures.pop(namespace, None)
            return
        n = self._failures.get(namespace, 0)
        self._failures[namespace] = n + 1
        delay = RETRY_DELAYS[min(n, len(RETRY_DELAYS) - 1)]
        self._retries[namespace] = asyncio.get_running_loop().call_later(delay, self.mark, namespace)

    async def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        for _, later in self._later.values():
            later.cancel()
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

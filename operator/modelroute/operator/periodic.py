"""A loop over namespaces every few seconds, beside the reconciler (quota watch, quota rebalance).

Started from a kopf handler (so Events posted from it go through kopf's poster); one namespace's
failure is logged and the others still run; ``close`` cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, each: Callable[[str], Awaitable[None]], namespaces: Callable[[], Iterable[str]],
                 interval: float) -> None:
        self.name, self.each, self.namespaces, self.interval = name, each, namespaces, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start (idempotent; interval <= 0: never)."""
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for ns in list(self.namespaces()):
                try:
                    await self.each(ns)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s of namespace %s failed", self.name, ns)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

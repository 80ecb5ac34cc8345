"""When did each ModelRoute change? The clock behind the convergence histogram.

A change is a new uid/generation or a deletion seen on the watch (not the initial listing
after a restart). It is settled when every reachable sidecar pod of its namespace serves the
config it should; the elapsed time is the convergence time. In memory on purpose: it is a
measurement, never a source of truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ChangeClock:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[str, tuple[str | None, int | None]] = {}  # key -> (uid, generation)
        self._pending: dict[str, float] = {}  # key -> time of the oldest unsettled change

    def observe(self, key: str, uid: str | None, generation: int | None, *, deleted: bool, initial: bool) -> None:
        if deleted:
            self._seen.pop(key, None)
            self._pending.setdefault(key, self.clock())
            return
        sig = (uid, generation)
        if self._seen.get(key) != sig:
            self._seen[key] = sig
            if not initial:
                self._pending.setdefault(key, self.clock())

    def forget(self, key: str) -> None:
        """The change cannot converge (invalid spec): stop timing it."""
        self._pending.pop(key, None)

    def settle(self, namespace: str) -> list[float]:
        """All pending changes of ``namespace`` converged now: their elapsed times."""
        now = self.clock()
        done = [k for k in self._pending if k.split("/", 1)[0] == namespace]
        return [now - self._pending.pop(k) for k in done]

    def pending(self, namespace: str) -> list[str]:
        return [k for k in self._pending if k.split("/", 1)[0] == namespace]

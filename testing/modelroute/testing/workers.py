"""Background load for end-to-end tests: one daemon thread per pod, stopped with the ``with`` block.

The node tests, the rollout tests and the quota test each send requests through every pod
while they watch the cluster; they differ only in what one thread does, so that is all a
subclass writes (``work``). A worker loops until ``self.stopping`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Generic, Self, TypeVar

W = TypeVar("W")


class Workers(Generic[W]):
    """Runs ``work(item)`` on its own daemon thread for every item while the ``with`` block runs."""

    join_timeout = 15.0  # seconds each thread gets to finish its request after the block ends

    def __init__(self, items: Iterable[W]) -> None:
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._threads = [threading.Thread(target=self.work, args=(item,), daemon=True) for item in items]

    def work(self, item: W) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for t in self._threads:
            t.join(timeout=self.join_timeout)

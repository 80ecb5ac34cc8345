"""A manual clock for the limiter and cache tests: time moves only when the test says so."""

from __future__ import annotations

import asyncio


class FakeClock:
    def __init__(self, start: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self.now = start
        self._wall_offset = wall - start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def __call__(self) -> float:  # the cache takes a plain callable
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    @property
    def sleeping(self) -> int:
        return sum(1 for _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward and let every sleeper that is due run."""
        self.now += seconds
        due = [f for t, f in self._sleepers if t <= self.now and not f.done()]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self.now and not f.done()]
        for f in due:
            f.set_result(None)
        for _ in range(3):
            await asyncio.sleep(0)

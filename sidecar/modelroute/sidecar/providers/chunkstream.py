"""An adapter's stream of chunks that also says which chunks arrived together, so the relay writes them in one send.

Under load one socket read often carries several events (at 500 concurrent streams, ten or
more). Relayed chunk by chunk, each went through every layer of async generators, the idle
watch and its own ``write`` (a ``send`` system call each). ``ChunkStream`` keeps the chunks of
one read together: ``batch()`` hands over all of them at once (``routing.stream`` relays them
as one write), while ``async for`` still gives them one by one (``head_of``, tests, any stage
that wraps the stream). Nothing waits to fill a batch: a batch is what is already here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Generator
from typing import Any

Json = dict[str, Any]


class ChunkStream:
    """The chunks of ``batches`` (an async generator of non-empty lists: the chunks of one read each).

    ``async for`` yields them one at a time; ``batch()`` returns those already here (the rest of
    the current read's, else the next read's). Both draw from the same place, in order.
    ``aclose()`` closes ``batches`` (dropping the upstream connection if it is still open).
    """

    __slots__ = ("_batches", "_buf", "_i")

    def __init__(self, batches: AsyncGenerator[list[Json], None]) -> None:
        self._batches = batches
        self._buf: list[Json] = []
        self._i = 0  # the next chunk of _buf to hand over

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Json:
        if self._i >= len(self._buf):
            self._buf = await anext(self._batches)  # StopAsyncIteration at the end
            self._i = 0
        chunk = self._buf[self._i]
        self._i += 1
        return chunk

    def ready(self) -> bool:
        """Whether chunks are here already (``batch()`` returns them without waiting)."""
        return self._i < len(self._buf)

    def batch(self) -> Awaitable[list[Json]]:
        """The chunks already here, else (waiting for them) those of the next read; never empty.
        Raises ``StopAsyncIteration`` at the end.

        Waiting, this is the generator's own ``anext``: no coroutine frame of its own between the
        relay and the read, which every read would pass through twice (suspending, resuming)."""
        buf, i = self._buf, self._i
        if i < len(buf):
            self._buf, self._i = [], 0
            return _Here(buf[i:] if i else buf)
        return anext(self._batches)

    async def aclose(self) -> None:
        await self._batches.aclose()


class _Here:
    """An awaitable of a value that is already here (``batch`` without waiting)."""

    __slots__ = ("value",)

    def __init__(self, value: list[Json]) -> None:
        self.value = value

    def __await__(self) -> Generator[None, None, list[Json]]:
        return self.value
        yield  # a generator: awaiting it returns at once

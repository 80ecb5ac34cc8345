"""The per-chunk machinery of a relayed stream: the SSE reader and the idle watch."""

from __future__ import annotations

import asyncio

import pytest

from modelroute.sidecar.providers.sse import SseReader
from modelroute.sidecar.routing.stream import IdleWatch

WIRE = (
    b": a comment\n\n"
    b"event: content_block_delta\r\ndata: {\"a\":1}\r\n\r\n"
    b"data: {\"b\":2}\n\n"
    b"id: 7\ndata: line one\ndata:line two\n\n"
    b"retry: 10\n\n\n\n"
    b"data: [DONE]\r\r"
    b"data: {\"tail\":true}\n"
)
EVENTS = ['{"a":1}', '{"b":2}', "line one\nline two", "[DONE]", '{"tail":true}']


def read(pieces: list[bytes]) -> list[str]:
    r = SseReader()
    out = [e for p in pieces for e in r.feed(p)]
    return out + r.end()


def test_sse_events_whole() -> None:
    assert read([WIRE]) == EVENTS


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_sse_events_do_not_depend_on_how_the_bytes_were_read(size: int) -> None:
    assert read([WIRE[i:i + size] for i in range(0, len(WIRE), size)]) == EVENTS


def test_sse_split_at_every_position() -> None:
    for cut in range(1, len(WIRE)):
        assert read([WIRE[:cut], WIRE[cut:]]) == EVENTS, cut


def test_sse_reader_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        SseReader().feed(b"data: \xff\xfe\n\n")


async def test_idle_watch_cancels_a_wait_longer_than_its_limit() -> None:
    watch = IdleWatch(0.05)
    watch.arm()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.Event().wait()
    assert watch.expired()
    watch.close()
    await asyncio.sleep(0)  # the task is usable again: the cancellation was taken back


async def test_idle_watch_measures_each_wait_not_the_stream() -> None:
    watch = IdleWatch(0.1)
    for _ in range(6):  # 0.24 s in all, each wait well inside 0.1 s
        watch.arm()
        await asyncio.sleep(0.04)
        watch.disarm()
    await asyncio.sleep(0.25)  # the consumer is busy (writing to a slow app): not a wait for a chunk
    watch.arm()
    await asyncio.sleep(0.02)
    watch.disarm()
    assert not watch.expired()
    watch.close()


async def test_a_cancellation_from_elsewhere_is_not_an_idle_timeout() -> None:
    watch = IdleWatch(5.0)
    started = asyncio.Event()

    async def waiting() -> bool:
        watch.arm()
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return watch.expired()
        return True

    task = asyncio.create_task(waiting())
    await started.wait()
    task.cancel()
    assert await task is False
    watch.close()

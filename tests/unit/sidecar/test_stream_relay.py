"""The per-chunk machinery of a relayed stream: the SSE reader and the idle watch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from modelroute.sidecar.providers.idle import IdleWatch
from modelroute.sidecar.providers.sse import SseReader

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


class FakeClock:
    """An ``IdleWatch`` clock whose time moves only when the test says (``advance``): no sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Timer]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(callback)
        self.timers.append((when, timer))
        return timer

    def pending(self) -> list[float]:
        return sorted(when for when, t in self.timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every timer that falls due (in order, as a loop would)."""
        end = self.now + seconds
        while True:
            due = [(when, t) for when, t in self.timers if when <= end and not t.cancelled]
            if not due:
                break
            when, timer = min(due, key=lambda d: d[0])
            self.timers.remove((when, timer))
            self.now = max(self.now, when)
            timer.callback()
        self.now = end


class Timer:
    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def waiting_task(watch: IdleWatch) -> asyncio.Task[bool]:
    """A task that arms ``watch`` and waits for a chunk that never comes; True if the watch ended the wait."""
    armed = asyncio.Event()

    async def wait() -> bool:
        watch.arm()
        armed.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return watch.expired()
        return False

    task = asyncio.create_task(wait())
    await armed.wait()
    return task


async def test_idle_watch_cancels_a_wait_longer_than_its_limit() -> None:
    clock = FakeClock()
    watch = IdleWatch(5.0, clock)
    task = await waiting_task(watch)
    clock.advance(4.999)
    await asyncio.sleep(0)
    assert not task.done()  # within the limit: still waiting
    clock.advance(0.001)
    assert await task is True  # cancelled by the watch, at the wait's deadline
    assert task.cancelling() == 0  # the cancellation was taken back: the task may go on
    assert clock.pending() == []
    watch.close()


async def test_idle_watch_measures_each_wait_not_the_stream() -> None:
    clock = FakeClock()
    watch = IdleWatch(0.1, clock)
    for _ in range(6):  # 0.24 s in all, each wait well inside 0.1 s
        watch.arm()
        clock.advance(0.04)
        watch.disarm()
    clock.advance(0.25)  # the consumer is busy (writing to a slow app): not a wait for a chunk
    watch.arm()
    clock.advance(0.02)
    watch.disarm()
    assert not watch.expired()
    assert len(clock.pending()) == 1  # one timer per stream, never one per chunk
    watch.close()
    assert clock.pending() == []


async def test_idle_watch_reschedules_at_the_current_waits_deadline() -> None:
    clock = FakeClock()
    watch = IdleWatch(1.0, clock)
    watch.arm()                       # t=0: the timer is set for t=1
    assert clock.pending() == [1.0]
    clock.advance(0.5)
    watch.disarm()
    clock.advance(0.3)
    watch.arm()                       # t=0.8: this wait may last until t=1.8
    clock.advance(0.2)                # the timer fires at t=1 and moves itself, no cancellation
    assert clock.pending() == [pytest.approx(1.8)]
    assert not watch.expired()
    watch.disarm()
    clock.advance(1.0)                # fired at t=1.8 while not waiting: re-armed a full period on
    assert clock.pending() == [pytest.approx(2.8)]
    assert not watch.expired()
    watch.close()


async def test_idle_watch_expires_a_wait_begun_after_idle_time() -> None:
    clock = FakeClock()
    watch = IdleWatch(1.0, clock)
    task = await waiting_task(watch)  # armed at t=0
    await asyncio.sleep(0)
    watch.disarm()                    # (a chunk came)
    clock.advance(0.9)
    watch.arm()                       # the next wait, from t=0.9: due at 1.9, not at the stream's 1.0
    clock.advance(0.2)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.8)
    assert await task is True
    watch.close()


async def test_idle_watch_uses_the_running_loop_by_default() -> None:
    watch = IdleWatch(30.0)
    watch.arm()
    assert watch._clock is asyncio.get_running_loop()
    watch.disarm()
    watch.close()


async def test_a_cancellation_from_elsewhere_is_not_an_idle_timeout() -> None:
    clock = FakeClock()
    watch = IdleWatch(5.0, clock)
    task = await waiting_task(watch)
    task.cancel()
    assert await task is False  # not the watch's: the caller's cancellation stands
    assert clock.pending() == [5.0]
    watch.close()
    assert clock.pending() == []

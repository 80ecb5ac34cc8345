"""A live stream that already has its first chunk: what ``router.open_stream`` returns.

Streams fall back only until their first substantive chunk (``head``); after it, a failure
is raised from the iteration as ``UpstreamError`` and the attempt and request are reported
when the stream ends (``StreamingCompletion._end``), whichever way it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.errors import client_error
from modelroute.sidecar.routing.call import OK, OUTCOME_CANCELLED, OUTCOME_STREAM_ERROR, Call
from modelroute.sidecar.translate.errors import TranslationError

if TYPE_CHECKING:
    from modelroute.sidecar.routing.runtime import TargetRuntime

Json = dict[str, Any]


def as_upstream(exc: BaseException, timeout: float) -> UpstreamError:
    """Any failure of an attempt as the ``UpstreamError`` the attempt loop classifies."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, TranslationError):  # the request cannot be expressed for this provider
        return client_error(400, str(exc), "invalid_request_error")
    if isinstance(exc, TimeoutError):
        return UpstreamError(FailureKind.TIMEOUT, f"no answer within {timeout:.3g}s")
    # An adapter bug must not take the request down with a stack trace: treat as garbage.
    return UpstreamError(FailureKind.BAD_RESPONSE, f"adapter failed: {type(exc).__name__}")


class StreamingCompletion:
    """A stream that already has its first chunk (so fallback was still possible until then).

    Iterate it with ``async for``: it yields ``first`` (and any chunks held back with it,
    see ``_head``) and then every further ``chat.completion.chunk`` dict. A failure after the first chunk is raised from the
    iteration as ``UpstreamError`` (end the app's stream with an error event, never a clean
    end). If the app goes away, call ``aclose()`` (safe to call twice; also done at the end).
    ``target`` answered; ``attempts`` lists every attempt including the one streaming.
    """

    def __init__(
        self, call: Call, tr: TargetRuntime, head: list[Json], rest: AsyncIterator[Json], idle_timeout: float,
        t0: float, want_usage: bool,
    ) -> None:
        self.first = head[0]
        self._head = head
        self.target = tr.name
        self.attempts = call.attempts
        self._call = call
        self._tr = tr
        self._rest = rest
        self._idle = idle_timeout
        self._t0 = t0
        self._want_usage = want_usage
        self._usage: Json | None = None
        self._done = False
        self._gen: AsyncGenerator[Json, None] | None = None
        self._held = 0  # head chunks still to be yielded

    def __aiter__(self) -> AsyncIterator[Json]:
        if self._gen is None:
            self._gen = self._iterate()
        return self._gen

    async def _iterate(self) -> AsyncGenerator[Json, None]:
        watch = IdleWatch(self._idle)
        try:
            held = [c for c in map(self._filter, self._head) if c is not None]
            self._held = len(held)
            for c in held:
                self._held -= 1
                yield c
            rest = self._rest
            while True:
                try:
                    watch.arm()
                    chunk = await anext(rest)
                    watch.disarm()  # (a failure ends the iteration: the watch is closed below)
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    if not watch.expired():
                        raise
                    raise self._failed(TimeoutError()) from None
                except Exception as exc:
                    raise self._failed(exc) from None
                out = self._filter(chunk)
                if out is not None:
                    yield out
            self._end(OK, 200, "", OK)
        finally:
            watch.close()
            if not self._done:  # consumer stopped early (app went away) or was cancelled
                self._end(OK, 200, "closed by client", OUTCOME_CANCELLED)
            await aclose_quietly(self._rest)

    def buffered(self) -> bool:
        """Whether the next chunk is already here (held back with the first): a consumer may
        write the chunks it has so far together with it, in one send."""
        return self._held > 0

    def _failed(self, exc: BaseException) -> UpstreamError:
        """A failure after the first chunk: reported, the breaker told, raised to the consumer."""
        err = as_upstream(exc, self._idle)
        self._end(err.kind.value, err.status, err.message, OUTCOME_STREAM_ERROR)
        self._tr.breaker.record_failure()
        return err

    def _filter(self, chunk: Json) -> Json | None:
        """Record usage; hide the usage the router asked for on the app's behalf."""
        usage = chunk.get("usage")
        if usage is None:
            return chunk
        if isinstance(usage, dict):
            self._usage = usage
        if self._want_usage:
            return chunk
        if not chunk.get("choices"):
            return None
        return {k: v for k, v in chunk.items() if k != "usage"}

    def _end(self, outcome: str, status: int | None, reason: str, request_outcome: str) -> None:
        if self._done:
            return
        self._done = True
        self._call.record(self._tr, outcome, status, reason, time.perf_counter() - self._t0, self._usage,
                          self.first.get("model"), True)
        self._call.finish(self._tr.name, request_outcome, True)

    @property
    def usage(self) -> Json | None:
        """The usage the provider reported for this stream (known once it ended)."""
        return self._usage

    async def aclose(self) -> None:
        """Stop the stream and release the upstream connection."""
        if not self._done:
            self._end(OK, 200, "closed by client", OUTCOME_CANCELLED)
        if self._gen is not None:
            with contextlib.suppress(RuntimeError):  # being iterated by another task: it ends itself
                await self._gen.aclose()
        await aclose_quietly(self._rest)


class Clock(Protocol):
    """Where an ``IdleWatch`` reads the time and schedules its timer: the running loop, or a test's fake."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class IdleWatch:
    """The idle timeout of a live stream: each wait for a chunk (``arm`` .. ``disarm``) may last
    at most ``seconds``; a longer one is cancelled and ``expired()`` says why.

    What ``asyncio.timeout`` around every ``anext`` did, without a timer armed and cancelled
    per chunk (at 200 chunks a second per stream that was a tenth of the relay's CPU): one
    timer per stream that, when it fires, re-arms itself at the wait's own deadline if the
    current wait has not lasted ``seconds`` yet. Waits while the app is being written to do
    not count (the consumer holds the generator then). ``clock``: the running loop unless a
    test passes a fake one (time and timers it moves itself).
    """

    __slots__ = ("_cancelling", "_clock", "_expired", "_handle", "_since", "_task", "seconds")

    def __init__(self, seconds: float, clock: Clock | None = None) -> None:
        self.seconds = seconds
        self._clock = clock
        self._task: asyncio.Task[Any] | None = None
        self._handle: Cancellable | None = None
        self._since: float | None = None  # when the current wait began (None: not waiting)
        self._expired = False
        self._cancelling = 0

    def arm(self) -> None:
        clock = self._clock
        if clock is None or self._task is None:
            if clock is None:
                clock = self._clock = asyncio.get_running_loop()
            self._task = asyncio.current_task()
        self._since = now = clock.time()
        if self._handle is None and self._task is not None:
            self._cancelling = self._task.cancelling()
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
            self._task.cancel()
            return
        self._handle = self._clock.call_at((since if since is not None else now) + self.seconds, self._check)

    def expired(self) -> bool:
        """Whether the watch cancelled the wait (the cancellation is then taken back)."""
        if not self._expired or self._task is None:
            return False
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def aclose_quietly(it: AsyncIterator[Json]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):  # closing a broken stream must not mask the outcome
            await close()


def _substantive(chunk: Json) -> bool:
    """Does this chunk tell the app anything (text, tool call, finish, usage), beyond "assistant"?"""
    if chunk.get("usage"):
        return True
    for c in chunk.get("choices") or ():
        if c.get("finish_reason"):
            return True
        d = c.get("delta") or {}
        if d.get("content") or d.get("tool_calls") or d.get("refusal") or d.get("function_call"):
            return True
    return False


async def head_of(it: AsyncIterator[Json]) -> list[Json]:
    """The chunks up to and including the first substantive one.

    Providers open a stream with an empty "role: assistant" chunk (Anthropic's
    ``message_start``) and may still fail right after it (``overloaded_error``). Holding
    such chunks back until real content arrives keeps fallback possible for longer, and
    costs the app nothing (no information was delayed). At most ``MAX_HEAD`` are held.
    """
    head = [await anext(it)]
    while not _substantive(head[-1]) and len(head) < MAX_HEAD:
        try:
            head.append(await anext(it))
        except StopAsyncIteration:
            break
    return head


MAX_HEAD = 8

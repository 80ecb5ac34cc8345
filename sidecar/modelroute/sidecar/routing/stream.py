"""A live stream that already has its first chunk: what ``router.open_stream`` returns.

Streams fall back only until their first substantive chunk (``head``); after it, a failure
is raised from the iteration as ``UpstreamError`` and the attempt and request are reported
when the stream ends (``StreamingCompletion._end``), whichever way it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.errors import client_error
from modelroute.sidecar.providers.idle import IdleWatch
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
    see ``head_of``) and then every further ``chat.completion.chunk`` dict; or with ``batches()``,
    the same chunks in the groups that arrived together. A failure after the first chunk is raised from the
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
        self._gen: AsyncGenerator[list[Json], None] | None = None

    def __aiter__(self) -> AsyncIterator[Json]:
        return _one_by_one(self.batches())

    def batches(self) -> AsyncIterator[list[Json]]:
        """The chunks in the groups they arrived in (never empty): the held-back head with whatever
        came with it, then each upstream read's chunks (one each from an upstream that does not say,
        see ``providers.chunkstream``). A relay writes each group in one send; nothing waits to fill one."""
        if self._gen is None:
            self._gen = self._iterate()
        return self._gen

    async def _iterate(self) -> AsyncGenerator[list[Json], None]:
        watch = IdleWatch(self._idle)
        try:
            rest = self._rest
            batch_of = getattr(rest, "batch", None)  # a ChunkStream: the chunks of one read at once
            head = self._head
            if batch_of is not None and rest.ready():  # type: ignore[attr-defined]  # more of the head's read
                head = head + await batch_of()
            out = self._kept(head)
            if out:
                yield out
            while True:
                try:
                    watch.arm()
                    batch = await batch_of() if batch_of is not None else [await anext(rest)]
                    watch.disarm()  # (a failure ends the iteration: the watch is closed below)
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    if not watch.expired():
                        raise
                    raise self._failed(TimeoutError()) from None
                except Exception as exc:
                    raise self._failed(exc) from None
                out = self._kept(batch)
                if out:
                    yield out
            self._end(OK, 200, "", OK)
        finally:
            watch.close()
            if not self._done:  # consumer stopped early (app went away) or was cancelled
                self._end(OK, 200, "closed by client", OUTCOME_CANCELLED)
            await aclose_quietly(self._rest)

    def _kept(self, batch: list[Json]) -> list[Json]:
        """``batch`` as relayed (``_filter``); the same list when nothing in it carries usage."""
        for c in batch:
            if c.get("usage") is not None:
                return [out for out in map(self._filter, batch) if out is not None]
        return batch

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


async def _one_by_one(batches: AsyncIterator[list[Json]]) -> AsyncGenerator[Json, None]:
    async for batch in batches:
        for chunk in batch:
            yield chunk


async def aclose_quietly(it: AsyncIterator[Any]) -> None:
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

"""The routing loop: try a route's targets in order, with retries, backoff, breakers and one deadline.

Policy lives in pure helpers (``backoff``, ``breaker``, ``FailureKind.falls_back``); this
module is the one async loop that applies it:

* targets in order; on a target, up to ``retry.attempts`` attempts with full-jitter backoff
  (a ``retry-after`` is honoured, capped by ``backoff.maxMs``); a backoff that would cross
  the deadline is not slept: the loop moves on to the next target instead;
* a target whose breaker is open is skipped at once (attempt outcome ``circuit_open``);
* ``CLIENT`` failures end the request (``RouteFailed(client_error=...)``), every other kind
  falls back;
* one deadline (``spec.timeoutSeconds``) across everything; each attempt gets
  ``min(target.timeoutSeconds, time left)``; ``DeadlineExceeded`` when it passes;
* streams fall back only until the first chunk: ``open_stream`` returns once a target
  produced one, and a later failure is raised from the iterator as ``UpstreamError``.

Every attempt is reported to ``Observer.on_attempt`` and every request once to
``Observer.on_request``; request outcomes are ``ok``, ``client_error``, ``exhausted``
(all targets failed), ``deadline``, ``stream_error`` (failed after the first chunk) and
``cancelled`` (the app went away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from modelroute.sidecar.errors import Attempt, DeadlineExceeded, FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.providers.errors import client_error
from modelroute.sidecar.routing.backoff import backoff_delay
from modelroute.sidecar.translate.chat import wants_usage, with_usage
from modelroute.sidecar.translate.errors import TranslationError

if TYPE_CHECKING:
    from modelroute.sidecar.pipeline.plan import RoutePlan
    from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime

Json = dict[str, Any]
log = logging.getLogger(__name__)

OK = "ok"
_EPSILON = 0.002  # seconds: less than this left of the deadline counts as none (timer granularity)
OUTCOME_CLIENT = "client_error"
OUTCOME_EXHAUSTED = "exhausted"
OUTCOME_DEADLINE = "deadline"
OUTCOME_STREAM_ERROR = "stream_error"
OUTCOME_CANCELLED = "cancelled"


@dataclass
class Completion:
    """A non-streaming answer: the ``chat.completion`` dict, who answered, and every attempt made."""

    response: Json
    target: str
    attempts: list[Attempt]


class _Deadline(Exception):
    """Internal: the route's deadline passed."""


@dataclass
class _Call:
    """Bookkeeping of one inbound request across its attempts."""

    route: RouteRuntime
    deadline: float  # loop.time() value
    started: float = field(default_factory=time.perf_counter)
    attempts: list[Attempt] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    def record(
        self, tr: TargetRuntime, outcome: str, status: int | None, reason: str, seconds: float, usage: Json | None,
        response_model: str | None = None, streamed: bool = False,
    ) -> None:
        self.attempts.append(Attempt(tr.name, outcome, status, reason, seconds * 1000.0))
        try:
            self.route.observer.on_attempt(self.route.name, tr.name, outcome, status, seconds, usage)
            if self.route.tracer is not None:
                self.route.tracer.attempt_ended(self.route, tr, outcome, status, seconds, usage, response_model, streamed)
        except Exception:  # a stats bug must not fail the request
            log.exception("observer failed on an attempt of route %s", self.route.name)

    def finish(self, target: str | None, outcome: str, streamed: bool) -> None:
        try:
            self.route.observer.on_request(
                self.route.name, target, outcome, time.perf_counter() - self.started, streamed
            )
        except Exception:
            log.exception("observer failed on a request of route %s", self.route.name)


def _new_call(route: RouteRuntime) -> _Call:
    return _Call(route, asyncio.get_running_loop().time() + route.spec.timeout_seconds)


def _attempt_timeout(call: _Call, tr: TargetRuntime) -> tuple[float, bool]:
    """(seconds for this attempt, whether the route deadline is what bounds it)."""
    remaining = call.remaining()
    if remaining < _EPSILON:
        raise _Deadline
    own = tr.target.timeout_seconds
    if own is not None and own < remaining:
        return own, False
    return remaining, True


@contextlib.contextmanager
def _ending(call: _Call, streamed: bool) -> Iterator[None]:
    """How the attempt loop of either entry point ends early: the deadline, or the app went away."""
    try:
        yield
    except _Deadline:
        call.finish(None, OUTCOME_DEADLINE, streamed)
        raise DeadlineExceeded(call.attempts) from None
    except asyncio.CancelledError:
        call.finish(None, OUTCOME_CANCELLED, streamed)
        raise


def _give_up(call: _Call, streamed: bool, on_exhausted: Callable[[list[Attempt]], None] | None = None) -> NoReturn:
    """Every target was tried (or skipped): DeadlineExceeded if the deadline is what ended it, else RouteFailed."""
    if call.remaining() < _EPSILON:
        call.finish(None, OUTCOME_DEADLINE, streamed)
        raise DeadlineExceeded(call.attempts)
    call.finish(None, OUTCOME_EXHAUSTED, streamed)
    if on_exhausted is not None:
        on_exhausted(call.attempts)
    raise RouteFailed(call.attempts)


def _as_upstream(exc: BaseException, timeout: float) -> UpstreamError:
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, TranslationError):  # the request cannot be expressed for this provider
        return client_error(400, str(exc), "invalid_request_error")
    if isinstance(exc, TimeoutError):
        return UpstreamError(FailureKind.TIMEOUT, f"no answer within {timeout:.3g}s")
    # An adapter bug must not take the request down with a stack trace: treat as garbage.
    return UpstreamError(FailureKind.BAD_RESPONSE, f"adapter failed: {type(exc).__name__}")



async def _retry_after_failure(
    call: _Call, route: RouteRuntime, tr: TargetRuntime, err: UpstreamError, attempt: int,
    bounded_by_deadline: bool, *, streamed: bool,
) -> bool:
    """The policy after one failed attempt, shared by both entry points: True = retry this
    target; False = move on to the next; raises for a CLIENT error (no fallback) and for a
    timeout at the deadline."""
    if err.kind is FailureKind.CLIENT:
        tr.breaker.record_success()  # the target is healthy; the request is not
        call.finish(tr.name, OUTCOME_CLIENT, streamed)
        raise RouteFailed(call.attempts, client_error=err) from None
    if _spared(tr, err):
        return False
    tr.breaker.record_failure()
    if err.kind is FailureKind.TIMEOUT and bounded_by_deadline and call.remaining() < _EPSILON:
        raise _Deadline from None
    if attempt + 1 >= route.spec.retry.attempts or tr.breaker.is_open:
        return False
    return await _backoff_or_move_on(call, attempt + 1, err)

async def _backoff_or_move_on(call: _Call, retry: int, err: UpstreamError) -> bool:
    """Sleep before retry ``retry`` on the same target; False if that sleep would cross the deadline."""
    delay = backoff_delay(retry, call.route.spec.retry.backoff, retry_after=err.retry_after)
    if delay >= call.remaining():
        return False
    if delay > 0:
        await asyncio.sleep(delay)
    return True


def _usage_of(response: Json) -> Json | None:
    usage = response.get("usage")
    return usage if isinstance(usage, dict) else None


def _spared(tr: TargetRuntime, err: UpstreamError) -> bool:
    """A local-limit refusal or an invalid answer: move to the next target without blaming this one."""
    if not err.kind.spares_breaker:
        return False
    if err.kind is FailureKind.LIMITED:
        tr.breaker.release()       # never called: no verdict
    else:
        tr.breaker.record_success()  # it answered; the answer broke the contract
    return True


async def complete(route: RouteRuntime, request: Json, *, plan: RoutePlan | None = None) -> Completion:
    """Serve one non-streaming chat request on ``route``.

    ``request`` is the app's OpenAI Chat Completions body (``model`` = route name); it is
    not modified. Returns the first successful ``Completion``. Raises ``RouteFailed`` (503
    with ``attempts``; or, when ``client_error`` is set, that upstream 4xx as is),
    ``DeadlineExceeded`` (504). Never raises an SDK exception.
    ``plan`` (default ``route.plan``; None on plain routes) adds the pipeline stages:
    cache, local limits, output contract (``modelroute.sidecar.pipeline.plan``).
    """
    call = _new_call(route)
    plan = plan or route.plan
    if plan is not None:
        hit = plan.lookup(request)
        if hit is not None:
            call.finish(None, OK, False)
            return Completion(hit[0], hit[1], call.attempts)
    with _ending(call, False):
        for tr in route.targets:
            for attempt in range(route.spec.retry.attempts):
                if not tr.breaker.allow():
                    call.record(tr, FailureKind.CIRCUIT_OPEN.value, None, "circuit open", 0.0, None)
                    break
                timeout, bounded_by_deadline = _attempt_timeout(call, tr)
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(timeout):
                        if plan is None:
                            response = await tr.adapter.complete(request, timeout=timeout)
                        else:
                            response = await plan.complete(tr, request, timeout, call.remaining())
                except asyncio.CancelledError:
                    tr.breaker.release()
                    raise
                except Exception as exc:  # every failure becomes an UpstreamError here
                    err = _as_upstream(exc, timeout)
                    call.record(tr, err.kind.value, err.status, err.message, time.perf_counter() - t0, None)
                    if await _retry_after_failure(call, route, tr, err, attempt, bounded_by_deadline, streamed=False):
                        continue
                    break
                tr.breaker.record_success()
                call.record(tr, OK, 200, "", time.perf_counter() - t0, _usage_of(response), response.get("model"))
                call.finish(tr.name, OK, False)
                if plan is not None:
                    plan.store(request, response, tr.name)
                return Completion(response, tr.name, call.attempts)
    _give_up(call, False, plan.failed if plan is not None else None)


# ---- streaming ------------------------------------------------------------------------


class StreamingCompletion:
    """A stream that already has its first chunk (so fallback was still possible until then).

    Iterate it with ``async for``: it yields ``first`` (and any chunks held back with it,
    see ``_head``) and then every further ``chat.completion.chunk`` dict. A failure after the first chunk is raised from the
    iteration as ``UpstreamError`` (end the app's stream with an error event, never a clean
    end). If the app goes away, call ``aclose()`` (safe to call twice; also done at the end).
    ``target`` answered; ``attempts`` lists every attempt including the one streaming.
    """

    def __init__(
        self, call: _Call, tr: TargetRuntime, head: list[Json], rest: AsyncIterator[Json], idle_timeout: float,
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

    def __aiter__(self) -> AsyncIterator[Json]:
        if self._gen is None:
            self._gen = self._iterate()
        return self._gen

    async def _iterate(self) -> AsyncGenerator[Json, None]:
        try:
            for held in self._head:
                out = self._filter(held)
                if out is not None:
                    yield out
            while True:
                try:
                    async with asyncio.timeout(self._idle):
                        chunk = await anext(self._rest)
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = _as_upstream(exc, self._idle)
                    self._end(err.kind.value, err.status, err.message, OUTCOME_STREAM_ERROR)
                    self._tr.breaker.record_failure()
                    raise err from None
                out = self._filter(chunk)
                if out is not None:
                    yield out
            self._end(OK, 200, "", OK)
        finally:
            if not self._done:  # consumer stopped early (app went away) or was cancelled
                self._end(OK, 200, "closed by client", OUTCOME_CANCELLED)
            await _aclose(self._rest)

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
        await _aclose(self._rest)


async def _aclose(it: AsyncIterator[Json]) -> None:
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


async def _head(it: AsyncIterator[Json]) -> list[Json]:
    """The chunks up to and including the first substantive one.

    Providers open a stream with an empty "role: assistant" chunk (Anthropic's
    ``message_start``) and may still fail right after it (``overloaded_error``). Holding
    such chunks back until real content arrives keeps fallback possible for longer, and
    costs the app nothing (no information was delayed). At most ``_MAX_HEAD`` are held.
    """
    head = [await anext(it)]
    while not _substantive(head[-1]) and len(head) < _MAX_HEAD:
        try:
            head.append(await anext(it))
        except StopAsyncIteration:
            break
    return head


_MAX_HEAD = 8


async def open_stream(route: RouteRuntime, request: Json, *, direct: bool = False) -> StreamingCompletion:
    """Start a streaming chat request on ``route``; returns once some target produced its first chunk.

    Same fallback, retry, breaker and deadline rules as ``complete`` up to the first chunk;
    the same exceptions (``RouteFailed``, ``DeadlineExceeded``) are raised before any byte
    needs to reach the app. After the first chunk the route deadline no longer applies:
    each further chunk must arrive within the attempt timeout (target ``timeoutSeconds``,
    else the route's ``timeoutSeconds``), or the iteration raises ``UpstreamError(TIMEOUT)``.
    A route with a ``plan`` hands the request to it first (checked answers and cache hits
    are replayed); ``direct`` is the plan asking for the live stream (its limits still apply).
    """
    plan = route.plan
    if plan is not None and not direct:
        return await plan.open_stream(route, request)
    call = _new_call(route)
    want_usage = wants_usage(request)
    upstream_request = request if want_usage else with_usage(request)
    with _ending(call, True):
        for tr in route.targets:
            for attempt in range(route.spec.retry.attempts):
                if not tr.breaker.allow():
                    call.record(tr, FailureKind.CIRCUIT_OPEN.value, None, "circuit open", 0.0, None)
                    break
                timeout, bounded_by_deadline = _attempt_timeout(call, tr)
                t0 = time.perf_counter()
                it: AsyncIterator[Json] | None = None
                try:
                    async with asyncio.timeout(timeout):
                        if plan is None:
                            it = tr.adapter.stream(upstream_request, timeout=timeout)
                        else:
                            it = plan.stream(tr, upstream_request, timeout, call.remaining())
                        head = await _head(it)
                except asyncio.CancelledError:
                    tr.breaker.release()
                    if it is not None:
                        await _aclose(it)
                    raise
                except Exception as exc:
                    if it is not None:
                        await _aclose(it)
                    if isinstance(exc, StopAsyncIteration):
                        exc = UpstreamError(FailureKind.BAD_RESPONSE, "stream ended before its first chunk")
                    err = _as_upstream(exc, timeout)
                    call.record(tr, err.kind.value, err.status, err.message, time.perf_counter() - t0, None, None, True)
                    if await _retry_after_failure(call, route, tr, err, attempt, bounded_by_deadline, streamed=True):
                        continue
                    break
                tr.breaker.record_success()
                idle = tr.target.timeout_seconds or route.spec.timeout_seconds
                return StreamingCompletion(call, tr, head, it, idle, t0, want_usage)
    _give_up(call, True)

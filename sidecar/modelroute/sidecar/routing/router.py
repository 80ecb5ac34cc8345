"""The routing loop: try a route's targets in order, with retries, backoff, breakers and one deadline.

Policy lives in pure helpers (``backoff``, ``breaker``, ``FailureKind.falls_back``); this
module is the one async loop that applies it, written once for both kinds of request
(``_attempts``; what one attempt does is ``_complete_once`` or ``_open_once``):

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

The loop is the last request stage of every compiled route (``Attempts``); an attempt runs
the target's chain of steps (``call.Step``: limiter, output contract, adapter) compiled with
the route. ``complete`` and ``open_stream`` are the entry points every caller uses (inbound
APIs, tasks, mirror copies, the gate, eval): they open the ``Call`` and run the route's chain.
``embed`` runs embeddings requests through the same loop (``EmbedStep``: the adapter's ``embed``).

Every attempt is reported to ``Observer.on_attempt`` and every request once to
``Observer.on_request``; request outcomes are ``ok``, ``client_error``, ``exhausted``
(all targets failed), ``deadline``, ``stream_error`` (failed after the first chunk) and
``cancelled`` (the app went away).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from modelroute.sidecar.errors import DeadlineExceeded, FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.routing.backoff import backoff_delay
from modelroute.sidecar.routing.call import (
    OK,
    OUTCOME_CANCELLED,
    OUTCOME_CLIENT,
    OUTCOME_DEADLINE,
    OUTCOME_EXHAUSTED,
    Call,
    Completion,
    Step,
)
from modelroute.sidecar.routing.stream import StreamingCompletion, aclose_quietly, as_upstream, head_of
from modelroute.sidecar.translate.chat import wants_usage, with_usage

if TYPE_CHECKING:
    from modelroute.sidecar.output import OutputContract
    from modelroute.sidecar.providers.base import Adapter
    from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime

__all__ = ["OK", "AdapterStep", "Attempts", "Call", "Completion", "EmbedStep", "StreamingCompletion", "complete", "embed", "open_stream"]

Json = dict[str, Any]
T = TypeVar("T")
Hop = tuple["TargetRuntime", Step]                 # a target and its compiled chain of attempt steps
Once = Callable[[Call, Json, Step, float], Awaitable[T]]

_EPSILON = 0.002  # seconds: less than this left of the deadline counts as none (timer granularity)


class _Deadline(Exception):
    """Internal: the route's deadline passed."""


async def complete(route: RouteRuntime, request: Json, *, contract: OutputContract | None = None) -> Completion:
    """Serve one non-streaming chat request on ``route``: run its compiled chain.

    ``request`` is the app's OpenAI Chat Completions body (``model`` = route name); it is
    not modified. Returns the first successful ``Completion``. Raises ``RouteFailed`` (503
    with ``attempts``; or, when ``client_error`` is set, that upstream 4xx as is),
    ``DeadlineExceeded`` (504). Never raises an SDK exception.
    ``contract`` (the task endpoints' labels or schema) replaces the route's output contract:
    every answer is then checked, on the route's ``checked`` chain.
    """
    if contract is None:
        return await route.chain.complete(Call(route, route.contract), request)
    return await route.checked.complete(Call(route, contract if contract.constrains else None), request)


async def embed(route: RouteRuntime, request: Json) -> Completion:
    """Serve one canonical embeddings request (``translate.embeddings``) on ``route``.

    The same attempt loop as ``complete`` (order, breakers, retries, deadline, observer: usage
    and cost in ``/stats``), over each target's adapter only: the chat stages (cache, limiter,
    output contract) do not apply to vectors. The config guarantees every target of a route with
    embedding targets returns one dimension (``api.v1alpha1.embeddings``), so fallback is sound.
    """
    hops = tuple((tr, EmbedStep(tr.adapter)) for tr in route.targets)
    return await Attempts(hops).complete(Call(route, None), request)


async def open_stream(route: RouteRuntime, request: Json) -> StreamingCompletion:
    """Start a streaming chat request on ``route``; returns once some target produced its first chunk.

    Same fallback, retry, breaker and deadline rules as ``complete`` up to the first chunk;
    the same exceptions (``RouteFailed``, ``DeadlineExceeded``) are raised before any byte
    needs to reach the app. After the first chunk the route deadline no longer applies:
    each further chunk must arrive within the attempt timeout (target ``timeoutSeconds``,
    else the route's ``timeoutSeconds``), or the iteration raises ``UpstreamError(TIMEOUT)``.
    The route's chain may answer before the loop (a replayed cache hit, a checked answer).
    """
    return await route.chain.open_stream(Call(route, route.contract), request)


class Attempts:
    """The last request stage of every route: the attempt loop over its targets (``hops``, in order)."""

    __slots__ = ("hops",)

    def __init__(self, hops: tuple[Hop, ...]) -> None:
        self.hops = hops

    async def complete(self, call: Call, request: Json) -> Completion:
        tr, response, t0 = await _attempts(call, request, self.hops, _complete_once, False)
        call.record(tr, OK, 200, "", time.perf_counter() - t0, _usage_of(response), response.get("model"))
        call.finish(tr.name, OK, False)
        return Completion(response, tr.name, call.attempts)

    async def open_stream(self, call: Call, request: Json) -> StreamingCompletion:
        want_usage = wants_usage(request)
        upstream_request = request if want_usage else with_usage(request)
        tr, (it, head), t0 = await _attempts(call, upstream_request, self.hops, _open_once, True)
        idle = tr.target.timeout_seconds or call.route.spec.timeout_seconds
        return StreamingCompletion(call, tr, head, it, idle, t0, want_usage)


class AdapterStep:
    """The last attempt step of every target: its adapter. ``self_bounded``: the adapter's
    ``complete`` keeps to the timeout it is given on its own (``bounds_timeout``, e.g. the
    transport's deadline), so the attempt loop adds no timer of its own."""

    __slots__ = ("adapter", "self_bounded")

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.self_bounded = bool(getattr(adapter, "bounds_timeout", False))

    async def complete(self, call: Call, request: Json, timeout: float) -> Json:  # noqa: ASYNC109
        return await self.adapter.complete(request, timeout=timeout)

    def stream(self, call: Call, request: Json, timeout: float) -> AsyncIterator[Json]:
        return self.adapter.stream(request, timeout=timeout)


class EmbedStep:
    """The attempt step of an embeddings request: the adapter's ``embed``."""

    __slots__ = ("adapter",)

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter

    async def complete(self, call: Call, request: Json, timeout: float) -> Json:  # noqa: ASYNC109
        embed = getattr(self.adapter, "embed", None)
        if embed is None:
            raise UpstreamError(FailureKind.CLIENT, f"target {self.adapter.target.name!r} cannot embed", status=400)
        result: Json = await embed(request, timeout=timeout)
        return result

    def stream(self, call: Call, request: Json, timeout: float) -> AsyncIterator[Json]:
        raise UpstreamError(FailureKind.CLIENT, "embeddings are not streamed", status=400)


async def _complete_once(call: Call, request: Json, step: Step, timeout: float) -> Json:  # noqa: ASYNC109
    return await step.complete(call, request, timeout)


async def _open_once(call: Call, request: Json, step: Step, timeout: float) -> tuple[AsyncIterator[Json], list[Json]]:  # noqa: ASYNC109
    """The target's stream and its head; the stream is closed if no head came."""
    it = step.stream(call, request, timeout)
    try:
        return it, await head_of(it)
    except BaseException as exc:
        await aclose_quietly(it)
        if isinstance(exc, StopAsyncIteration):
            raise UpstreamError(FailureKind.BAD_RESPONSE, "stream ended before its first chunk") from None
        raise


async def _attempts(call: Call, request: Json, hops: tuple[Hop, ...], once: Once[T], streamed: bool) -> tuple[TargetRuntime, T, float]:
    """The attempt loop: (target that answered, what ``once`` returned, when its attempt started).

    Each attempt runs under ``asyncio.timeout``, except a whole answer from a step that bounds
    itself by the timeout it is given (``self_bounded``: a plain adapter, whose transport has that
    deadline already): one timer per attempt instead of two."""
    retries = call.route.spec.retry.attempts
    try:
        for tr, step in hops:
            own_timer = streamed or not getattr(step, "self_bounded", False)
            for attempt in range(retries):
                if not tr.breaker.allow():
                    call.record(tr, FailureKind.CIRCUIT_OPEN.value, None, "circuit open", 0.0, None)
                    break
                timeout, bounded_by_deadline = _attempt_timeout(call, tr)
                t0 = time.perf_counter()
                try:
                    if own_timer:
                        async with asyncio.timeout(timeout):
                            value = await once(call, request, step, timeout)
                    else:
                        value = await once(call, request, step, timeout)
                except asyncio.CancelledError:
                    tr.breaker.release()
                    raise
                except Exception as exc:  # every failure becomes an UpstreamError here
                    err = as_upstream(exc, timeout)
                    call.record(tr, err.kind.value, err.status, err.message, time.perf_counter() - t0, None, None, streamed)
                    if await _retry_after_failure(call, tr, err, attempt, bounded_by_deadline, streamed=streamed):
                        continue
                    break
                tr.breaker.record_success()
                return tr, value, t0
    except _Deadline:  # how the loop ends early: the deadline, or the app went away
        call.finish(None, OUTCOME_DEADLINE, streamed)
        raise DeadlineExceeded(call.attempts) from None
    except asyncio.CancelledError:
        call.finish(None, OUTCOME_CANCELLED, streamed)
        raise
    _give_up(call, streamed)


def _attempt_timeout(call: Call, tr: TargetRuntime) -> tuple[float, bool]:
    """(seconds for this attempt, whether the route deadline is what bounds it)."""
    remaining = call.remaining()
    if remaining < _EPSILON:
        raise _Deadline
    own = tr.target.timeout_seconds
    if own is not None and own < remaining:
        return own, False
    return remaining, True


def _give_up(call: Call, streamed: bool) -> NoReturn:
    """Every target was tried (or skipped): DeadlineExceeded if the deadline is what ended it, else RouteFailed."""
    if call.remaining() < _EPSILON:
        call.finish(None, OUTCOME_DEADLINE, streamed)
        raise DeadlineExceeded(call.attempts)
    call.finish(None, OUTCOME_EXHAUSTED, streamed)
    raise RouteFailed(call.attempts)


async def _retry_after_failure(
    call: Call, tr: TargetRuntime, err: UpstreamError, attempt: int, bounded_by_deadline: bool, *, streamed: bool,
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
    if attempt + 1 >= call.route.spec.retry.attempts or tr.breaker.is_open:
        return False
    return await _backoff_or_move_on(call, attempt + 1, err)

async def _backoff_or_move_on(call: Call, retry: int, err: UpstreamError) -> bool:
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
    """A local-limit refusal, a request that does not fit, or an invalid answer: the next target, this one unblamed."""
    if not err.kind.spares_breaker:
        return False
    if err.status is None and err.kind is not FailureKind.INVALID_OUTPUT:
        tr.breaker.release()       # never called (local limit, window or size pre-check): no verdict
    else:
        tr.breaker.record_success()  # it answered; the answer broke the contract, or the request did not fit
    return True

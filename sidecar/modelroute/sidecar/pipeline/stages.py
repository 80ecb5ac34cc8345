"""The request pipeline's stages and steps: what a compiled route adds around the attempt loop.

A route's chain (compiled once per config by ``compiler.RouteCompiler``, run by
``routing.router.complete`` / ``open_stream`` for every caller):

    [variant pick, at the entry] -> Checked -> Cached -> Attempts (routing.router) -> per target:
                                        [WindowStep ->] LimitedStep -> ContractStep -> AdapterStep

* ``Checked`` (routes with an output contract, and every route's ``checked`` chain): a
  streaming request is served non-streaming, checked and replayed (``Replay``): an invalid
  answer must never reach the app, and a stream cannot be taken back; a request no target
  answered validly is counted ``rejected`` (a 422 for the app, ``server.envelope``);
* ``Cached`` (routes with a cache): a deterministic request answered before is answered again
  with no upstream call; a streaming one is replayed, and a live stream is stored once it
  ended cleanly (``TeeToCache``); absent on the gate's and eval's chains;
* ``WindowStep`` (``windows.py``; targets with a known context window or a ``when`` rule): skips the
  target before any call when the estimated input is outside ``when`` or does not fit the window;
* ``LimitedStep`` (targets with limits): the target's limiter admits the attempt, waits a
  bounded time, or refuses it (``FailureKind.LIMITED``: a fallback with no upstream call that
  spares the breaker); it is corrected from the reported usage and from a ``retry_after``;
* ``ContractStep`` (where answers are checked): the call's contract is requested natively
  where the provider can (``output.apply_contract``), checked, and repaired a bounded number
  of times (``output.complete_valid``); still invalid: ``FailureKind.INVALID_OUTPUT``
  (fallback). A valid answer's text is normalised (the label as configured, compact JSON).

A stage or step is only in a chain when the route needs it: a plain route's chain is the
attempt loop over its adapters, and pays for nothing else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from modelroute.api.v1alpha1.spec import Provider
from modelroute.sidecar.errors import Attempt, FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.output import InvalidOutput, Mode, OutputContract, apply_contract, complete_valid
from modelroute.sidecar.pipeline.cache import (
    ResponseCache,
    cache_key,
    chunks_to_completion,
    completion_to_chunks,
    is_cacheable,
)
from modelroute.sidecar.pipeline.counters import INVALID, REJECTED, REPAIRED, VALID, Ledger
from modelroute.sidecar.pipeline.limits import RateLimited, TargetLimiter, Ticket, estimate_tokens
from modelroute.sidecar.providers.chunkstream import ChunkStream
from modelroute.sidecar.routing.call import OK, Call, Completion, Stage, Step
from modelroute.sidecar.routing.stream import StreamingCompletion, aclose_quietly
from modelroute.sidecar.translate.chat import wants_usage

Json = dict[str, Any]
_NOT_UPSTREAM = ("stream", "stream_options")


# ---- request stages --------------------------------------------------------------------


class Checked:
    """Answers checked against the call's contract: streams replayed from a checked answer; rejections counted."""

    __slots__ = ("inner", "ledger")

    def __init__(self, inner: Stage, ledger: Ledger) -> None:
        self.inner = inner
        self.ledger = ledger

    async def complete(self, call: Call, request: Json) -> Completion:
        try:
            return await self.inner.complete(call, request)
        except RouteFailed as e:  # every target tried: a rejection when some answer broke the contract
            if e.client_error is None and any(a.outcome == FailureKind.INVALID_OUTPUT.value for a in e.attempts):
                self.ledger.output(call.route.name, REJECTED)
            raise

    async def open_stream(self, call: Call, request: Json) -> StreamingCompletion:
        if call.contract is None:
            return await self.inner.open_stream(call, request)
        done = await self.complete(call, {k: v for k, v in request.items() if k not in _NOT_UPSTREAM})
        return Replay(done.response, done.target, done.attempts, wants_usage(request))


class Cached:
    """The route's response cache in front of the attempt loop."""

    __slots__ = ("cache", "include_sampled", "inner", "revision", "temperature", "ttl")

    def __init__(self, inner: Stage, cache: ResponseCache, revision: str, ttl: float, include_sampled: bool,
                 temperature: float | None) -> None:
        self.inner = inner
        self.cache = cache
        self.revision = revision
        self.ttl = ttl
        self.include_sampled = include_sampled
        self.temperature = temperature          # the route's temperature (it wins over the app's)

    def _key(self, call: Call, request: Json) -> str | None:
        if not is_cacheable(request, route_temperature=self.temperature, policy=self.include_sampled):
            return None
        return cache_key(call.route.name, self.revision, request)

    async def complete(self, call: Call, request: Json) -> Completion:
        key = self._key(call, request)
        if key is not None:
            entry = self.cache.get(key)
            if entry is not None:
                call.finish(None, OK, False)
                return Completion(entry.completion, entry.target, call.attempts)
        done = await self.inner.complete(call, request)
        if key is not None:
            self.cache.put(key, done.response, target=done.target, ttl=self.ttl)
        return done

    async def open_stream(self, call: Call, request: Json) -> StreamingCompletion:
        key = self._key(call, request)
        if key is None:
            return await self.inner.open_stream(call, request)
        entry = self.cache.get(key)
        if entry is not None:
            call.finish(None, OK, True, seconds=0.0)
            return Replay(entry.completion, entry.target, [], wants_usage(request))
        return TeeToCache(await self.inner.open_stream(call, request), self.cache, key, self.ttl)


# ---- attempt steps ---------------------------------------------------------------------


@dataclass
class InvalidAnswers(UpstreamError):
    """``FailureKind.INVALID_OUTPUT`` with the tokens its tries spent (for the limiter)."""

    usage: Json | None = None


class ContractStep:
    """Check (and repair) the target's answers against the call's contract; unchecked when the call has none."""

    __slots__ = ("inner", "ledger", "provider")

    def __init__(self, inner: Step, provider: Provider, ledger: Ledger) -> None:
        self.inner = inner
        self.provider = provider
        self.ledger = ledger

    async def complete(self, call: Call, request: Json, timeout: float) -> Json:  # noqa: ASYNC109
        contract = call.contract
        if contract is None:
            return await self.inner.complete(call, request, timeout)

        async def once(req: Json) -> Json:
            return await self.inner.complete(call, req, timeout)

        try:
            valid = await complete_valid(once, apply_contract(request, contract, self.provider), contract)
        except InvalidOutput as e:
            self.ledger.output(call.route.name, INVALID)
            raise InvalidAnswers(FailureKind.INVALID_OUTPUT, e.message, usage=e.usage) from None
        self.ledger.output(call.route.name, VALID if valid.tries == 1 else REPAIRED)
        return normalised(valid.completion, valid.value, contract, valid.usage)

    def stream(self, call: Call, request: Json, timeout: float) -> AsyncIterator[Json]:
        return self.inner.stream(call, request, timeout)  # checked streams never get here (``Checked`` replays)


class LimitedStep:
    """The target's local limiter around its attempts."""

    __slots__ = ("inner", "ledger", "limiter", "target")

    def __init__(self, inner: Step, limiter: TargetLimiter, ledger: Ledger, target: str) -> None:
        self.inner = inner
        self.limiter = limiter
        self.ledger = ledger
        self.target = target

    async def _admit(self, call: Call, request: Json) -> Ticket:
        limiter = self.limiter
        try:
            return await limiter.acquire(estimate_tokens(request),
                                         max_wait=max(0.0, min(limiter.max_wait, call.remaining() - 0.01)))
        except RateLimited as e:
            self.ledger.limited(call.route.name, self.target)
            raise UpstreamError(FailureKind.LIMITED, str(e), retry_after=e.retry_after) from None

    def _learn(self, err: UpstreamError) -> None:
        if err.retry_after is not None:
            self.limiter.blocked_for(err.retry_after)

    async def complete(self, call: Call, request: Json, timeout: float) -> Json:  # noqa: ASYNC109
        ticket = await self._admit(call, request)
        usage: Json | None = None
        try:
            response = await self.inner.complete(call, request, timeout)
            usage = response.get("usage")
            return response
        except InvalidAnswers as e:
            usage = e.usage
            raise
        except UpstreamError as e:
            self._learn(e)
            raise
        finally:
            self.limiter.settle(ticket, usage)

    def stream(self, call: Call, request: Json, timeout: float) -> ChunkStream:
        return ChunkStream(self._stream(call, request, timeout))

    async def _stream(self, call: Call, request: Json, timeout: float) -> AsyncGenerator[list[Json], None]:  # noqa: ASYNC109
        """The inner stream's chunks in the groups they came in (``ChunkStream``), the usage noted for the settlement."""
        ticket = await self._admit(call, request)
        usage: Json | None = None
        it = self.inner.stream(call, request, timeout)
        batch_of = getattr(it, "batch", None)
        try:
            while True:
                try:
                    batch = await batch_of() if batch_of is not None else [await anext(it)]
                except StopAsyncIteration:
                    break
                for chunk in batch:
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                yield batch
        except UpstreamError as e:
            self._learn(e)
            raise
        finally:
            self.limiter.settle(ticket, usage)
            await aclose_quietly(it)


# ---- answers -------------------------------------------------------------------------------


def normalised(completion: Json, value: Any, contract: OutputContract, usage: Json | None) -> Json:
    """The completion with choice 0's text replaced by what it stands for, and the usage of every try."""
    choices = completion.get("choices") or []
    message = (choices[0].get("message") or {}) if choices else {}
    out = dict(completion)
    if usage is not None:
        out["usage"] = usage
    if value is None or message.get("tool_calls"):
        return out
    if contract.labels is not None and contract.mode is Mode.TEXT:
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    out["choices"] = [{**choices[0], "message": {**message, "content": text}}, *choices[1:]]
    return out



class Replay(StreamingCompletion):
    """A complete answer served as a stream (checked answers, cache hits): same surface as a live stream."""

    def __init__(self, completion: Json, target: str, attempts: list[Attempt], include_usage: bool) -> None:
        self._chunks = completion_to_chunks(completion, include_usage=include_usage)
        self.first = self._chunks[0]
        self.target = target
        self.attempts = attempts
        self._replay_usage = completion.get("usage")

    def batches(self) -> AsyncIterator[list[Json]]:
        return self._replay()

    async def _replay(self) -> AsyncGenerator[list[Json], None]:
        for chunk in self._chunks:
            yield [chunk]  # each chunk its own send, as a live stream's that came one per read

    @property
    def usage(self) -> Json | None:
        return self._replay_usage if isinstance(self._replay_usage, dict) else None

    async def aclose(self) -> None:
        return None


class TeeToCache(StreamingCompletion):
    """A live stream that, once it ended cleanly, stores the answer it added up to."""

    def __init__(self, inner: StreamingCompletion, cache: ResponseCache, key: str, ttl: float) -> None:
        self._inner = inner
        self._cache = cache
        self._key = key
        self._ttl = ttl
        self.first = inner.first
        self.target = inner.target
        self.attempts = inner.attempts

    def batches(self) -> AsyncIterator[list[Json]]:
        return self._tee()

    async def _tee(self) -> AsyncGenerator[list[Json], None]:
        chunks: list[Json] = []
        async for batch in self._inner.batches():
            chunks += batch
            yield batch
        completion = chunks_to_completion(chunks)  # only reached on a clean end: errors propagate
        if self._inner.usage is not None:
            completion["usage"] = self._inner.usage
        self._cache.put(self._key, completion, target=self.target, ttl=self._ttl)

    @property
    def usage(self) -> Json | None:
        return self._inner.usage

    async def aclose(self) -> None:
        await self._inner.aclose()

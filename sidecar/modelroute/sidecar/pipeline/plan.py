"""The request pipeline's per-route plan: output contracts, response cache, local limits, cost.

Why one module: the router stays one loop of retries, breakers and deadlines and calls this
layer through a single per-route object, ``RouteRuntime.plan`` (a ``RoutePlan``). A route
without an output contract, a cache and limits has ``plan = None`` and pays nothing but
that ``None`` check; cost is the one thing every route gets (``counters.CostObserver``).

Per request (``router.complete`` / ``router.open_stream``):

1. cache first (``RoutePlan.lookup``): a deterministic request answered before is answered
   again with no upstream call; a streaming request is replayed (``Replay``);
2. per target, after the breaker: the target's limiter (``RoutePlan.complete`` /
   ``RoutePlan.stream``) admits the request, waits a bounded time, or refuses it:
   ``FailureKind.LIMITED``, a fallback with no upstream call that spares the breaker;
3. the route's output contract: requested natively where the provider can
   (``output.apply_contract``), checked, repaired a bounded number of times
   (``output.complete_valid``); still invalid: ``FailureKind.INVALID_OUTPUT`` (fallback),
   and after the last target a 422 (``server.envelope``). A valid answer's text is
   normalised (the label as configured, compact JSON) so the app gets what it parses;
4. the limiter is corrected from the reported usage; the answer goes into the cache.

A streaming chat request on a route with a contract is served non-streaming upstream,
checked, and replayed as a stream: an invalid answer must never reach the app, and a
stream cannot be taken back. ``Planner`` holds what lives as long as the sidecar (the
limiters, the per-route caches, the ledger) and compiles plans for each new runtime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from modelroute.api.v1alpha1.quota import Limits
from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import Attempt, FailureKind, UpstreamError
from modelroute.sidecar.output import InvalidOutput, Mode, OutputContract, apply_contract, complete_valid
from modelroute.sidecar.pipeline.cache import (
    ResponseCache,
    cache_key,
    chunks_to_completion,
    completion_to_chunks,
    is_cacheable,
)
from modelroute.sidecar.pipeline.cost import PriceTable, target_price
from modelroute.sidecar.pipeline.counters import (
    INVALID,
    REJECTED,
    REPAIRED,
    VALID,
    CostObserver,
    Ledger,
    pressure_logger,
)
from modelroute.sidecar.pipeline.limits import (
    SYSTEM_CLOCK,
    Clock,
    Limiters,
    RateLimited,
    TargetLimiter,
    Ticket,
    estimate_tokens,
)
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.translate.chat import wants_usage

if TYPE_CHECKING:
    from modelroute.sidecar.routing.runtime import RouteRuntime, Runtime, TargetRuntime

Json = dict[str, Any]
log = logging.getLogger(__name__)

_LIMITS = "limits"  # the transport header observer that feeds a target's limiter


@dataclass(eq=False)
class RoutePlan:
    """What the pipeline does for one route (``RouteRuntime.plan``); immutable per runtime."""

    name: str
    revision: str
    ledger: Ledger
    contract: OutputContract | None = None          # None: answers are not checked
    cache: ResponseCache | None = None              # None: no cache
    cache_ttl: float = 300.0
    include_sampled: bool = False
    temperature: float | None = None                # the route's temperature (it wins over the app's)
    limiters: Mapping[str, TargetLimiter] | None = None   # target name -> limiter; None: no limits

    def with_contract(self, contract: OutputContract | None) -> RoutePlan:
        """This plan checking answers against ``contract`` instead (task endpoints' own labels or schema)."""
        return replace(self, contract=contract if contract is not None and contract.constrains else None)

    # -- cache ---------------------------------------------------------------------------
    def _key(self, request: Json) -> str | None:
        if self.cache is None or not is_cacheable(request, route_temperature=self.temperature, policy=self.include_sampled):
            return None
        return cache_key(self.name, self.revision, request)

    def lookup(self, request: Json) -> tuple[Json, str] | None:
        """(completion, target that answered it) from the cache, or None."""
        key = self._key(request)
        if key is None:
            return None
        assert self.cache is not None
        entry = self.cache.get(key)
        return (entry.completion, entry.target) if entry is not None else None

    def store(self, request: Json, completion: Json, target: str) -> None:
        key = self._key(request)
        if key is not None:
            assert self.cache is not None
            self.cache.put(key, completion, target=target, ttl=self.cache_ttl)

    def failed(self, attempts: list[Attempt]) -> None:
        """The request failed on every target: count a rejection when some answer broke the contract."""
        if any(a.outcome == FailureKind.INVALID_OUTPUT.value for a in attempts):
            self.ledger.output(self.name, REJECTED)

    # -- limits --------------------------------------------------------------------------
    async def _admit(self, tr: TargetRuntime, request: Json, remaining: float) -> tuple[TargetLimiter, Ticket] | None:
        limiter = self.limiters.get(tr.name) if self.limiters else None
        if limiter is None:
            return None
        try:
            ticket = await limiter.acquire(estimate_tokens(request), max_wait=max(0.0, min(limiter.max_wait, remaining - 0.01)))
        except RateLimited as e:
            self.ledger.limited(self.name, tr.name)
            raise UpstreamError(FailureKind.LIMITED, str(e), retry_after=e.retry_after) from None
        return limiter, ticket

    @staticmethod
    def _learn(admitted: tuple[TargetLimiter, Ticket] | None, err: UpstreamError) -> None:
        if admitted is not None and err.retry_after is not None:
            admitted[0].blocked_for(err.retry_after)

    # -- one attempt on one target (called by the router inside the attempt's timeout) ---
    async def complete(self, tr: TargetRuntime, request: Json, timeout: float, remaining: float) -> Json:  # noqa: ASYNC109
        admitted = await self._admit(tr, request, remaining)
        usage: Json | None = None
        try:
            if self.contract is None:
                response = await tr.adapter.complete(request, timeout=timeout)
                usage = response.get("usage")
                return response
            return await self._checked(tr, request, timeout, self.contract)
        except InvalidOutput as e:
            usage = e.usage
            self.ledger.output(self.name, INVALID)
            raise UpstreamError(FailureKind.INVALID_OUTPUT, e.message) from None
        except UpstreamError as e:
            self._learn(admitted, e)
            raise
        finally:
            if admitted is not None:
                admitted[0].settle(admitted[1], usage)

    async def _checked(self, tr: TargetRuntime, request: Json, timeout: float, contract: OutputContract) -> Json:  # noqa: ASYNC109
        async def call(req: Json) -> Json:
            return await tr.adapter.complete(req, timeout=timeout)

        valid = await complete_valid(call, apply_contract(request, contract, tr.target.provider), contract)
        self.ledger.output(self.name, VALID if valid.tries == 1 else REPAIRED)
        return normalised(valid.completion, valid.value, contract, valid.usage)

    def stream(self, tr: TargetRuntime, request: Json, timeout: float, remaining: float) -> AsyncIterator[Json]:
        """The target's stream, admitted by its limiter first (the adapter's own iterator without one)."""
        if not self.limiters or tr.name not in self.limiters:
            return tr.adapter.stream(request, timeout=timeout)
        return self._limited_stream(tr, request, timeout, remaining)

    async def _limited_stream(self, tr: TargetRuntime, request: Json, timeout: float, remaining: float) -> AsyncGenerator[Json, None]:  # noqa: ASYNC109
        admitted = await self._admit(tr, request, remaining)
        usage: Json | None = None
        it = tr.adapter.stream(request, timeout=timeout)
        try:
            async for chunk in it:
                if chunk.get("usage"):
                    usage = chunk["usage"]
                yield chunk
        except UpstreamError as e:
            self._learn(admitted, e)
            raise
        finally:
            if admitted is not None:
                admitted[0].settle(admitted[1], usage)
            close = getattr(it, "aclose", None)
            if close is not None:
                await close()

    # -- streaming requests --------------------------------------------------------------
    async def open_stream(self, route: RouteRuntime, request: Json) -> router.StreamingCompletion:
        """A streaming request on this route: checked-and-replayed, replayed from cache, or streamed (and cached)."""
        include_usage = wants_usage(request)
        if self.contract is not None:
            body = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
            done = await router.complete(route, body, plan=self)
            return Replay(done.response, done.target, done.attempts, include_usage)
        key = self._key(request)
        if key is None:
            return await router.open_stream(route, request, direct=True)
        assert self.cache is not None
        entry = self.cache.get(key)
        if entry is not None:
            _observe_hit(route)
            return Replay(entry.completion, entry.target, [], include_usage)
        sc = await router.open_stream(route, request, direct=True)
        return TeeToCache(sc, self.cache, key, self.cache_ttl)


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


def _observe_hit(route: RouteRuntime) -> None:
    try:
        route.observer.on_request(route.name, None, router.OK, 0.0, True)
    except Exception:
        log.exception("observer failed on a cached request of route %s", route.name)


class Replay(router.StreamingCompletion):
    """A complete answer served as a stream (checked answers, cache hits): same surface as a live stream."""

    def __init__(self, completion: Json, target: str, attempts: list[Attempt], include_usage: bool) -> None:
        self._chunks = completion_to_chunks(completion, include_usage=include_usage)
        self.first = self._chunks[0]
        self.target = target
        self.attempts = attempts
        self._replay_usage = completion.get("usage")

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._replay()

    async def _replay(self) -> AsyncGenerator[Json, None]:
        for chunk in self._chunks:
            yield chunk

    @property
    def usage(self) -> Json | None:
        return self._replay_usage if isinstance(self._replay_usage, dict) else None

    async def aclose(self) -> None:
        return None


class TeeToCache(router.StreamingCompletion):
    """A live stream that, once it ended cleanly, stores the answer it added up to."""

    def __init__(self, inner: router.StreamingCompletion, cache: ResponseCache, key: str, ttl: float) -> None:
        self._inner = inner
        self._cache = cache
        self._key = key
        self._ttl = ttl
        self.first = inner.first
        self.target = inner.target
        self.attempts = inner.attempts

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._tee()

    async def _tee(self) -> AsyncGenerator[Json, None]:
        chunks: list[Json] = []
        async for chunk in self._inner:
            chunks.append(chunk)
            yield chunk
        completion = chunks_to_completion(chunks)  # only reached on a clean end: errors propagate
        if self._inner.usage is not None:
            completion["usage"] = self._inner.usage
        self._cache.put(self._key, completion, target=self.target, ttl=self._ttl)

    @property
    def usage(self) -> Json | None:
        return self._inner.usage

    async def aclose(self) -> None:
        await self._inner.aclose()


# ---- compiling plans (once per config) ----------------------------------------------------


def limiter_key(target: Target) -> str:
    """What a provider limits: provider, endpoint, model and key reference (never the key itself)."""
    ref = target.api_key.wire() if target.api_key is not None else {}
    return f"{target.provider.value}:{target.model}@{target.base_url or 'default'}#{json.dumps(ref, sort_keys=True)}"


class Planner:
    """The sidecar-lifetime part: limiters, per-route caches and the ledger; ``compile`` equips a new runtime."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, ledger: Ledger | None = None, prices: PriceTable | None = None) -> None:
        self.ledger = ledger or Ledger()
        self.prices = prices or PriceTable()
        self._users: dict[str, list[str]] = {}          # limiter key -> "route/target" names using it
        self.limiters = Limiters(clock=clock, on_pressure=pressure_logger(lambda key: self._users.get(key, ())))

    def compile(self, runtime: Runtime) -> None:
        """Give every route of ``runtime`` its plan, and cost accounting; point the ledger at this config."""
        self._users = {}
        self.ledger.limiters = {}
        self.ledger.prompt_versions = {}
        for route in runtime.routes.values():
            self._equip(route)
            canary = getattr(route, "canary", None)
            if canary is not None:
                self._equip(canary.route)
                self._equip(canary.mirror_route)

    def _equip(self, route: RouteRuntime) -> None:
        spec = route.spec
        if route.prompt_version is not None:
            self.ledger.prompt_versions[route.name] = route.prompt_version
        inner = route.observer.inner if isinstance(route.observer, CostObserver) else route.observer
        if not isinstance(inner, NullObserver):  # mirrored copies are not the route's traffic
            prices = {tr.name: target_price(tr.target, self.prices) for tr in route.targets}
            route.observer = CostObserver(inner, self.ledger, route.name, prices)
        contract = OutputContract.from_api(spec.output) if spec.output is not None else None
        if contract is not None and not contract.constrains:
            contract = None
        cache: ResponseCache | None = None
        policy = spec.cache
        if policy is not None and policy.enabled:
            cache = self.ledger.caches.get(route.name)
            if cache is None:
                cache = self.ledger.caches[route.name] = ResponseCache(max_entries=policy.max_entries, ttl=policy.ttl_seconds)
            cache.max_entries = policy.max_entries
        limiters: dict[str, TargetLimiter] = {}
        for tr in route.targets:
            limits = tr.target.limits
            if limits is None:
                if not self.limiters.governed(tr.target):
                    continue
                limits = Limits()  # a ProviderQuota's lease alone limits it
            key = limiter_key(tr.target)
            limiter = self.limiters.get(key, requests_per_minute=limits.requests_per_minute,
                                        tokens_per_minute=limits.tokens_per_minute, max_wait=limits.max_wait_ms / 1000,
                                        target=tr.target)
            limiters[tr.name] = limiter
            self._users.setdefault(key, []).append(f"{route.name}/{tr.name}")
            if route.variant != "mirror":
                self.ledger.limiters[(route.name, tr.name)] = limiter
            _report_headers(tr, limiter)
        if contract is None and cache is None and not limiters:
            route.plan = None  # the plain route: the router's hot path is untouched
            return
        route.plan = RoutePlan(
            route.name, route.revision, self.ledger, contract, cache,
            float(policy.ttl_seconds) if policy is not None else 300.0,
            bool(policy.include_sampled) if policy is not None else False,
            spec.params.temperature, limiters or None,
        )

    def plan_for(self, route: RouteRuntime) -> RoutePlan:
        """The route's plan, or a bare one (no cache, no limits) for a task endpoint to add its contract to."""
        return route.plan if route.plan is not None else RoutePlan(route.name, route.revision, self.ledger)


def _report_headers(tr: TargetRuntime, limiter: TargetLimiter) -> None:
    """Let the target's transport feed every response's rate-limit headers to ``limiter``.

    Every adapter sends through a ``providers.transport.Transport``, whose header observers
    see the headers of every answer (errors and streams included) before the body is read.
    The transport, not the adapter, is marked: one transport serves every ``bound`` view of
    its target (other params or prompts, other runtimes) and is hooked once; the limiter of
    a given key is the same object for the sidecar's life, and one target has one limiter key.
    """
    transport = getattr(tr.adapter, "transport", None)
    if transport is None or _LIMITS in transport.observers:
        return

    def observe(headers: Any) -> None:
        try:
            limiter.observe_headers(headers)
        except Exception:  # a strange header must never fail the request
            log.debug("ignoring unreadable rate-limit headers from %s", tr.name, exc_info=True)

    transport.observe_headers(_LIMITS, observe)

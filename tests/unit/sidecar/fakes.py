"""In-memory adapters and a recording observer for router/runtime tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from modelroute.api.v1alpha1.spec import CircuitBreaker, ModelRouteSpec, Params, Target
from modelroute.sidecar.providers.chunkstream import ChunkStream
from modelroute.sidecar.routing.breaker import Breaker
from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime

Json = dict[str, Any]

HANG = "hang"


class Together(list[Any]):
    """In a stream's script: chunks that arrive together (one upstream read): the fake's stream
    is then a ``ChunkStream``, as the real adapters' are."""


def answer(text: str = "hi", model: str = "m") -> Json:
    return {
        "id": "c1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def chunk(text: str | None = None, finish: str | None = None) -> Json:
    delta = {"content": text} if text is not None else {}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk() -> Json:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


class FakeAdapter:
    """Plays a script: one entry per call. An entry is a response dict, an exception to
    raise, ``HANG``, or (for streams) a list of chunks / exceptions / ``HANG``."""

    def __init__(self, target: Target, script: list[Any] | None = None) -> None:
        self.target = target
        self.script = list(script or [])
        self.calls: list[Json] = []
        self.closed = False
        self.hanging = asyncio.Event()  # set when a call reaches ``HANG``

    def _next(self) -> Any:
        return self.script.pop(0) if self.script else answer(self.target.name)

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        self.calls.append(request)
        step = self._next()
        if step == HANG:
            self.hanging.set()
            await asyncio.sleep(3600)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, dict)
        return step

    def stream(self, request: Json, *, timeout: float) -> AsyncIterator[Json]:
        self.calls.append(request)
        step = self._next()
        if isinstance(step, dict):
            step = [chunk(self.target.name), chunk(finish="stop")]
        if any(isinstance(item, Together) for item in step):
            return ChunkStream(self._reads(step))
        return self._one_by_one(step)

    async def _one_by_one(self, step: list[Any]) -> AsyncGenerator[Json, None]:
        async for batch in self._reads(step):
            for item in batch:
                yield item

    async def _reads(self, step: list[Any]) -> AsyncGenerator[list[Json], None]:
        for item in step:
            if item == HANG:
                self.hanging.set()
                await asyncio.sleep(3600)
            if isinstance(item, BaseException):
                raise item
            yield list(item) if isinstance(item, Together) else [item]

    def bound(self, params: Params | None, system: str | None) -> FakeView:
        return FakeView(self, params, system)

    async def aclose(self) -> None:
        self.closed = True


class FakeView:
    """What ``FakeAdapter.bound`` returns: calls go to the adapter (its script, its patches); closing is a no-op."""

    def __init__(self, base: FakeAdapter, params: Params | None, system: str | None) -> None:
        self.base = base
        self.target = base.target
        self.params = params
        self.system = system

    @property
    def closed(self) -> bool:
        return self.base.closed

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        return await self.base.complete(request, timeout=timeout)

    def stream(self, request: Json, *, timeout: float) -> AsyncIterator[Json]:
        return self.base.stream(request, timeout=timeout)

    def bound(self, params: Params | None, system: str | None) -> FakeView:
        return FakeView(self.base, params, system)

    async def aclose(self) -> None:
        return None


@dataclass
class Recorder:
    attempts: list[tuple[str, str, str, int | None, Json | None]] = field(default_factory=list)
    requests: list[tuple[str, str | None, str, bool]] = field(default_factory=list)
    broken: bool = False  # raise from every hook, as a buggy observer would

    def on_attempt(self, route: str, target: str, outcome: str, status: int | None, latency_s: float,
                   usage: Json | None) -> None:
        if self.broken:
            raise RuntimeError("stats bug")
        self.attempts.append((route, target, outcome, status, usage))

    def on_request(self, route: str, target: str | None, outcome: str, latency_s: float, streamed: bool) -> None:
        if self.broken:
            raise RuntimeError("stats bug")
        self.requests.append((route, target, outcome, streamed))


def make_route(
    scripts: dict[str, list[Any]],
    *,
    timeout: float = 5.0,
    attempts: int = 1,
    initial_ms: int = 0,
    max_ms: int = 5000,
    threshold: int = 5,
    open_seconds: float = 30.0,
    target_timeouts: dict[str, float] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[RouteRuntime, dict[str, FakeAdapter], Recorder]:
    target_timeouts = target_timeouts or {}
    spec = ModelRouteSpec.model_validate({
        "route": "classify",
        "targets": [
            {"name": n, "provider": "openai", "model": f"model-{n}", "apiKey": {"env": "K"},
             **({"timeoutSeconds": target_timeouts[n]} if n in target_timeouts else {})}
            for n in scripts
        ],
        "timeoutSeconds": timeout,
        "retry": {"attempts": attempts, "backoff": {"initialMs": initial_ms, "maxMs": max_ms}},
        "circuitBreaker": {"failureThreshold": threshold, "openSeconds": open_seconds},
    })
    adapters = {t.name: FakeAdapter(t, scripts[t.name]) for t in spec.targets}
    cb = CircuitBreaker(failure_threshold=threshold, open_seconds=open_seconds)
    rec = Recorder()
    targets = tuple(
        TargetRuntime(t, adapters[t.name], Breaker(cb, clock) if clock else Breaker(cb)) for t in spec.targets
    )
    return RouteRuntime(spec, "ticket-classifier", targets, rec), adapters, rec

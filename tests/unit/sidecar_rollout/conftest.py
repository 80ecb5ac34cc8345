"""A real sidecar (real runtime build, router and HTTP surface) over scripted in-memory adapters.

The sidecar's adapter factory is swapped so ``Runtime.build`` compiles canaries exactly as in
production while every target answers from memory: ``adapters[target name]`` is the fake to script.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from modelroute.api.config import CanaryServing, SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute, ModelRouteSpec, Params, Target
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.errors import UpstreamError
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.sidecars import SidecarClient, start_sidecar

Json = dict[str, Any]
ENV = {"KEY_A": "sk-test-a", "KEY_B": "sk-test-b"}


class FakeAdapter:
    """Answers ``text`` (default ``label-<model>``) once ``gate`` is set and ``delay`` seconds have passed,
    or raises ``error``."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.text: str | None = None
        self.respond: Callable[[Json], str] | None = None   # per-request answer (wins over ``text``)
        self.delay = 0.0
        self.gate: asyncio.Event | None = None
        self.error: UpstreamError | None = None
        self.calls: list[Json] = []
        self.usage: Json = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}

    def _answer(self, request: Json | None = None) -> str:
        if self.respond is not None and request is not None:
            return self.respond(request)
        return self.text if self.text is not None else f"label-{self.target.model}"

    def bound(self, params: Params | None, system: str | None) -> FakeAdapter:
        return self  # one fake per target: tests script it whatever the route's params and prompt

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        self.calls.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return {"id": "c", "object": "chat.completion", "created": 1, "model": self.target.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self._answer(request)}, "finish_reason": "stop"}],
                "usage": dict(self.usage)}

    async def stream(self, request: Json, *, timeout: float) -> AsyncIterator[Json]:  # noqa: ASYNC109
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        m = self.target.model
        for piece in (self._answer()[:3], self._answer()[3:]):
            yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": m,
                   "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": m,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": m, "choices": [],
               "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}

    async def embed(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        self.calls.append(request)
        if self.error is not None:
            raise self.error
        data = [{"object": "embedding", "index": i, "embedding": [0.5, 0.5]} for i, _ in enumerate(request["input"])]
        return {"object": "list", "data": data, "model": self.target.model,
                "usage": {"prompt_tokens": 4, "total_tokens": 4}}

    async def aclose(self) -> None:
        return None


class FakeAdapters(dict[str, FakeAdapter]):
    """The adapter factory of these sidecars: one scripted fake per target name (kept across rebuilds)."""

    def __call__(self, target: Target, key: Any) -> FakeAdapter:
        a = self.get(target.name)
        if a is None or a.target != target:
            a = self[target.name] = FakeAdapter(target)
        return a


@pytest.fixture
def adapters() -> FakeAdapters:
    return FakeAdapters()


def spec(route: str, target: str, model: str, key: str = "KEY_A", **extra: Any) -> ModelRouteSpec:
    return ModelRouteSpec.model_validate({
        "route": route, "targets": [{"name": target, "provider": "openai", "model": model, "apiKey": {"env": key}}],
        "timeoutSeconds": 5, **extra})


def config(*, weight: int = 0, mirror: int = 0, sticky: str | None = None, run: str = "run.0",
           canary_model: str = "gpt-4.1-mini", with_canary: bool = True, canary_spec: Json | None = None) -> SidecarConfig:
    stable = spec("classify", "old", "gpt-4o-mini")
    routes = [ModelRoute.model_validate({"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
                                         "metadata": {"name": "classifier"}, "spec": stable.wire()})]
    canaries = []
    if with_canary:
        new = spec("classify", "new", canary_model, key="KEY_B", **(canary_spec or {}))
        canaries.append(CanaryServing(route="classify", revision=revision_of(new), run_id=run, spec=new, weight=weight,
                                      mirror=mirror, sticky_header=sticky))
    return SidecarConfig(routes=routes, canaries=canaries)


class Running(SidecarClient):
    async def chat(self, headers: dict[str, str] | None = None, **body: Any) -> tuple[int, dict[str, str], bytes]:
        payload = {"model": "classify", "messages": [{"role": "user", "content": "ticket: refund please"}], **body}
        async with self.http.post(self.sidecar.inbound_url + "/v1/chat/completions", json=payload, headers=headers) as r:
            return r.status, dict(r.headers), await r.read()

    async def task(self, kind: str, headers: dict[str, str] | None = None, **body: Any) -> tuple[int, dict[str, str], Json]:
        """``POST /v1/classify`` or ``/v1/extract`` on route ``classify``."""
        payload = {"route": "classify", **body}
        async with self.http.post(f"{self.sidecar.inbound_url}/v1/{kind}", json=payload, headers=headers) as r:
            return r.status, dict(r.headers), await r.json()


@pytest.fixture
async def start(adapters: FakeAdapters) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    async with AsyncExitStack() as stack:
        async def _start(cfg: SidecarConfig, **state_kw: Any) -> Running:
            state = SidecarState(keys=KeyResolver(environ=ENV), adapters=adapters, **state_kw)
            await state.apply(cfg, source="file")
            return Running(*await start_sidecar(stack, state, grace_seconds=2))
        yield _start

"""Fakes for the sidecar's HTTP surface: scripted adapters behind a real Runtime and router."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute, Target
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.errors import FailureKind, UpstreamError

Json = dict[str, Any]


def completion(model: str, text: str = "hello") -> Json:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def chunk(model: str, text: str | None = None, finish: str | None = None, usage: Json | None = None) -> Json:
    choices = [] if usage is not None and text is None else [
        {"index": 0, "delta": {"content": text} if text is not None else {}, "finish_reason": finish}]
    out: Json = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


class FakeAdapter:
    """Scripted adapter. ``plan`` items: a Json answer, an UpstreamError, an Exception, or a float (sleep)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.plan: list[Any] = []
        self.stream_plan: list[Any] | None = None  # items: Json chunk, Exception (raised), float (sleep)
        self.calls: list[Json] = []
        self.closed = False

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109 (the Adapter protocol)
        self.calls.append(request)
        step = self.plan.pop(0) if self.plan else completion(self.target.model)
        while isinstance(step, float):
            await asyncio.sleep(step)
            step = self.plan.pop(0) if self.plan else completion(self.target.model)
        if isinstance(step, BaseException):
            raise step
        return dict(step)

    async def stream(self, request: Json, *, timeout: float) -> AsyncIterator[Json]:  # noqa: ASYNC109
        self.calls.append(request)
        plan = self.stream_plan if self.stream_plan is not None else [
            chunk(self.target.model, "hel"), chunk(self.target.model, "lo"), chunk(self.target.model, finish="stop"),
            chunk(self.target.model, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        ]
        for item in plan:
            if isinstance(item, float):
                await asyncio.sleep(item)
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    def bound(self, params: Any, system: str | None) -> FakeAdapter:
        return self  # FakeBuilder compiles without views

    async def aclose(self) -> None:
        self.closed = True


class FakeBuilder:
    """The sidecar's adapter factory in these tests: one FakeAdapter per target name (kept across rebuilds)."""

    def __init__(self) -> None:
        self.adapters: dict[str, FakeAdapter] = {}

    def __call__(self, target: Target, key: Any) -> FakeAdapter:
        adapter = self.adapters.get(target.name)
        if adapter is None or adapter.target != target:
            adapter = self.adapters[target.name] = FakeAdapter(target)
        return adapter


def route_doc(name: str, route: str, targets: list[Json] | None = None, **spec: Any) -> Json:
    targets = targets or [
        {"name": "primary", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "TEST_KEY_A"}},
        {"name": "backup", "provider": "anthropic", "model": "claude-haiku-4-5", "apiKey": {"env": "TEST_KEY_B"}},
    ]
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
            "spec": {"route": route, "targets": targets, "retry": {"attempts": 1, "backoff": {"initialMs": 0, "maxMs": 0}},
                     **spec}}


def config_of(*docs: Json) -> SidecarConfig:
    return SidecarConfig(routes=[ModelRoute.model_validate(d) for d in docs])


ENV = {"TEST_KEY_A": "sk-secret-aaaa", "TEST_KEY_B": "sk-secret-bbbb"}


@pytest.fixture
def keys(tmp_path: Any) -> KeyResolver:
    return KeyResolver(environ=dict(ENV), secrets_dir=tmp_path / "secrets")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def builder() -> FakeBuilder:
    return FakeBuilder()


@pytest.fixture
def make_config() -> Callable[..., SidecarConfig]:
    return config_of


@pytest.fixture
def make_doc() -> Callable[..., Json]:
    return route_doc


@pytest.fixture
def upstream_error() -> Callable[..., UpstreamError]:
    def make(kind: str, status: int | None = None, message: str = "boom", **kw: Any) -> UpstreamError:
        return UpstreamError(FailureKind(kind), message, status, **kw)
    return make


@pytest.fixture
def fake_chunk() -> Callable[..., Json]:
    return chunk

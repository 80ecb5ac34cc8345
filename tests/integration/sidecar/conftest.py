"""A real sidecar (real runtime, adapters and SDKs) in front of the provider emulators."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import openai
import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.secrets import KeyResolver
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer

Json = dict[str, Any]
ADMIN_TOKEN = "integration-admin-token"
ENV = {"KEY_OPENAI": "sk-openai-test", "KEY_ANTHROPIC": "sk-ant-test", "KEY_GEMINI": "gemini-test-key"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}


def target(emu: EmulatorServer, provider: str, name: str | None = None, **extra: Any) -> Json:
    base = emu.openai_url if provider == "openai" else emu.url
    return {"name": name or provider, "provider": provider, "model": extra.pop("model", MODELS[provider]),
            "baseUrl": base, "apiKey": extra.pop("apiKey", {"env": f"KEY_{provider.upper()}"}), **extra}


def route(name: str, targets: list[Json], **spec: Any) -> Json:
    spec.setdefault("retry", {"attempts": 1, "backoff": {"initialMs": 10, "maxMs": 200}})
    spec.setdefault("timeoutSeconds", 10)
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
            "spec": {"route": name, "targets": targets, **spec}}


class Running:
    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        self.sidecar = sidecar
        self.http = http
        self.client = openai.AsyncOpenAI(base_url=sidecar.inbound_url + "/v1", api_key="x", max_retries=0, timeout=30)

    @property
    def state(self) -> SidecarState:
        return self.sidecar.state

    async def put_config(self, docs: list[Json]) -> tuple[int, Json]:
        async with self.http.put(self.sidecar.admin_url + "/config", data=json.dumps(docs),
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
            return r.status, await r.json()

    async def post(self, body: Json) -> tuple[int, dict[str, str], bytes]:
        async with self.http.post(self.sidecar.inbound_url + "/v1/chat/completions", json=body) as r:
            return r.status, dict(r.headers), await r.read()

    async def stats(self) -> Json:
        async with self.http.get(self.sidecar.admin_url + "/stats") as r:
            data: Json = await r.json()
            return data


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer() as server:
        yield server


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    async with AsyncExitStack() as stack:
        async def _start(docs: list[Json], *, env: dict[str, str] | None = None, keys: KeyResolver | None = None) -> Running:
            state = SidecarState(keys=keys or KeyResolver(environ=env or ENV))
            await state.apply(SidecarConfig(routes=[ModelRoute.model_validate(d) for d in docs]), source="file")
            sc = await stack.enter_async_context(Sidecar(state, AuthSettings(admin_token=ADMIN_TOKEN), grace_seconds=5))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            running = Running(sc, http)
            stack.push_async_callback(running.client.close)
            return running
        yield _start

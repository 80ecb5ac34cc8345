"""A real sidecar (runtime, adapters, SDKs) in front of the provider emulators, for the issue-6 layer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from modelroute.sidecar import configfile
from modelroute.sidecar.secrets import KeyResolver
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer

Json = dict[str, Any]
ADMIN_TOKEN = "reflexive-admin-token"
ENV = {"KEY_OPENAI": "sk-openai-test", "KEY_ANTHROPIC": "sk-ant-test", "KEY_GEMINI": "gemini-test-key"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
PROVIDERS = ["openai", "anthropic", "gemini"]


def target(emu: EmulatorServer, provider: str, name: str | None = None, **extra: Any) -> Json:
    base = emu.openai_url if provider == "openai" else emu.url
    return {"name": name or provider, "provider": provider, "model": extra.pop("model", MODELS[provider]),
            "baseUrl": base, "apiKey": {"env": f"KEY_{provider.upper()}"}, **extra}


def route(name: str, targets: list[Json], **spec: Any) -> Json:
    spec.setdefault("retry", {"attempts": 1, "backoff": {"initialMs": 10, "maxMs": 200}})
    spec.setdefault("timeoutSeconds", 10)
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
            "spec": {"route": name, "targets": targets, **spec}}


class Running:
    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        self.sidecar = sidecar
        self.http = http

    @property
    def state(self) -> SidecarState:
        return self.sidecar.state

    @property
    def url(self) -> str:
        return self.sidecar.inbound_url

    async def post(self, path: str, body: Json) -> tuple[int, dict[str, str], Any]:
        async with self.http.post(self.url + path, json=body) as r:
            raw = await r.read()
            try:
                data: Any = json.loads(raw)
            except ValueError:
                data = raw.decode()
            return r.status, dict(r.headers), data

    async def put_config(self, body: Any) -> tuple[int, Json]:
        async with self.http.put(self.sidecar.admin_url + "/config", data=json.dumps(body),
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
            return r.status, await r.json()

    async def stats(self) -> Json:
        async with self.http.get(self.sidecar.admin_url + "/stats") as r:
            data: Json = await r.json()
            return data

    async def metrics(self) -> str:
        async with self.http.get(self.sidecar.admin_url + "/metrics") as r:
            return await r.text()


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer() as server:
        yield server


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a sidecar on ModelRoute (and ModelRegistry) documents, validated as at sidecar start."""
    async with AsyncExitStack() as stack:
        async def _start(docs: list[Json]) -> Running:
            keys = KeyResolver(environ=ENV)
            config = configfile.checked(configfile.parse_documents(docs, "test"), keys)
            state = SidecarState(keys=keys)
            await state.apply(config, source="file")
            sc = await stack.enter_async_context(Sidecar(state, AuthSettings(admin_token=ADMIN_TOKEN), grace_seconds=5))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            return Running(sc, http)
        yield _start

"""A real sidecar (real runtime, adapters and SDKs) in front of the provider emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import aiohttp
import openai
import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.sidecars import ENV, Json, SidecarClient, start_sidecar


class Running(SidecarClient):
    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        super().__init__(sidecar, http)
        self.client = openai.AsyncOpenAI(base_url=sidecar.inbound_url + "/v1", api_key="x", max_retries=0, timeout=30)

    async def post(self, body: Json) -> tuple[int, dict[str, str], bytes]:
        async with self.http.post(self.url + "/v1/chat/completions", json=body) as r:
            return r.status, dict(r.headers), await r.read()


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    async with AsyncExitStack() as stack:
        async def _start(docs: list[Json], *, env: dict[str, str] | None = None, keys: KeyResolver | None = None,
                         registry: ModelRegistry | None = None) -> Running:
            state = SidecarState(keys=keys or KeyResolver(environ=env or ENV))
            config = SidecarConfig(routes=[ModelRoute.model_validate(d) for d in docs], model_registry=registry)
            await state.apply(config, source="file")
            running = Running(*await start_sidecar(stack, state))
            stack.push_async_callback(running.client.close)
            return running
        yield _start

"""A real sidecar (runtime, adapters, SDKs) in front of the provider emulators, for the issue-6 layer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from modelroute.sidecar.config import loader
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.sidecars import ENV, Json, SidecarClient, start_sidecar

PROVIDERS = ["openai", "anthropic", "gemini"]


class Running(SidecarClient):
    async def post(self, path: str, body: Json) -> tuple[int, dict[str, str], Any]:
        async with self.http.post(self.url + path, json=body) as r:
            raw = await r.read()
            try:
                data: Any = json.loads(raw)
            except ValueError:
                data = raw.decode()
            return r.status, dict(r.headers), data


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a sidecar on ModelRoute (and ModelRegistry) documents, validated as at sidecar start."""
    async with AsyncExitStack() as stack:
        async def _start(docs: list[Json]) -> Running:
            keys = KeyResolver(environ=ENV)
            config = loader.checked(loader.parse_documents(docs, "test"), keys)
            state = SidecarState(keys=keys)
            await state.apply(config, source="file")
            return Running(*await start_sidecar(stack, state))
        yield _start

"""Sidecars with canaries in front of the provider emulators, driven by the real OpenAI SDK.

Configs arrive as the operator sends them: signed ``ConfigPush`` documents over ``PUT /config``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import aiohttp
import openai
import pytest

from modelroute.api.config import CanaryServing, ConfigPush, PodRef, SidecarConfig
from modelroute.api.signing import (
    SIGNATURE_HEADER,
    generate_private_key_pem,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign,
)
from modelroute.api.v1alpha1 import ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.secrets import KeyResolver
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer

Json = dict[str, Any]
ENV = {"KEY_OPENAI": "sk-openai-test", "KEY_ANTHROPIC": "sk-ant-test"}
PRIVATE = generate_private_key_pem()
PUBLIC = load_public_key(public_key_pem(PRIVATE))
STABLE_MODEL, CANARY_MODEL = "gpt-4o-mini", "claude-haiku-4-5"


def stable_spec(emu: EmulatorServer) -> ModelRouteSpec:
    return ModelRouteSpec.model_validate({
        "route": "classify", "timeoutSeconds": 10,
        "targets": [{"name": "mini", "provider": "openai", "model": STABLE_MODEL, "baseUrl": emu.openai_url,
                     "apiKey": {"env": "KEY_OPENAI"}}]})


def canary_spec(emu: EmulatorServer) -> ModelRouteSpec:
    return ModelRouteSpec.model_validate({
        "route": "classify", "timeoutSeconds": 10, "prompt": {"version": "v2", "system": "Answer with one label."},
        "targets": [{"name": "haiku", "provider": "anthropic", "model": CANARY_MODEL, "baseUrl": emu.url,
                     "apiKey": {"env": "KEY_ANTHROPIC"}}]})


def rollout_config(emu: EmulatorServer, *, weight: int = 0, mirror: int = 0, sticky: str | None = None,
                   run: str | None = None, canary: bool = True) -> SidecarConfig:
    route = ModelRoute.model_validate({"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
                                       "metadata": {"name": "classifier"}, "spec": stable_spec(emu).wire()})
    if not canary:
        return SidecarConfig(routes=[route])
    spec = canary_spec(emu)
    rev = revision_of(spec)
    return SidecarConfig(routes=[route], canaries=[CanaryServing(
        route="classify", revision=rev, run_id=run or f"{rev}.0", spec=spec, weight=weight, mirror=mirror,
        sticky_header=sticky)])


class Pod:
    """One sidecar as the operator sees it (signed pushes, /stats) and as an app sees it (SDK)."""

    def __init__(self, name: str, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        self.name = name
        self.sidecar = sidecar
        self.http = http
        self.client = openai.AsyncOpenAI(base_url=sidecar.inbound_url + "/v1", api_key="x", max_retries=0, timeout=30)

    @property
    def state(self) -> SidecarState:
        return self.sidecar.state

    async def push(self, config: SidecarConfig) -> Json:
        push = ConfigPush(audience=PodRef(namespace="default", name=self.name), issued_at=datetime.now(UTC), config=config)
        body = json.dumps(push.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
        headers = {SIGNATURE_HEADER: sign(load_private_key(PRIVATE), body), "Content-Type": "application/json"}
        async with self.http.put(self.sidecar.admin_url + "/config", data=body, headers=headers) as r:
            data: Json = await r.json()
            assert r.status == 200, data
            return data

    async def ask(self, text: str = "ticket: my invoice is wrong", headers: dict[str, str] | None = None,
                  **kw: Any) -> tuple[str, dict[str, str]]:
        raw = await self.client.chat.completions.with_raw_response.create(
            model="classify", messages=[{"role": "user", "content": text}], extra_headers=headers, **kw)
        resp = raw.parse()
        return resp.choices[0].message.content or "", dict(raw.headers)

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


@pytest.fixture
async def pods() -> AsyncIterator[Callable[..., Awaitable[Pod]]]:
    async with AsyncExitStack() as stack:
        count = 0

        async def _start(config: SidecarConfig, **state_kw: Any) -> Pod:
            nonlocal count
            count += 1
            name = f"app-{count}"
            state = SidecarState(keys=KeyResolver(environ=ENV), **state_kw)
            auth = AuthSettings(operator_key=PUBLIC, pod=PodRef(namespace="default", name=name))
            sc = await stack.enter_async_context(Sidecar(state, auth, grace_seconds=2))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            pod = Pod(name, sc, http)
            stack.push_async_callback(pod.client.close)
            await pod.push(config)
            return pod
        yield _start

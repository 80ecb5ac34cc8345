"""Sidecars with canaries in front of the provider emulators, driven by the real OpenAI SDK.

Configs arrive as the operator sends them: signed ``ConfigPush`` documents over ``PUT /config``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import openai
import pytest

from modelroute.api.config import CanaryServing, PodRef, SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import ENV, OperatorKey, SidecarClient, start_sidecar

Json = dict[str, Any]
OPERATOR = OperatorKey()
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


class Pod(SidecarClient):
    """One sidecar as the operator sees it (signed pushes, /stats) and as an app sees it (SDK)."""

    def __init__(self, name: str, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        super().__init__(sidecar, http)
        self.name = name
        self.client = openai.AsyncOpenAI(base_url=sidecar.inbound_url + "/v1", api_key="x", max_retries=0, timeout=30)

    async def push(self, config: SidecarConfig) -> Json:
        body, headers = OPERATOR.push(config, "default", self.name)
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


@pytest.fixture
async def pods() -> AsyncIterator[Callable[..., Awaitable[Pod]]]:
    async with AsyncExitStack() as stack:
        count = 0

        async def _start(config: SidecarConfig, **state_kw: Any) -> Pod:
            nonlocal count
            count += 1
            name = f"app-{count}"
            state = SidecarState(keys=KeyResolver(environ=ENV), **state_kw)
            auth = AuthSettings(operator_key=OPERATOR.public, pod=PodRef(namespace="default", name=name))
            pod = Pod(name, *await start_sidecar(stack, state, auth, grace_seconds=2))
            stack.push_async_callback(pod.client.close)
            await pod.push(config)
            return pod
        yield _start

"""Issue 14 items 2 and 7 with the real SDK adapters against the stub providers.

* A request the SDK or the encoder cannot build (NaN, a lone surrogate, a shape the translator
  refuses) is the app's fault: a CLIENT failure (400), nothing sent, no breaker verdict, no
  fallback. Five of them in a row leave the breaker closed and the next valid request served.
* A provider's 400 that echoes the API key in any field of its error (type, code, param,
  message) never shows the key to the app, in any API's envelope.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.providers.base import Adapter
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.breaker import Breaker
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime
from modelroute.sidecar.server.envelope import failure_body
from modelroute.sidecar.server.wire import ANTHROPIC, GEMINI, OPENAI

from .stub import Step, Stub

PROVIDERS = ["openai", "anthropic", "gemini"]
MODELS = {"openai": "gpt-x", "anthropic": "claude-x", "gemini": "gemini-x"}
KEY = "plain-secret-key-that-matches-no-pattern"  # only the adapter's own key list can scrub it
MSG = [{"role": "user", "content": "hi"}]

UNBUILDABLE: list[dict[str, Any]] = [
    {"model": "r", "messages": MSG, "temperature": float("nan")},
    {"model": "r", "messages": MSG, "top_p": float("inf")},
    {"model": "r", "messages": [{"role": "user", "content": "lone \ud800 surrogate"}]},
]


@pytest.fixture(params=PROVIDERS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Stub, Adapter]]:
    stub = await Stub(request.param).start()
    # anthropic on 2023-06-01: the default version refuses sampling params, so they would be dropped unbuilt
    version = {"api_version": "2023-06-01"} if request.param == "anthropic" else {}
    target = Target(name="t", provider=request.param, model=MODELS[request.param], base_url=stub.url,
                    api_key={"env": "K"}, **version)
    adapter = build_adapter(target, lambda: KEY)
    try:
        yield stub, adapter
    finally:
        await adapter.aclose()
        await stub.stop()


async def call(adapter: Adapter, body: dict[str, Any], stream: bool) -> None:
    if stream:
        async for _ in adapter.stream({**body, "stream": True}, timeout=5):
            pass
    else:
        await adapter.complete(body, timeout=5)


@pytest.mark.parametrize("request_body", UNBUILDABLE)
@pytest.mark.parametrize("stream", [False, True])
async def test_an_unbuildable_request_is_a_client_error_and_nothing_is_sent(
        env: tuple[Stub, Adapter], request_body: dict[str, Any], stream: bool) -> None:
    stub, adapter = env
    with pytest.raises(UpstreamError) as info:
        await call(adapter, request_body, stream)
    assert info.value.kind is FailureKind.CLIENT and info.value.status == 400
    assert stub.seen == []


def _route(adapter: Adapter) -> RouteRuntime:
    doc = {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "r"},
           "spec": {"route": "r", "targets": [adapter.target.model_dump(by_alias=True, exclude_none=True)],
                    "retry": {"attempts": 1, "backoff": {"initialMs": 0, "maxMs": 0}},
                    "circuitBreaker": {"failureThreshold": 2}}}
    spec = ModelRoute.model_validate(doc).spec
    return RouteRuntime(spec, "r", (TargetRuntime(adapter.target, adapter, Breaker(spec.circuit_breaker)),), NullObserver())


async def test_bad_requests_do_not_open_the_breaker(env: tuple[Stub, Adapter]) -> None:
    stub, adapter = env
    route = _route(adapter)
    for body in UNBUILDABLE * 2:  # more than the failure threshold
        with pytest.raises(RouteFailed) as info:
            await router.complete(route, body)
        assert info.value.client_error is not None
        status, payload = failure_body("r", info.value)
        assert status == 400 and payload["error"]["type"] == "invalid_request_error"
    assert not route.targets[0].breaker.is_open
    done = await router.complete(route, {"model": "r", "messages": MSG})
    assert done.response["choices"][0]["message"]["content"] == "hello"
    assert len(stub.seen) == 1


def _leaky_error(provider: str) -> dict[str, Any]:
    inner = {"message": f"bad request for key {KEY}", "type": f"invalid_{KEY}", "code": KEY, "param": f"p-{KEY}"}
    if provider == "anthropic":
        return {"type": "error", "error": {"type": KEY, "message": inner["message"]}}
    if provider == "gemini":
        return {"error": {"code": 400, "message": inner["message"], "status": KEY}}
    return {"error": inner}


async def test_a_key_in_any_upstream_error_field_is_scrubbed_in_every_envelope(env: tuple[Stub, Adapter]) -> None:
    stub, adapter = env
    route = _route(adapter)
    stub.plan = [Step("status", 400, body=_leaky_error(stub.provider))]
    with pytest.raises(RouteFailed) as info:
        await router.complete(route, {"model": "r", "messages": MSG})
    assert info.value.client_error is not None
    assert KEY not in repr(info.value.client_error)
    status, payload = failure_body("r", info.value)
    assert status == 400
    for wire in (OPENAI, ANTHROPIC, GEMINI):
        text = wire.error(status, payload).body
        assert isinstance(text, bytes)
        assert KEY.encode() not in text, (wire.name, text)
    err = payload["error"]
    assert "***" in err["message"] and (err["type"] is None or KEY not in err["type"])
    assert json.dumps(payload).count("***") >= 1

"""The exact Anthropic body at the SDK edge, for every route param and a target override of each,
under both API versions: what ``AnthropicAdapter.build`` hands the transport.

Each body must be one the API version in use accepts (the emulator's schema check, and the
SDK's ``MessageCreateParams`` for everything but the 2023-06-01 sampling fields), never
carry ``extra_body``, and go out with that version's ``anthropic-version`` header.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import TypeAdapter

from modelroute.api.v1alpha1 import ModelRouteSpec, Params
from modelroute.api.v1alpha1.capabilities import route_param_problems
from modelroute.sidecar.providers.anthropic import AnthropicAdapter
from modelroute.sidecar.translate.anthropic import sdk_kwargs
from modelroute.sidecar.translate.params import effective_params
from modelroute.testing.emulators.dialects import anthropic_schema

ROUTE = {"temperature": 0.3, "topP": 0.8, "stop": ["END"], "maxTokens": 64}
OVERRIDE = {"temperature": 0.6, "topP": 0.4, "stop": ["STOP"], "maxTokens": 32}
WIRE = {"temperature": "temperature", "topP": "top_p", "stop": "stop_sequences", "maxTokens": "max_tokens"}
SAMPLING = {"temperature", "topP"}
APP: dict[str, Any] = {"model": "r", "messages": [{"role": "user", "content": "hi"}],
                       "temperature": 0.9, "top_p": 0.2, "stop": ["app"], "max_tokens": 500}


def _expected(version: str, values: dict[str, Any]) -> dict[str, Any]:
    """The app's params, with the route's replacing them (maxTokens clamps), minus what the version refuses."""
    merged = {"temperature": 0.9, "topP": 0.2, "stop": ["app"], "maxTokens": 500}
    for param, value in values.items():
        merged[param] = min(value, merged[param]) if param == "maxTokens" else value
    body: dict[str, Any] = {"model": "claude-3-5-haiku", "messages": [{"role": "user", "content": "hi"}]}
    for param in ("maxTokens", "temperature", "topP", "stop"):
        if version == "2026-10-21" and param in SAMPLING:
            continue  # that version refuses them: not sent
        body[WIRE[param]] = merged[param]
    return body


async def _build(version: str | None, route: dict[str, Any], target_params: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, Any]]:
    raw_target: dict[str, Any] = {"name": "t", "provider": "anthropic", "model": "claude-3-5-haiku", "apiKey": {"env": "K"}}
    if version is not None:
        raw_target["apiVersion"] = version
    if target_params is not None:
        raw_target["params"] = target_params
    spec = ModelRouteSpec.model_validate({"route": "r", "targets": [raw_target], "params": route, "unsupportedParams": "drop"})
    target = spec.targets[0]
    adapter = AnthropicAdapter(target, lambda: "sk-test", params=effective_params(spec.params, target))
    try:
        prepared, body = await adapter.build(APP, False)
    finally:
        await adapter.aclose()
    return dict(prepared.headers), json.loads(body)


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
@pytest.mark.parametrize("param", sorted(ROUTE))
@pytest.mark.parametrize("override", [False, True], ids=["route", "target-override"])
async def test_exact_body_per_param_and_version(version: str, param: str, override: bool) -> None:
    route = {param: ROUTE[param]}
    headers, body = await _build(version if version == "2023-06-01" else None, route, {param: OVERRIDE[param]} if override else None)
    assert headers["anthropic-version"] == version
    value = (OVERRIDE if override else ROUTE)[param]
    assert body == _expected(version, {param: value})
    assert anthropic_schema.validate(body, {"anthropic-version": version}) is None
    kwargs = sdk_kwargs(body)
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python({k: v for k, v in kwargs.items() if k != "extra_body"})


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
async def test_every_route_param_with_every_override(version: str) -> None:
    headers, body = await _build(version, ROUTE, OVERRIDE)
    assert headers["anthropic-version"] == version and "extra_body" not in body
    assert body == _expected(version, OVERRIDE)
    assert anthropic_schema.validate(body, {"anthropic-version": version}) is None


def test_without_drop_the_2026_version_refuses_the_routes_sampling_params() -> None:
    spec = ModelRouteSpec.model_validate({"route": "r", "params": ROUTE, "targets": [
        {"name": "t", "provider": "anthropic", "model": "claude-3-5-haiku", "apiKey": {"env": "K"}}]})
    assert [field for field, _ in route_param_problems(spec)] == ["spec.params.temperature", "spec.params.topP"]
    assert Params.model_validate(ROUTE).max_tokens == 64

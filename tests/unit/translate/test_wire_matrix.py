"""The exact body at the SDK edge, for every provider and every route param, and a target override of each.

One table: each row is a provider (with its model and API version), each case one route param
(``temperature``, ``topP``, ``stop``, ``maxTokens``), set on the route or overridden by the
target. The body is captured at the transport seam (what ``Transport.send`` is handed after the
adapter's SDK built it) and must

* be exactly the expected body: the app's params, the route's (or target's) replacing them,
  ``maxTokens`` clamping, each under the provider's wire name;
* leave out what the target cannot take (capability table), and report it: the
  ``x-modelroute-dropped-params`` answer (``ParamFilter.dropped``, what the inbound header
  says) and, without ``unsupportedParams: drop``, a config error naming the field;
* be accepted by the provider's own request type for the API version in use: OpenAI's
  published spec (the strict emulator's schema), Anthropic's ``MessageCreateParams`` and the
  version's field list, google-genai's ``GenerationConfig`` / ``Content`` types and the wire
  schema derived from the SDK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from google.genai import types as genai_types
from pydantic import TypeAdapter

from modelroute.api.v1alpha1 import ModelRouteSpec
from modelroute.api.v1alpha1.capabilities import route_param_problems
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.providers.transport import Prepared, Transport
from modelroute.sidecar.translate.accepts import param_filter
from modelroute.sidecar.translate.anthropic import sdk_kwargs
from modelroute.sidecar.translate.params import effective_params
from modelroute.testing.emulators.dialects import anthropic_schema, gemini_schema, openai_schema

Json = dict[str, Any]

PARAMS = ("temperature", "topP", "stop", "maxTokens")
ROUTE: Json = {"temperature": 0.3, "topP": 0.8, "stop": ["END"], "maxTokens": 64}
OVERRIDE: Json = {"temperature": 0.6, "topP": 0.4, "stop": ["STOP"], "maxTokens": 32}
APP_VALUES: Json = {"temperature": 0.9, "topP": 0.2, "stop": ["app"], "maxTokens": 500}
MESSAGES = [{"role": "user", "content": "hi"}]
APP: Json = {"model": "r", "messages": MESSAGES, "temperature": 0.9, "top_p": 0.2, "stop": ["app"], "max_tokens": 500}
CHAT = {"temperature": "temperature", "topP": "top_p", "stop": "stop", "maxTokens": "max_tokens"}

ANSWERS: dict[str, Json] = {
    "chat": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
    "anthropic": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": "ok"}],
                  "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}},
    "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}},
}


@dataclass(frozen=True)
class Row:
    """One provider, model and API version; ``wire`` names each param's field (``gen.``: in generationConfig)."""

    id: str
    provider: str
    model: str
    wire: dict[str, str]
    api_version: str | None = None
    refused: frozenset[str] = field(default_factory=frozenset)
    base_url: str | None = None

    @property
    def answer(self) -> Json:
        return ANSWERS["chat" if self.provider.startswith("openai") else self.provider]

    def body(self, params: Json) -> Json:
        """The exact wire body when the app sends ``APP`` and the effective params are ``params``."""
        values = dict(APP_VALUES)
        for p, v in params.items():
            values[p] = min(v, values[p]) if p == "maxTokens" else v
        if self.provider == "gemini":
            gen = {self.wire[p]: values[p] for p in ("temperature", "topP", "maxTokens", "stop") if p not in self.refused}
            return {"contents": [{"parts": [{"text": "hi"}], "role": "user"}], "generationConfig": gen}
        body: Json = {"model": self.model, "messages": MESSAGES}
        order = ("maxTokens", "temperature", "topP", "stop") if self.provider == "anthropic" else ("temperature", "topP", "stop", "maxTokens")
        body.update({self.wire[p]: values[p] for p in order if p not in self.refused})
        return body

    def accepts(self, body: Json, headers: dict[str, str]) -> None:
        """The provider's own request type for the API version in use takes ``body``."""
        if self.provider.startswith("openai"):
            assert openai_schema.validate("/v1/chat/completions", body) is None
            assert openai_schema.model_rules(body) is None  # e.g. reasoning models: no max_tokens, default temperature
        elif self.provider == "anthropic":
            version = headers["anthropic-version"]
            assert version == self.api_version
            assert anthropic_schema.validate(body, {"anthropic-version": version}) is None
            kwargs = sdk_kwargs(body)  # the 2023-06-01 sampling fields are not in the 2.x SDK's types: extra_body
            TypeAdapter(MessageCreateParamsNonStreaming).validate_python({k: v for k, v in kwargs.items() if k != "extra_body"})
        else:
            assert gemini_schema.validate(body) is None
            genai_types.GenerationConfig.model_validate(body["generationConfig"])
            for content in body["contents"]:
                genai_types.Content.model_validate(content)


OPENAI = {"temperature": "temperature", "topP": "top_p", "stop": "stop", "maxTokens": "max_completion_tokens"}
ANTHROPIC = {"temperature": "temperature", "topP": "top_p", "stop": "stop_sequences", "maxTokens": "max_tokens"}
ROWS = [
    Row("openai", "openai", "gpt-4o-mini", OPENAI),
    Row("openai-reasoning", "openai", "gpt-5.4-mini", OPENAI, refused=frozenset({"temperature", "topP", "stop"})),
    Row("openai-compatible", "openai-compatible", "llama-3.1-8b", {**OPENAI, "maxTokens": "max_tokens"},
        base_url="http://127.0.0.1:9/v1"),
    Row("anthropic-2023-06-01", "anthropic", "claude-3-5-haiku", ANTHROPIC, api_version="2023-06-01"),
    Row("anthropic-2026-10-21", "anthropic", "claude-3-5-haiku", ANTHROPIC, api_version="2026-10-21",
        refused=frozenset({"temperature", "topP"})),
    Row("gemini", "gemini", "gemini-2.5-flash",
        {"temperature": "temperature", "topP": "topP", "stop": "stopSequences", "maxTokens": "maxOutputTokens"}),
]


class Captured(Transport):
    """The transport seam: records what it is handed and answers the provider's canned 200."""

    def __init__(self, provider: str, answer: Json) -> None:
        super().__init__(provider)
        self.answer = answer
        self.sent: list[tuple[Prepared, Json]] = []

    async def send(self, req: Prepared, body: bytes, *, timeout: float) -> bytes:  # noqa: ASYNC109
        self.sent.append((req, json.loads(body)))
        return json.dumps(self.answer).encode()


def _spec(row: Row, route: Json, target_params: Json | None, drop: bool = True) -> ModelRouteSpec:
    raw: Json = {"name": "t", "provider": row.provider, "model": row.model, "apiKey": {"env": "K"}}
    if row.provider == "anthropic" and row.api_version == "2023-06-01":
        raw["apiVersion"] = row.api_version  # 2026-10-21 is the SDK's own: no apiVersion needed
    if row.base_url:
        raw["baseUrl"] = row.base_url
    if target_params is not None:
        raw["params"] = target_params
    doc: Json = {"route": "r", "targets": [raw], "params": route}
    if drop:
        doc["unsupportedParams"] = "drop"
    return ModelRouteSpec.model_validate(doc)


async def _wire(spec: ModelRouteSpec) -> tuple[Prepared, Json]:
    target = spec.targets[0]
    row = next(r for r in ROWS if r.provider == target.provider.value)
    adapter: Any = build_adapter(target, lambda: "sk-test", params=effective_params(spec.params, target))
    seam = Captured(target.provider.value, row.answer)
    adapter._transport = seam  # swap the seam: nothing leaves the process
    try:
        answer = await adapter.complete(APP, timeout=5)
    finally:
        await adapter.aclose()
    assert answer["choices"][0]["message"]["content"] == "ok"
    assert len(seam.sent) == 1
    return seam.sent[0]


def _dropped(spec: ModelRouteSpec) -> tuple[str, ...]:
    target = spec.targets[0]
    f = param_filter(target, effective_params(spec.params, target))
    return f.dropped(APP) if f is not None else ()


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("override", [False, True], ids=["route", "target-override"])
async def test_exact_body_for_each_param(row: Row, param: str, override: bool) -> None:
    spec = _spec(row, {param: ROUTE[param]}, {param: OVERRIDE[param]} if override else None)
    prepared, body = await _wire(spec)
    value = (OVERRIDE if override else ROUTE)[param]
    assert body == row.body({param: value})
    assert "extra_body" not in body
    row.accepts(body, dict(prepared.headers))
    # What the target cannot take is absent and reported (the app's and the route's alike).
    assert _dropped(spec) == tuple(CHAT[p] for p in PARAMS if p in row.refused)
    problems = [f for f, _ in route_param_problems(_spec(row, {param: ROUTE[param]}, {param: OVERRIDE[param]} if override else None,
                                                         drop=False))]
    if param in row.refused:
        assert problems == [f"spec.targets[0].params.{param}" if override else f"spec.params.{param}"]
    else:
        assert problems == []


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
async def test_every_param_with_every_override(row: Row) -> None:
    spec = _spec(row, ROUTE, OVERRIDE)
    prepared, body = await _wire(spec)
    assert body == row.body(OVERRIDE)
    row.accepts(body, dict(prepared.headers))


@pytest.mark.parametrize("row", [r for r in ROWS if r.refused], ids=lambda r: r.id)
async def test_app_params_alone_are_dropped_and_reported(row: Row) -> None:
    spec = _spec(row, {}, None, drop=False)
    assert route_param_problems(spec) == []
    prepared, body = await _wire(spec)
    assert body == row.body({})
    assert not {row.wire[p] for p in row.refused} & set(body)
    assert set(_dropped(spec)) == {CHAT[p] for p in row.refused}
    row.accepts(body, dict(prepared.headers))

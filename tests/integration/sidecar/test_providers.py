"""The real OpenAI SDK as the app, the real sidecar, each provider behind it (emulated at the network edge)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sdkviews import function_call
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

PROVIDERS = ["openai", "anthropic", "gemini"]
Start = Callable[..., Awaitable[Running]]


def msg(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_completion(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)], prompt={"version": "v7", "system": "Be brief."})])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=msg("hello there"), max_tokens=50)
    resp = raw.parse()
    assert resp.choices[0].message.content == f"[{provider}:{MODELS[provider]}] hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == MODELS[provider]
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    assert raw.headers["x-modelroute-target"] == provider
    assert raw.headers["x-modelroute-prompt-version"] == "v7"
    (req,) = emu.requests(provider)
    assert "Be brief." in str(req.body)  # the route's system prompt reached the provider


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_with_usage(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    stream = await sc.client.chat.completions.create(model="r", messages=msg("one two three"), stream=True,
                                                     stream_options={"include_usage": True})
    text, usage, finish = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == f"[{provider}:{MODELS[provider]}] one two three"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0
    stats = await sc.stats()
    assert stats["routes"]["r"]["targets"][provider]["tokens"]["completion"] == usage.completion_tokens


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_call(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    tools: Any = [{"type": "function", "function": {
        "name": "get_weather", "description": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    resp = await sc.client.chat.completions.create(model="r", messages=msg("call get_weather city=Paris"), tools=tools)
    call = function_call(resp.choices[0].message)
    assert call.function.name == "get_weather"
    assert '"Paris"' in call.function.arguments
    assert resp.choices[0].finish_reason == "tool_calls"

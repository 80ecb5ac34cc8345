"""The translators' outputs go through the real SDKs, and the SDKs' objects come back through them.

A loopback aiohttp server records what each SDK puts on the wire for the translated
kwargs and answers with canned provider bodies; the SDK objects are then dumped the way
the adapters do (``model_dump()``; Gemini ``model_dump(mode="json", exclude_none=True)``)
and translated back. This pins the input forms the translator docstrings promise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from modelroute.sidecar.translate import (
    AnthropicStreamToChat,
    GeminiStreamToChat,
    anthropic_to_chat_response,
    chat_to_anthropic_request,
    chat_to_gemini_request,
    chat_to_openai_request,
    gemini_to_chat_response,
)
from modelroute.sidecar.translate.anthropic import sdk_kwargs
from modelroute.testing.webapps import serving

Json = dict[str, Any]

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
TOOL: Json = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
REQUEST: Json = {
    "model": "assist",
    "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 3}"},
    ],
    "tools": [TOOL], "temperature": 0.2, "max_tokens": 50, "top_k": 5,
}

ANTHROPIC_MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "Cold."}, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Bergen"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 30, "output_tokens": 9, "cache_read_input_tokens": 4},
}
ANTHROPIC_SSE = [
    ("message_start", {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Co"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ld."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Bergen\"}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 12}}),
    ("message_stop", {"type": "message_stop"}),
]
GEMINI_RESPONSE = {
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "Cold."}, {"functionCall": {"name": "get_weather", "args": {"city": "Bergen"}}, "thoughtSignature": "c2ln"}]},
        "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "thoughtsTokenCount": 2, "totalTokenCount": 41},
    "modelVersion": "gemini-2.5-flash", "responseId": "r1",
}
GEMINI_SSE = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Co"}]}, "index": 0}], "modelVersion": "gemini-2.5-flash", "responseId": "r2",
     "usageMetadata": {"promptTokenCount": 30, "totalTokenCount": 30}},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "ld."}]}, "finishReason": "STOP", "index": 0}], "modelVersion": "gemini-2.5-flash", "responseId": "r2",
     "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 3, "totalTokenCount": 33}},
]


class Upstream:
    """Loopback stand-in for the three providers: records bodies, answers canned JSON or SSE."""

    def __init__(self) -> None:
        self.bodies: list[Json] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        self.paths.append(request.path_qs)
        self.headers.append(dict(request.headers))
        path = request.path
        if path.endswith("/chat/completions"):
            return web.json_response({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        if path.endswith("/messages"):
            if body.get("stream"):
                return await self._sse(request, [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in ANTHROPIC_SSE])
            return web.json_response(ANTHROPIC_MESSAGE)
        if path.endswith(":streamGenerateContent"):
            return await self._sse(request, [f"data: {json.dumps(chunk)}\n\n" for chunk in GEMINI_SSE])
        return web.json_response(GEMINI_RESPONSE)

    async def _sse(self, request: web.Request, frames: list[str]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for frame in frames:
            await resp.write(frame.encode())
        await resp.write_eof()
        return resp


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", state.handle)
    async with serving(app) as port:
        yield state, f"http://127.0.0.1:{port}"


async def test_openai_sdk_accepts_kwargs(upstream: tuple[Upstream, str]) -> None:
    from openai import AsyncOpenAI

    state, url = upstream
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0)
    try:
        kwargs = chat_to_openai_request(REQUEST, model="gpt-4o-mini")
        response = await client.chat.completions.create(**kwargs)
    finally:
        await client.close()
    wire = state.bodies[-1]
    # Unknown fields reach the wire through extra_body (openai-compatible servers take top_k; for OpenAI
    # proper the adapter's capability filter drops it first, tests/unit/translate/test_wire_matrix.py).
    assert wire["model"] == "gpt-4o-mini" and wire["top_k"] == 5
    assert wire["max_completion_tokens"] == 50 and "max_tokens" not in wire
    assert response.choices[0].message.content == "ok"


async def test_anthropic_sdk_round_trip(upstream: tuple[Upstream, str]) -> None:
    from anthropic import AsyncAnthropic

    state, url = upstream
    client = AsyncAnthropic(base_url=url, api_key="test", max_retries=0)
    try:
        message = await client.messages.create(**chat_to_anthropic_request(REQUEST, model="claude-haiku-4-5"))
        wire = state.bodies[-1]
        # anthropic-version 2026-10-21 (the SDK's) refuses sampling params: none reach the wire.
        assert state.headers[-1]["anthropic-version"] == "2026-10-21"
        assert wire["system"] == "Be terse." and wire["max_tokens"] == 50
        assert not {"temperature", "top_p", "top_k", "extra_body"} & set(wire)
        # Under 2023-06-01 temperature is a top-level field (create() takes it through extra_body).
        await client.messages.create(**sdk_kwargs(chat_to_anthropic_request(REQUEST, model="claude-haiku-4-5", api_version="2023-06-01")))
        assert state.bodies[-1]["temperature"] == 0.2 and "extra_body" not in state.bodies[-1]
        assert wire["messages"][0]["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        assert wire["messages"][1]["content"] == [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}]
        assert wire["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": "{\"temp_c\": 3}"}]
        assert wire["tools"] == [{"name": "get_weather", "input_schema": TOOL["function"]["parameters"]}]

        out = anthropic_to_chat_response(message.model_dump(), created=5)
        ChatCompletion.model_validate(out)
        assert out["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}
        assert out["usage"]["prompt_tokens"] == 34 and out["usage"]["prompt_tokens_details"]["cached_tokens"] == 4

        stream: Any = await client.messages.create(**chat_to_anthropic_request({**REQUEST, "stream": True}, model="claude-haiku-4-5"))
        translator = AnthropicStreamToChat(model="claude-haiku-4-5", id="chatcmpl-x", created=5, include_usage=True)
        chunks: list[Json] = []
        async for event in stream:
            chunks.extend(translator.feed(event.model_dump()))
        chunks.extend(translator.finish())
    finally:
        await client.close()
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    args = "".join(tc["function"].get("arguments", "") for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or ())
    assert text == "Cold." and json.loads(args) == {"city": "Bergen"}
    assert translator.finish_reason == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}


async def test_gemini_sdk_round_trip(upstream: tuple[Upstream, str]) -> None:
    from google import genai

    state, url = upstream
    client = genai.Client(api_key="test", http_options={"base_url": url})
    kwargs = chat_to_gemini_request(REQUEST, model="gemini-2.5-flash")
    response = await client.aio.models.generate_content(**kwargs)
    wire = state.bodies[-1]
    assert state.paths[-1].endswith("/models/gemini-2.5-flash:generateContent")
    assert wire["systemInstruction"]["parts"] == [{"text": "Be terse."}]
    # The SDK itself keeps snake_case inside nested part objects (the API accepts both).
    assert wire["contents"][0]["parts"][1] == {"inlineData": {"mime_type": "image/png", "data": PNG}}
    call_part = wire["contents"][1]["parts"][0]
    assert call_part["functionCall"] == {"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}}
    assert base64.b64decode(call_part["thoughtSignature"]) == b"skip_thought_signature_validator"
    assert wire["contents"][2]["parts"][0]["functionResponse"] == {"id": "call_1", "name": "get_weather", "response": {"temp_c": 3}}
    declaration = wire["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters_json_schema"] == TOOL["function"]["parameters"]  # SDK's spelling, as above
    assert wire["generationConfig"]["temperature"] == 0.2 and wire["generationConfig"]["maxOutputTokens"] == 50
    assert "automaticFunctionCalling" not in json.dumps(wire)

    out = gemini_to_chat_response(response.model_dump(mode="json", exclude_none=True), created=5, id="chatcmpl-g", model="gemini-2.5-flash")
    ChatCompletion.model_validate(out)
    message = out["choices"][0]["message"]
    assert message["content"] == "Cold." and out["choices"][0]["finish_reason"] == "tool_calls"
    assert message["tool_calls"][0] == {"id": "call_chatcmpl-g_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}}
    assert out["usage"] == {"prompt_tokens": 30, "completion_tokens": 11, "total_tokens": 41, "completion_tokens_details": {"reasoning_tokens": 2}}

    translator = GeminiStreamToChat(model="gemini-2.5-flash", id="chatcmpl-y", created=5, include_usage=True)
    chunks: list[Json] = []
    async for chunk in await client.aio.models.generate_content_stream(**kwargs):
        chunks.extend(translator.feed(chunk.model_dump(mode="json", exclude_none=True)))
    chunks.extend(translator.finish())
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Cold."
    assert chunks[-1]["usage"] == {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33}
    assert "alt=sse" in state.paths[-1]


async def test_the_gemini_adapter_sends_what_generate_content_would(upstream: tuple[Upstream, str]) -> None:
    """The adapter lets google-genai convert the translator's dict without validating it into
    the SDK's types first; the body on the wire must be the one ``generate_content`` sends."""
    from google import genai

    from modelroute.api.v1alpha1.spec import Target
    from modelroute.sidecar.providers.gemini import GeminiAdapter

    state, url = upstream
    client = genai.Client(api_key="test", http_options={"base_url": url})
    kwargs = chat_to_gemini_request(REQUEST, model="gemini-2.5-flash")
    await client.aio.models.generate_content(**kwargs)
    by_sdk = state.bodies[-1]
    adapter = GeminiAdapter(Target(name="g", provider="gemini", model="gemini-2.5-flash", base_url=url,
                                   api_key={"env": "K"}), lambda: "test")
    try:
        prepared, body = await adapter.build(REQUEST, False)
    finally:
        await adapter.aclose()
    assert json.loads(body) == by_sdk
    assert prepared.url == url.rstrip("/") + state.paths[-1]  # the same path and API version
    assert prepared.headers["x-goog-api-key"] == "test"


async def test_gemini_forwards_top_k(upstream: tuple[Upstream, str]) -> None:
    """Regression: an app's top_k (and a Gemini app's topK) never reached Gemini targets."""
    from google import genai

    from modelroute.sidecar.translate import gemini_to_chat_request

    state, url = upstream
    client = genai.Client(api_key="test", http_options={"base_url": url})
    await client.aio.models.generate_content(**chat_to_gemini_request(REQUEST, model="gemini-2.5-flash"))
    assert state.bodies[-1]["generationConfig"]["topK"] == 5
    chat = gemini_to_chat_request({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"topK": 3}}, route="r")
    assert chat["top_k"] == 3
    assert chat_to_gemini_request(chat, model="gemini-2.5-flash")["config"]["top_k"] == 3

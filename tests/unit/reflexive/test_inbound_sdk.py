"""The inbound translators behind a loopback server, driven by the real anthropic and google-genai SDKs.

A tiny aiohttp app stands in for the sidecar's inbound routes: it translates what the app's
SDK sends into the chat pivot (recorded), answers with a canned chat completion or chunk
list (what any provider translator produces) and translates that back. The SDKs must
parse the answers into their own objects, streaming included, tool use included.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from modelroute.sidecar.pipeline.limits import estimate_tokens
from modelroute.sidecar.translate import (
    ChatStreamToAnthropic,
    ChatStreamToGemini,
    anthropic_error,
    anthropic_sse,
    anthropic_to_chat_request,
    chat_to_anthropic_response,
    chat_to_gemini_response,
    gemini_error,
    gemini_sse,
    gemini_to_chat_request,
)
from modelroute.sidecar.translate.anthropic_inbound import count_tokens_response as anthropic_count
from modelroute.sidecar.translate.anthropic_inbound import error_event
from modelroute.sidecar.translate.errors import StreamError
from modelroute.sidecar.translate.gemini_inbound import count_tokens_response as gemini_count
from modelroute.sidecar.translate.gemini_inbound import error_chunk, route_of
from modelroute.testing.sdkviews import tool_use_of
from modelroute.testing.webapps import serving

Json = dict[str, Any]

COMPLETION: Json = {
    "id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Checking.",
        "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48},
}


def _chunk(delta: Json, finish: str | None = None) -> Json:
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}


CHUNKS: list[Json] = [
    _chunk({"role": "assistant", "content": ""}), _chunk({"content": "Check"}), _chunk({"content": "ing."}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
    _chunk({}, "tool_calls"),
    {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": [],
     "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}},
]
WEATHER_SCHEMA: Json = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


class Sidecar:
    """Records the pivot requests; ``cut`` makes streams fail after the text."""

    def __init__(self) -> None:
        self.requests: list[Json] = []
        self.cut = False

    def chunks(self) -> list[Json]:
        return CHUNKS[:3] if self.cut else CHUNKS

    async def count_anthropic(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(anthropic_count(estimate_tokens(anthropic_to_chat_request(body))))

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("model") == "missing":
            return web.json_response(anthropic_error(404, "unknown route 'missing'"), status=404)
        chat = anthropic_to_chat_request(body)
        self.requests.append(chat)
        if not chat.get("stream"):
            return web.json_response(chat_to_anthropic_response(COMPLETION, model="claude-haiku-4-5"))
        translator = ChatStreamToAnthropic(model="claude-haiku-4-5", id="chatcmpl-9")
        return await self._stream(request, translator, anthropic_sse, error_event)

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        route = route_of(model)
        if route == "missing":
            return web.json_response(gemini_error(404, "unknown route 'missing'"), status=404)
        if method == "countTokens":
            body = await request.json()
            return web.json_response(gemini_count(estimate_tokens(gemini_to_chat_request(body, route=route))))
        chat = gemini_to_chat_request(await request.json(), route=route, stream=method == "streamGenerateContent")
        self.requests.append(chat)
        if method == "generateContent":
            return web.json_response(chat_to_gemini_response(COMPLETION))
        assert request.query.get("alt") == "sse"
        translator = ChatStreamToGemini(model="gpt-4o-mini", id="chatcmpl-9")
        return await self._stream(request, translator, gemini_sse, error_chunk)

    async def _stream(self, request: web.Request, translator: ChatStreamToAnthropic | ChatStreamToGemini,
                      sse: Callable[[Json], bytes], error: Callable[[StreamError], Json]) -> web.StreamResponse:
        """The chunks through ``translator`` as server-sent events; a StreamError ends it with an error event."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for chunk in self.chunks():
                for out in translator.feed(json.loads(json.dumps(chunk))):
                    await resp.write(sse(out))
            for out in translator.finish():
                await resp.write(sse(out))
        except StreamError as e:
            await resp.write(sse(error(e)))
        await resp.write_eof()
        return resp


@pytest.fixture
async def sidecar() -> AsyncIterator[tuple[Sidecar, str]]:
    state = Sidecar()
    app = web.Application()
    app.router.add_post("/v1/messages", state.messages)
    app.router.add_post("/v1/messages/count_tokens", state.count_anthropic)
    app.router.add_post("/{version:v1|v1beta}/models/{call}", state.gemini)
    async with serving(app) as port:
        yield state, f"http://127.0.0.1:{port}"


async def test_anthropic_sdk_app(sidecar: tuple[Sidecar, str]) -> None:
    import anthropic

    state, url = sidecar
    client = anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0)
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    try:
        message = await client.messages.create(model="assist", max_tokens=100, system="Be terse.", tools=tools,
                                               messages=[{"role": "user", "content": "Weather in Oslo?"}])
        assert state.requests[-1]["messages"][0] == {"role": "system", "content": "Be terse."}
        assert message.stop_reason == "tool_use" and message.content[0].type == "text"
        tool_use = message.content[1]
        assert tool_use.type == "tool_use" and tool_use.id == "call_a" and tool_use.input == {"city": "Oslo"}
        assert message.usage.input_tokens == 40 and message.usage.output_tokens == 8

        # The SDK's own stream accumulator rebuilds the same message from the events.
        async with client.messages.stream(model="assist", max_tokens=100, tools=tools,
                                           messages=[{"role": "user", "content": "Weather in Oslo?"}]) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        assert state.requests[-1]["stream_options"] == {"include_usage": True}
        assert text == "Checking."
        assert final.stop_reason == "tool_use"
        assert [b.type for b in final.content] == ["text", "tool_use"]
        assert tool_use_of(final.content[1]).input == {"city": "Oslo"}
        assert final.usage.input_tokens == 40 and final.usage.output_tokens == 8

        counted = await client.messages.count_tokens(model="assist", messages=[{"role": "user", "content": "x" * 400}])
        assert counted.input_tokens == 105

        with pytest.raises(anthropic.NotFoundError) as info:
            await client.messages.create(model="missing", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert "unknown route" in str(info.value)

        state.cut = True  # a cut stream must raise in the app, never look complete
        with pytest.raises(anthropic.APIStatusError):
            async with client.messages.stream(model="assist", max_tokens=100,
                                              messages=[{"role": "user", "content": "x"}]) as stream:
                await stream.get_final_message()
    finally:
        await client.close()


async def test_gemini_sdk_app(sidecar: tuple[Sidecar, str]) -> None:
    from google import genai
    from google.genai import errors, types

    state, url = sidecar
    client = genai.Client(api_key="unused", http_options={"base_url": url})
    config = types.GenerateContentConfig(
        system_instruction="Be terse.", temperature=0, max_output_tokens=64,
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER_SCHEMA)])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    response = await client.aio.models.generate_content(model="assist", contents="Weather in Oslo?", config=config)
    chat = state.requests[-1]
    assert chat["model"] == "assist" and chat["messages"][0] == {"role": "system", "content": "Be terse."}
    assert chat["temperature"] == 0 and chat["max_tokens"] == 64
    assert chat["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    assert response.text == "Checking."
    assert response.function_calls is not None
    call = response.function_calls[0]
    assert (call.id, call.name, call.args) == ("call_a", "get_weather", {"city": "Oslo"})
    assert response.usage_metadata is not None and response.usage_metadata.prompt_token_count == 40

    # The app answers the call the way the SDK docs show; the id maps back to the call.
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Oslo?")]), response.candidates[0].content,  # type: ignore[index]
               types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 3})])]
    await client.aio.models.generate_content(model="assist", contents=history, config=config)  # type: ignore[arg-type]
    assert state.requests[-1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp_c\":3}"}

    pieces = [c async for c in await client.aio.models.generate_content_stream(model="assist", contents="Weather?", config=config)]
    assert state.requests[-1]["stream"] is True
    assert "".join(p.text or "" for p in pieces if p.candidates and p.candidates[0].content and p.candidates[0].content.parts
                   and p.candidates[0].content.parts[0].text) == "Checking."
    last = pieces[-1]
    assert last.candidates is not None and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.function_calls is not None and last.function_calls[0].args == {"city": "Oslo"}
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count == 48

    counted = await client.aio.models.count_tokens(model="assist", contents="x" * 400)
    assert counted.total_tokens == 105

    with pytest.raises(errors.ClientError) as info:
        await client.aio.models.generate_content(model="missing", contents="x")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"

    state.cut = True
    with pytest.raises(errors.APIError):
        async for _ in await client.aio.models.generate_content_stream(model="assist", contents="x"):
            pass

"""Inbound translators: what they refuse, error envelopes, cut streams (goldens cover the happy paths)."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import ErrorResponse

from modelroute.sidecar.translate import (
    ChatStreamToAnthropic,
    ChatStreamToGemini,
    StreamError,
    TranslationError,
    anthropic_error,
    anthropic_error_from_openai,
    anthropic_sse,
    anthropic_to_chat_request,
    chat_to_anthropic_request,
    gemini_error,
    gemini_error_from_openai,
    gemini_sse,
    gemini_to_chat_request,
)
from modelroute.sidecar.translate.anthropic_inbound import error_event
from modelroute.sidecar.translate.gemini_inbound import error_chunk, openapi_to_json_schema, route_of

MSG: dict[str, Any] = {"model": "r", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("body", "message"), [
    ({**MSG, "model": ""}, "model is required"),
    ({**MSG, "messages": []}, "non-empty"),
    ({**MSG, "messages": [{"role": "system", "content": "x"}]}, "user or assistant"),
    ({**MSG, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tool"),
    ({**MSG, "messages": [{"role": "user", "content": [{"type": "search_result", "source": "x"}]}]}, "not supported"),
    ({**MSG, "messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}]}]}, "not supported"),
    ({**MSG, "tool_choice": {"type": "tool"}}, "needs a name"),
])
def test_anthropic_request_refusals(body: dict[str, Any], message: str) -> None:
    with pytest.raises(TranslationError, match=message):
        anthropic_to_chat_request(body)


def test_anthropic_round_trip_through_the_forward_translator() -> None:
    # Anthropic app -> pivot -> Anthropic provider: the wire request comes back equivalent.
    body = {**MSG, "system": "S", "temperature": 0.5, "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]}
    out = chat_to_anthropic_request(anthropic_to_chat_request(body), model="claude-haiku-4-5", api_version="2023-06-01")
    assert out["system"] == "S" and out["stop_sequences"] == ["END"] and out["temperature"] == 0.5 and "extra_body" not in out
    assert out["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
    ]
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]


@pytest.mark.parametrize(("body", "message"), [
    ({"contents": []}, "non-empty"),
    ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "user or model"),
    ({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"googleSearch": {}}]}, "functionDeclarations"),
    ({"contents": [{"parts": [{"fileData": {"fileUri": "gs://b/a.pdf", "mimeType": "application/pdf"}}]}]}, "only supported for images"),
    ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}, "answers no earlier"),
    ({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}, "unsupported part"),
])
def test_gemini_request_refusals(body: dict[str, Any], message: str) -> None:
    with pytest.raises(TranslationError, match=message):
        gemini_to_chat_request(body, route="r")


def test_gemini_request_details() -> None:
    out = gemini_to_chat_request({"contents": [{"parts": [{"text": "hi"}]}],
                                  "generationConfig": {"responseMimeType": "application/json"}}, route=route_of("models/r"))
    assert out == {"model": "r", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}
    pdf = gemini_to_chat_request({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "QQ=="}}]}]}, route="r")
    assert pdf["messages"][0]["content"] == [{"type": "file", "file": {"file_data": "data:application/pdf;base64,QQ=="}}]
    assert openapi_to_json_schema({"type": "ARRAY", "items": {"type": "INTEGER"}, "max_items": "3"}) == {
        "type": "array", "items": {"type": "integer"}, "maxItems": 3}


def test_error_envelopes() -> None:
    body = anthropic_error(429, "slow down")
    assert body == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    ErrorResponse.model_validate(body)
    assert anthropic_error(529, "x")["error"]["type"] == "overloaded_error"
    assert anthropic_error(503, "x")["error"]["type"] == "api_error"
    assert anthropic_error(413, "x")["error"]["type"] == "request_too_large"
    openai_body = {"error": {"message": "unknown route 'x'; known: a, b", "type": "not_found_error", "param": "model", "code": None}}
    assert anthropic_error_from_openai(404, openai_body)["error"] == {"type": "not_found_error", "message": "unknown route 'x'; known: a, b"}
    assert gemini_error(429, "slow") == {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}
    assert gemini_error_from_openai(504, openai_body)["error"]["status"] == "DEADLINE_EXCEEDED"
    assert gemini_error(422, "invalid output")["error"]["status"] == "FAILED_PRECONDITION"


def test_cut_streams_end_with_an_error_not_a_clean_end() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": None}]}
    anthropic = ChatStreamToAnthropic(model="m", id="c")
    events = anthropic.feed(chunk)
    assert [e["type"] for e in events] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    with pytest.raises(StreamError) as info:
        anthropic.finish()
    event = error_event(info.value)
    assert event["type"] == "error" and anthropic_sse(event).startswith(b"event: error\ndata: {")
    assert error_event(StreamError("busy", error_type="overloaded_error"))["error"]["type"] == "overloaded_error"

    gemini = ChatStreamToGemini(model="m", id="c")
    assert gemini.feed(chunk)[0]["candidates"][0]["content"]["parts"] == [{"text": "par"}]
    with pytest.raises(StreamError) as info:
        gemini.finish()
    frame = gemini_sse(error_chunk(info.value))
    assert frame.startswith(b'data: {"error":{"code":503')  # the SDK raises on a line starting {"error":


def test_anthropic_app_served_by_gemini_streaming_tool_use() -> None:
    """Anthropic request -> pivot -> Gemini request; Gemini stream -> pivot -> Anthropic events the SDK accumulates."""
    from anthropic.lib.streaming._messages import accumulate_event

    from modelroute.sidecar.translate import GeminiStreamToChat, chat_to_gemini_request

    body = {**MSG, "stream": True, "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}
    chat_request = anthropic_to_chat_request(body)
    gemini_kwargs = chat_to_gemini_request(chat_request, model="gemini-2.5-flash")
    assert gemini_kwargs["config"]["tools"][0]["function_declarations"][0]["name"] == "get_weather"

    upstream = GeminiStreamToChat(model="gemini-2.5-flash", id="chatcmpl-g", created=1,
                                  include_usage=bool(chat_request["stream_options"]["include_usage"]))
    app = ChatStreamToAnthropic(model="gemini-2.5-flash", id="chatcmpl-g")
    gemini_chunks: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me check."}]}, "index": 0}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
                         "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 7, "totalTokenCount": 27}},
    ]
    events: list[dict[str, Any]] = []
    for g in gemini_chunks:
        for chunk in upstream.feed(g):
            events.extend(app.feed(chunk))
    for chunk in upstream.finish():
        events.extend(app.feed(chunk))
    events.extend(app.finish())

    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for event in events:
        if event["type"] != "ping":
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)  # type: ignore[arg-type]
    assert snapshot.stop_reason == "tool_use"
    assert snapshot.content[0].text == "Let me check."
    assert snapshot.content[1].name == "get_weather" and snapshot.content[1].input == {"city": "Oslo"}
    assert snapshot.usage.input_tokens == 20 and snapshot.usage.output_tokens == 7


def test_gemini_app_served_by_anthropic_tool_use() -> None:
    """Gemini request -> pivot -> Anthropic request; Anthropic message -> pivot -> Gemini response."""
    from google.genai import types as gtypes

    from modelroute.sidecar.translate import (
        anthropic_to_chat_response,
        chat_to_anthropic_request,
        chat_to_gemini_response,
    )

    body = {"contents": [{"role": "user", "parts": [{"text": "Weather in Oslo?"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": {"type": "object"}}]}]}
    kwargs = chat_to_anthropic_request(gemini_to_chat_request(body, route="assist"), model="claude-haiku-4-5")
    assert kwargs["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [{"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}],
               "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 5}}
    out = chat_to_gemini_response(anthropic_to_chat_response(message, created=1))
    response = gtypes.GenerateContentResponse.model_validate(out)
    assert response.function_calls is not None
    call = response.function_calls[0]
    assert (call.id, call.name, call.args) == ("toolu_9", "get_weather", {"city": "Oslo"})
    assert response.usage_metadata is not None and response.usage_metadata.total_token_count == 17

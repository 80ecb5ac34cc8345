"""Failure paths and hot-path properties of the translators (the golden files cover the happy paths)."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.api.v1alpha1 import Params
from modelroute.sidecar.translate import (
    AnthropicStreamToChat,
    GeminiStreamToChat,
    OpenAIStreamToChat,
    StreamError,
    TranslationError,
    apply_params,
    chat_to_anthropic_request,
    chat_to_gemini_request,
    chat_to_openai_request,
    wants_usage,
)

Json = dict[str, Any]
USER = {"role": "user", "content": "hi"}


def _req(**extra: Any) -> Json:
    return {"model": "r", "messages": [USER], **extra}


def _stream(kind: str, include_usage: bool = True) -> Any:
    cls = {"anthropic": AnthropicStreamToChat, "gemini": GeminiStreamToChat}[kind]
    return cls(model="m", id="chatcmpl-1", created=1, include_usage=include_usage)


# ---- hot path: no copies of the conversation ----------------------------------------

def test_openai_request_shares_the_message_list_without_a_system_prompt() -> None:
    request = _req(temperature=0.5)
    kwargs = chat_to_openai_request(request, model="gpt-4o-mini", params=Params(temperature=0.1))
    assert kwargs["messages"] is request["messages"]
    assert kwargs["temperature"] == 0.1 and request["temperature"] == 0.5


def test_system_prompt_copies_the_list_but_not_the_messages() -> None:
    request = _req()
    out = apply_params(request, None, "sys")
    assert out["messages"][1] is USER and request["messages"] == [USER]


def test_stream_options_forced_and_app_choice_readable() -> None:
    request = _req(stream=True)
    assert chat_to_openai_request(request, model="m")["stream_options"] == {"include_usage": True}
    assert not wants_usage(request)
    assert wants_usage(_req(stream=True, stream_options={"include_usage": True}))
    assert "stream_options" not in chat_to_openai_request(_req(), model="m")


def test_sdk_only_keys_from_the_app_are_not_forwarded() -> None:
    kwargs = chat_to_openai_request(_req(timeout=1, extra_headers={"x": "y"}), model="m")
    assert "timeout" not in kwargs and "extra_headers" not in kwargs and "extra_body" not in kwargs


# ---- requests that cannot be translated ------------------------------------------------

@pytest.mark.parametrize(
    "request_",
    [
        _req(n=2),
        {"model": "r", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]},
        _req(tools=[{"type": "custom", "custom": {"name": "x"}}]),
        {"model": "r", "messages": [{"role": "function", "name": "f", "content": "x"}]},
        {"model": "r", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]},
        _req(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice={"type": "function", "function": {}}),
    ],
)
def test_anthropic_rejects_what_it_cannot_express(request_: Json) -> None:
    with pytest.raises(TranslationError):
        chat_to_anthropic_request(request_, model="claude-haiku-4-5")


@pytest.mark.parametrize(
    "request_",
    [
        {"model": "r", "messages": [USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}]},
        {"model": "r", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
        {"model": "r", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        {"model": "r", "messages": "hi"},
    ],
)
def test_gemini_rejects_what_it_cannot_express(request_: Json) -> None:
    with pytest.raises(TranslationError):
        chat_to_gemini_request(request_, model="gemini-2.5-flash")


def test_tool_choice_none_maps_for_both_providers() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert chat_to_anthropic_request(_req(tools=tools, tool_choice="none"), model="m")["tool_choice"] == {"type": "none"}
    config = chat_to_gemini_request(_req(tools=tools, tool_choice="none"), model="m")["config"]
    assert config["tool_config"] == {"function_calling_config": {"mode": "NONE"}}


def test_anthropic_default_and_custom_max_tokens() -> None:
    assert chat_to_anthropic_request(_req(), model="m")["max_tokens"] == 1024
    assert chat_to_anthropic_request(_req(), model="m", default_max_tokens=77)["max_tokens"] == 77
    assert chat_to_anthropic_request(_req(max_tokens=5), model="m", params=Params(max_tokens=3))["max_tokens"] == 3


# ---- streams that fail -------------------------------------------------------------------

def test_anthropic_error_event_raises_with_the_provider_type() -> None:
    s = _stream("anthropic")
    s.feed({"type": "message_start", "message": {"model": "claude", "usage": {"input_tokens": 1, "output_tokens": 1}}})
    with pytest.raises(StreamError) as info:
        s.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.error_type == "overloaded_error" and info.value.retryable
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_cut_stream_does_not_look_complete(kind: str) -> None:
    s = _stream(kind)
    if kind == "anthropic":
        chunks = s.feed({"type": "message_start", "message": {"model": "claude", "usage": {"input_tokens": 1, "output_tokens": 1}}})
        chunks += s.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        chunks += s.feed({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}})
    else:
        chunks = s.feed({"candidates": [{"content": {"role": "model", "parts": [{"text": "par"}]}, "index": 0}]})
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "par"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    with pytest.raises(StreamError) as info:
        s.finish()
    assert info.value.error_type == "incomplete_stream"


def test_openai_cut_stream_does_not_look_complete() -> None:
    s = OpenAIStreamToChat(model="m", include_usage=False)
    s.feed({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "a"}}]})
    with pytest.raises(StreamError):
        s.finish()


def test_gemini_error_chunk_raises() -> None:
    with pytest.raises(StreamError) as info:
        _stream("gemini").feed({"error": {"code": 503, "status": "UNAVAILABLE", "message": "overloaded"}})
    assert info.value.retryable


def test_gemini_blocked_prompt_in_a_stream_finishes_with_content_filter() -> None:
    s = _stream("gemini", include_usage=False)
    chunks = s.feed({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}})
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert s.finish() == []
    assert s.usage == {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}


def test_anthropic_unknown_and_duplicate_events_are_harmless() -> None:
    s = _stream("anthropic", include_usage=False)
    start = {"type": "message_start", "message": {"model": "claude", "usage": {"input_tokens": 2, "output_tokens": 1}}}
    assert len(s.feed(start)) == 1
    assert s.feed({"type": "some_future_event"}) == []
    s.feed({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4, "input_tokens": None}})
    assert len(s.feed({"type": "message_stop"})) == 1
    assert s.feed({"type": "message_stop"}) == []
    assert s.finish() == []
    assert s.usage == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}


@pytest.mark.parametrize("translate", [chat_to_anthropic_request, chat_to_gemini_request])
def test_a_conversation_of_only_system_messages_is_rejected(translate: Any) -> None:
    with pytest.raises(TranslationError):
        translate({"model": "r", "messages": [{"role": "system", "content": "x"}]}, model="m")


@pytest.mark.parametrize("content", [[], [{"type": "thinking", "thinking": "hm", "signature": "s"}]])
def test_an_anthropic_user_turn_without_content_is_refused_at_the_inbound(content: Any) -> None:
    # Strict emulators found it: it became "messages": [] for an OpenAI target, which the API refuses.
    from modelroute.sidecar.translate.anthropic_inbound import anthropic_to_chat_request

    body = {"model": "r", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    with pytest.raises(TranslationError, match=r"messages\[0\]\.content: all messages must have non-empty content"):
        anthropic_to_chat_request(body)


@pytest.mark.parametrize("parts", [[], [{"text": "hm", "thought": True}]])
def test_a_gemini_user_turn_without_parts_is_refused_at_the_inbound(parts: Any) -> None:
    from modelroute.sidecar.translate.gemini_inbound import gemini_to_chat_request

    with pytest.raises(TranslationError, match=r"contents\[0\]\.parts: contents.parts must not be empty"):
        gemini_to_chat_request({"contents": [{"role": "user", "parts": parts}]}, route="r")

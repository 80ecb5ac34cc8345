"""A tool result that reports an error keeps that meaning across APIs (docs/tool-conformance.md).

Regression: Anthropic's ``is_error`` reached the pivot as ``Error: `` text and never came back as
``is_error`` on an Anthropic target; a Gemini ``functionResponse`` ``{"error": ...}`` reached other
providers as a plain JSON output; ``Error: `` text reached Gemini as ``{"output": "Error: ..."}``.
"""

from __future__ import annotations

from typing import Any

from modelroute.sidecar.translate import (
    anthropic_to_chat_request,
    chat_to_anthropic_request,
    chat_to_gemini_request,
    gemini_to_chat_request,
)
from modelroute.sidecar.translate.chat import tool_error

Json = dict[str, Any]
CALL: Json = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"X\"}"}}]}


def _chat(content: Any) -> Json:
    return {"model": "r", "messages": [{"role": "user", "content": "Weather?"}, CALL,
                                       {"role": "tool", "tool_call_id": "call_1", "content": content}]}


def test_error_text_is_an_error_on_anthropic_and_gemini_targets() -> None:
    body = chat_to_anthropic_request(_chat("Error: no such city"), model="claude-haiku-4-5")
    assert body["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "no such city", "is_error": True}]
    kwargs = chat_to_gemini_request(_chat("Error: no such city"), model="gemini-2.5-flash")
    assert kwargs["contents"][-1]["parts"][0]["function_response"]["response"] == {"error": "no such city"}


def test_plain_results_stay_plain() -> None:
    body = chat_to_anthropic_request(_chat("sunny"), model="claude-haiku-4-5")
    assert body["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]
    kwargs = chat_to_gemini_request(_chat("sunny"), model="gemini-2.5-flash")
    assert kwargs["contents"][-1]["parts"][0]["function_response"]["response"] == {"output": "sunny"}
    assert tool_error("sunny") is None and tool_error("Error: x") == "x"


def test_anthropic_is_error_round_trips() -> None:
    app: Json = {"model": "r", "max_tokens": 50, "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "X"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such city", "is_error": True}]}]}
    chat = anthropic_to_chat_request(app)
    assert chat["messages"][-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no such city"}
    again = chat_to_anthropic_request(chat, model="claude-haiku-4-5")
    assert again["messages"][-1]["content"] == app["messages"][-1]["content"]
    already = {**app, "messages": [*app["messages"][:2], {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Error: no such city", "is_error": True}]}]}
    assert anthropic_to_chat_request(already)["messages"][-1]["content"] == "Error: no such city"  # not prefixed twice


def test_gemini_error_response_round_trips() -> None:
    app: Json = {"contents": [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "X"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"error": "no such city"}}}]}]}
    chat = gemini_to_chat_request(app, route="r")
    assert chat["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "Error: no such city"}
    again = chat_to_gemini_request(chat, model="gemini-2.5-flash")
    assert again["contents"][-1]["parts"][0]["function_response"] == {
        "name": "get_weather", "response": {"error": "no such city"}, "id": "call_0"}
    structured = {**app, "contents": [*app["contents"][:2], {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"error": {"code": 404}, "city": "X"}}}]}]}
    chat = gemini_to_chat_request(structured, route="r")
    assert chat["messages"][-1]["content"] == 'Error: {"error":{"code":404},"city":"X"}'
    again = chat_to_gemini_request(chat, model="gemini-2.5-flash")
    assert again["contents"][-1]["parts"][0]["function_response"]["response"] == {"error": {"code": 404}, "city": "X"}

"""Prompt-cache marks through the pivot: Anthropic in -> Anthropic out unchanged; stripped or dropped elsewhere; the header."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from anthropic.types import message_create_params

from modelroute.sidecar.translate import cachemarks
from modelroute.sidecar.translate.anthropic import chat_to_anthropic_request
from modelroute.sidecar.translate.anthropic_inbound import anthropic_to_chat_request, usage_to_anthropic
from modelroute.sidecar.translate.errors import TranslationError
from modelroute.sidecar.translate.gemini import chat_to_gemini_request
from modelroute.sidecar.translate.openai import chat_to_openai_request
from modelroute.sidecar.translate.openai_responses import chat_to_responses_request

EPH: Any = {"type": "ephemeral"}
HOUR: Any = {"type": "ephemeral", "ttl": "1h"}

# Marks on every block kind that can carry one.
MARKED: Any = {
    "model": "r", "max_tokens": 100, "cache_control": EPH,
    "system": [{"type": "text", "text": "You are helpful."}, {"type": "text", "text": "Big doc", "cache_control": HOUR}],
    "tools": [{"name": "get", "input_schema": {"type": "object"}, "cache_control": EPH}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPH},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                                      "cache_control": EPH}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok", "cache_control": EPH},
                                          {"type": "tool_use", "id": "t1", "name": "get", "input": {}, "cache_control": EPH}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42", "cache_control": EPH},
                                     {"type": "text", "text": "more"}]},
    ],
}


def _sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def test_anthropic_marks_round_trip_unchanged() -> None:
    original = copy.deepcopy(MARKED)
    chat = anthropic_to_chat_request(MARKED)
    assert original == MARKED  # not mutated
    assert cachemarks.count(chat) == 8
    out = chat_to_anthropic_request(chat, model="claude-haiku-4-5")
    expected = {k: v for k, v in MARKED.items() if k != "model"}
    assert _sorted({k: v for k, v in out.items() if k != "model"}) == _sorted(expected)


def test_other_providers_never_see_marks() -> None:
    chat = anthropic_to_chat_request(MARKED)
    openai_body = chat_to_openai_request(chat, model="gpt-4o-mini")
    assert "cache_control" not in repr(openai_body)
    # the pivot keeps its shape otherwise: one system message per system block, their text as before
    # (a marked part alone goes back to a string: the same prompt for OpenAI's own prefix cache)
    assert [m["content"] for m in openai_body["messages"][:2]] == [[{"type": "text", "text": "You are helpful."}], "Big doc"]
    gemini = chat_to_gemini_request(chat, model="gemini-2.5-flash")
    assert "cache_control" not in repr(gemini)
    assert gemini["config"]["system_instruction"] == {"parts": [{"text": "You are helpful.\n\nBig doc"}]}
    assert "cache_control" not in repr(chat_to_responses_request(chat, model="gpt-4o-mini"))


def test_unmarked_requests_keep_their_shape() -> None:
    body: Any = {"model": "r", "max_tokens": 10, "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    chat = anthropic_to_chat_request(body)
    assert chat["messages"] == [{"role": "system", "content": "a\n\nb"}, {"role": "user", "content": "hi"}]
    assert chat_to_anthropic_request(chat, model="m")["system"] == "a\n\nb"
    plain: Any = {"model": "r", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert cachemarks.strip(plain) is plain  # nothing to strip: no copy


def test_bad_marks_are_a_400_naming_the_field() -> None:
    with pytest.raises(TranslationError, match=r"system\[0\]\.cache_control must be an object"):
        anthropic_to_chat_request({"model": "r", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
                                   "system": [{"type": "text", "text": "x", "cache_control": "yes"}]})
    with pytest.raises(TranslationError, match="cache_control must be an object"):
        anthropic_to_chat_request({"model": "r", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
                                   "cache_control": 5})


def test_header_parsing() -> None:
    assert cachemarks.parse_header("system, tools") == (("system", "tools"), None)
    assert cachemarks.parse_header("all,ttl=1h") == (("system", "tools", "messages"), "1h")
    assert cachemarks.parse_header("MESSAGES,messages") == (("messages",), None)
    for bad, what in (("everything", "unknown value 'everything'"), ("ttl=2h", "unknown value 'ttl=2h'"),
                      ("", "name at least one"), ("ttl=5m", "name at least one")):
        with pytest.raises(TranslationError, match=what) as info:
            cachemarks.parse_header(bad)
        assert info.value.param == "x-modelroute-prompt-cache"


def test_header_marks_become_anthropic_breakpoints() -> None:
    request: Any = {"model": "r", "tools": [{"type": "function", "function": {"name": "a"}},
                                            {"type": "function", "function": {"name": "b"}}],
                    "messages": [{"role": "system", "content": "Rules."}, {"role": "user", "content": "q1"},
                                 {"role": "assistant", "content": "a1"}, {"role": "user", "content": [{"type": "text", "text": "q2"}]}]}
    before = copy.deepcopy(request)
    marked = cachemarks.mark(request, ("system", "tools", "messages"), "1h")
    assert request == before
    out = chat_to_anthropic_request(marked, model="claude-haiku-4-5", system="Route prompt.")
    hour = {"type": "ephemeral", "ttl": "1h"}
    assert out["system"] == [{"type": "text", "text": "Route prompt."}, {"type": "text", "text": "Rules.", "cache_control": hour}]
    assert [t.get("cache_control") for t in out["tools"]] == [None, hour]
    assert out["messages"][0] == {"role": "user", "content": "q1"}
    assert out["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "q2", "cache_control": hour}]}
    # OpenAI gets the same prompt (a marked part alone goes back to a string)
    assert chat_to_openai_request(marked, model="gpt-4o-mini")["messages"] == [*before["messages"][:3], {"role": "user", "content": "q2"}]


def test_header_marks_the_last_tool_result_turn() -> None:
    request: Any = {"model": "r", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "result"}]}
    out = chat_to_anthropic_request(cachemarks.mark(request, ("messages",)), model="m")
    assert out["messages"][-1] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "c1", "content": "result", "cache_control": EPH}]}
    assert cachemarks.mark({"model": "r", "messages": [{"role": "user", "content": ""}]}, ("messages", "system", "tools")) == \
        {"model": "r", "messages": [{"role": "user", "content": ""}]}  # nothing to mark: unchanged


def test_more_than_four_breakpoints_refused() -> None:
    chat = anthropic_to_chat_request(MARKED)
    with pytest.raises(TranslationError, match="would carry 9 cache breakpoints; Anthropic takes at most 4"):
        cachemarks.mark(chat, ("system", "tools", "messages"))


def test_marked_body_is_a_valid_sdk_request() -> None:
    out = chat_to_anthropic_request(anthropic_to_chat_request(MARKED), model="claude-haiku-4-5")
    fields = set(message_create_params.MessageCreateParamsNonStreaming.__annotations__) | set(
        message_create_params.MessageCreateParamsBase.__annotations__)
    assert set(out) <= fields


def test_cache_usage_in_anthropic_shape() -> None:
    usage = {"prompt_tokens": 1600, "completion_tokens": 7, "total_tokens": 1607,
             "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 500}}
    assert usage_to_anthropic(usage) == {"input_tokens": 100, "output_tokens": 7,
                                         "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 500,
                                         "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0}}
    hour = {**usage, "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 500, "cache_write_1h_tokens": 200}}
    assert usage_to_anthropic(hour)["cache_creation"] == {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 200}

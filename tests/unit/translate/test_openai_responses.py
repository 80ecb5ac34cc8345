"""The outbound Responses translators (``api: responses``) against the inbound ones: both directions agree.

Every Responses golden transcript goes app body -> chat -> upstream Responses body (which the
openai SDK's ``ResponseCreateParams`` must accept) -> chat again, unchanged; chat completions and
chat streams go through a ``Response`` and its typed events and come back the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import TypeAdapter

from modelroute.sidecar.translate.errors import StreamError, TranslationError
from modelroute.sidecar.translate.openai_responses import (
    ResponsesStreamToChat,
    chat_to_responses_request,
    responses_to_chat_response,
)
from modelroute.sidecar.translate.responses_inbound import (
    ChatStreamToResponses,
    chat_to_responses_response,
    responses_to_chat_request,
)

Json = dict[str, Any]
GOLDEN = Path(__file__).parent / "golden" / "responses_inbound"


def _case(kind: str) -> list[Path]:
    return sorted(GOLDEN.glob(f"{kind}_*.json"))


@pytest.mark.parametrize("path", _case("request"), ids=lambda p: p.stem)
def test_request_round_trip(path: Path) -> None:
    body = json.loads(path.read_text())["input"]
    chat = responses_to_chat_request(body)
    upstream = chat_to_responses_request(chat, model="gpt-4o-mini")
    if chat.get("stream"):
        upstream["stream"] = True
    adapter: Any = TypeAdapter(ResponseCreateParamsStreaming if upstream.get("stream") else ResponseCreateParamsNonStreaming)
    adapter.validate_python(upstream)
    assert upstream["store"] is False
    again = responses_to_chat_request({**upstream, "model": chat["model"]})
    if chat.get("stream"):  # the adapter, not the translator, asks for usage
        again["stream_options"] = chat["stream_options"]
    assert again == chat


@pytest.mark.parametrize("path", _case("response"), ids=lambda p: p.stem)
def test_response_round_trip(path: Path) -> None:
    completion = json.loads(path.read_text())["input"]
    back = responses_to_chat_response(chat_to_responses_response(completion), model="x")
    ChatCompletion.model_validate(back)
    assert back["id"] == f"resp_{completion['id']}"
    assert back["choices"][0]["message"] == {k: v for k, v in completion["choices"][0]["message"].items()
                                             if k != "refusal"}
    assert back["choices"][0]["finish_reason"] == completion["choices"][0]["finish_reason"]
    details = completion["usage"].get("prompt_tokens_details") or {}
    assert back["usage"]["prompt_tokens"] == completion["usage"]["prompt_tokens"]
    assert back["usage"]["prompt_tokens_details"]["cached_tokens"] == details.get("cached_tokens", 0)


@pytest.mark.parametrize("path", _case("stream"), ids=lambda p: p.stem)
def test_stream_round_trip(path: Path) -> None:
    chunks = json.loads(path.read_text())["input"]
    inbound = ChatStreamToResponses(model="m", id="c1")
    events = [e for c in chunks for e in inbound.feed(c)] + inbound.finish()
    outbound = ResponsesStreamToChat(model="m", include_usage=True)
    back = [c for e in events for c in outbound.feed(e)] + outbound.finish()
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in back if c["choices"])
    assert text == "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert outbound.finish_reason == finish
    usage = next((c["usage"] for c in chunks if c.get("usage")), None)
    assert (outbound.usage is None) == (usage is None)


def test_what_the_responses_api_cannot_take_is_refused() -> None:
    for extra in ({"stop": ["END"]}, {"n": 2}):
        with pytest.raises(TranslationError):
            chat_to_responses_request({"model": "r", "messages": [{"role": "user", "content": "x"}], **extra}, model="m")


def test_failed_and_cut_upstream_streams_raise() -> None:
    t = ResponsesStreamToChat(model="m", include_usage=False)
    t.feed({"type": "response.created", "response": {"id": "resp_1", "created_at": 1, "model": "m"}})
    with pytest.raises(StreamError, match="boom"):
        t.feed({"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error",
                                                                                     "message": "boom"}}})
    with pytest.raises(StreamError) as e:
        ResponsesStreamToChat(model="m", include_usage=False).feed(
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})
    assert e.value.retryable
    with pytest.raises(StreamError, match=r"before response\.completed"):
        ResponsesStreamToChat(model="m", include_usage=False).finish()


def test_tool_choice_maps_to_the_responses_shapes() -> None:
    """Regression: every dict tool_choice became ``{"type": "function", "name": ""}`` (allowed_tools included)."""
    tools = [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
             {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}]
    base: Json = {"model": "r", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    cases: list[tuple[Any, Any]] = [
        ("none", "none"), ("required", "required"), ("auto", "auto"),
        ({"type": "function", "function": {"name": "b"}}, {"type": "function", "name": "b"}),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "a"}}]}},
         {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "a"}]}),
    ]
    adapter: Any = TypeAdapter(ResponseCreateParamsNonStreaming)
    for choice, expected in cases:
        out = chat_to_responses_request({**base, "tool_choice": choice}, model="gpt-4o-mini")
        assert out["tool_choice"] == expected
        adapter.validate_python(out)
    for bad in ({"type": "function", "function": {}}, {"type": "custom", "custom": {"name": "x"}}):
        with pytest.raises(TranslationError, match="tool_choice"):
            chat_to_responses_request({**base, "tool_choice": bad}, model="gpt-4o-mini")

"""The Responses inbound translators: what they refuse (naming the field), how a broken stream ends, and
that any chat stream becomes events the openai SDK accumulates into the non-streaming answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from modelroute.sidecar.translate import chat
from modelroute.sidecar.translate.errors import StreamError, TranslationError
from modelroute.sidecar.translate.responses_inbound import (
    ChatStreamToResponses,
    chat_to_responses_response,
    responses_to_chat_request,
)

Json = dict[str, Any]
EVENTS: Any = TypeAdapter(ResponseStreamEvent)


def chunk(delta: Json, finish: str | None = None) -> Json:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@pytest.mark.parametrize(("extra", "param", "says"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "send the whole conversation as `input` items"),
    ({"conversation": {"id": "conv_1"}}, "conversation", "keeps no responses"),
    ({"background": True}, "background", "background"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt", "stored prompt"),
    ({"truncation": "auto"}, "truncation", "disabled"),
    ({"include": ["message.output_text.logprobs"]}, "include[0]", "not supported"),
    ({"store": "yes"}, "store", "boolean"),
    ({"bogus": 1}, "bogus", "unknown field"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type", "function tools are"),
    ({"tools": [{"type": "function"}]}, "tools[0].name", "non-empty string"),
    ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice", "not supported"),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", "object"),
    ({"max_output_tokens": 0}, "max_output_tokens", "positive"),
    ({"temperature": "hot"}, "temperature", "number"),
    ({"input": []}, "input", "non-empty"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "keeps no responses"),
    ({"input": [{"type": "computer_call"}]}, "input[0].type", "not supported"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "user, assistant"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, "input[0].content[0].image_url",
     "Files API"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", "non-empty string"),
])
def test_refused_with_the_field_named(extra: Json, param: str, says: str) -> None:
    with pytest.raises(TranslationError) as e:
        responses_to_chat_request({"model": "r", "input": "hi", **extra})
    assert e.value.param == param and says in str(e.value)


def test_accepted_defaults_are_not_refused() -> None:
    out = responses_to_chat_request({"model": "r", "input": "hi", "store": True, "background": False,
                                     "truncation": "disabled", "include": [], "previous_response_id": None,
                                     "stream_options": {"include_obfuscation": False}})
    assert out == {"model": "r", "messages": [{"role": "user", "content": "hi"}]}


def test_a_call_after_a_tool_result_starts_a_new_assistant_turn() -> None:
    call = {"type": "function_call", "name": "f", "arguments": "{}"}
    out = responses_to_chat_request({"model": "r", "input": [
        {"role": "user", "content": "go"}, {**call, "call_id": "a"},
        {"type": "function_call_output", "call_id": "a", "output": "1"}, {**call, "call_id": "b"}]})
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert out["messages"][3]["tool_calls"][0]["id"] == "b"


def test_a_stream_failing_mid_way_ends_failed_never_completed() -> None:
    t = ChatStreamToResponses(model="", id="c1")
    events = t.feed(chunk({"content": "Hel"})) + t.feed(chunk({"tool_calls": [{"index": 0, "id": "k", "function": {
        "name": "f", "arguments": "{"}}]}))
    events += t.failed("the stream from target 'x' failed mid-way", "server_error")
    for e in events:
        EVENTS.validate_python(e)
    types = [e["type"] for e in events]
    assert types[-2:] == ["error", "response.failed"] and "response.completed" not in types
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "server_error",
                                                               "message": "the stream from target 'x' failed mid-way"}
    assert [i["status"] for i in failed["output"]] == ["completed", "incomplete"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_a_failure_before_any_chunk_still_opens_the_response() -> None:
    events = ChatStreamToResponses(model="m", id="c1").failed("boom", "server_error")
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error", "response.failed"]


def test_a_stream_cut_before_its_finish_reason_is_an_error() -> None:
    t = ChatStreamToResponses(model="m", id="c1")
    t.feed(chunk({"content": "Hi"}))
    with pytest.raises(StreamError):
        t.finish()


# ---- stream and non-stream agree, and the openai SDK's stream accumulator accepts every stream ----

_words = st.text(alphabet="ab {}\":,", min_size=1, max_size=6)


@st.composite
def chat_streams(draw: st.DrawFn) -> tuple[list[Json], Json]:
    """A chat chunk stream (text first, then tool calls possibly interleaved) and the completion it adds up to."""
    texts = draw(st.lists(_words, max_size=3))
    ncalls = draw(st.integers(0, 3))
    fragments = draw(st.lists(st.tuples(st.integers(0, max(ncalls - 1, 0)), _words), max_size=6)) if ncalls else []
    finish = draw(st.sampled_from(["tool_calls" if ncalls else "stop", "length"]))
    usage = draw(st.one_of(st.none(), st.builds(lambda p, c, k: {"prompt_tokens": p, "completion_tokens": c,
                                                                 "total_tokens": p + c,
                                                                 "prompt_tokens_details": {"cached_tokens": k}},
                                                st.integers(0, 9), st.integers(0, 9), st.integers(0, 9))))
    chunks = [chunk({"role": "assistant", "content": t}) for t in texts]
    calls: dict[int, Json] = {}
    for index in range(ncalls):  # every call opens (id, name) before its argument fragments
        calls[index] = chat.tool_call(f"call_{index}", f"f{index}", "")
        chunks.append(chunk({"tool_calls": [{"index": index, "id": f"call_{index}", "type": "function",
                                             "function": {"name": f"f{index}", "arguments": ""}}]}))
    for index, args in fragments:
        calls[index]["function"]["arguments"] += args
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": args}}]}))
    chunks.append(chunk({}, finish))
    if usage is not None:
        chunks.append({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                       "usage": usage})
    completion = chat.completion(id="c1", created=1, model="m", usage=usage, choices=[
        chat.choice(0, "".join(texts) or None, [calls[i] for i in sorted(calls)], finish)])
    return chunks, completion


@settings(max_examples=150, deadline=None)
@given(chat_streams())
def test_stream_adds_up_to_the_non_streaming_response(case: tuple[list[Json], Json]) -> None:
    chunks, completion = case
    t = ChatStreamToResponses(model="", id="c1")
    events = [e for c in chunks for e in t.feed(c)] + t.finish()
    state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
    for e in events:
        state.handle_event(EVENTS.validate_python(e))  # raises on any event out of order or of the wrong shape
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    last = events[-1]
    expected = chat_to_responses_response(completion)
    assert last["type"] == ("response.completed" if expected["status"] == "completed" else "response.incomplete")
    assert [e["type"] for e in events].count(last["type"]) == 1 and "response.failed" not in [e["type"] for e in events]
    assert last["response"]["output"] == expected["output"]
    assert last["response"]["usage"] == expected["usage"]
    assert last["response"]["status"] == expected["status"]

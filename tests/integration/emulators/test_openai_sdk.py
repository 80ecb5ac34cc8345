"""The real `openai` SDK against the emulator: answers, streaming, tools, JSON, faults."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import jsonschema
import openai
import pytest

from modelroute.testing.emulators import EmulatorServer, key_fingerprint
from modelroute.testing.sdkviews import function_call

from .conftest import KEY, drain

MSG: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there friend"},
]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


async def test_default_answer_and_usage(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert r.object == "chat.completion"
    assert r._request_id == "req_emu1"
    assert r.model == "gpt-4o-mini"
    assert r.choices[0].message.content == "[openai:gpt-4o-mini] hello there friend"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (5, 4, 9)


async def test_stream_with_usage_chunk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=MSG,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[openai:gpt-4o-mini] hello there friend"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_usage_has_no_usage_chunk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="m", messages=MSG, stream=True)
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tool_call_from_message(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "use get_weather city=Paris days=3"}],
        tools=[WEATHER],
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = function_call(choice.message)
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}
    assert call.id.startswith("call_")


async def test_tool_call_streamed_and_tool_result(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "weather in city=Oslo"}],
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
    )
    name, args, call_id = "", "", ""
    async for c in stream:
        for tc in c.choices[0].delta.tool_calls or ():
            call_id = tc.id or call_id
            name += (tc.function and tc.function.name) or ""
            args += (tc.function and tc.function.arguments) or ""
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Oslo", "days": 1}
    follow_up: list[Any] = [
        {"role": "user", "content": "weather in city=Oslo"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny 21C"},
    ]
    r = await oai.chat.completions.create(model="m", messages=follow_up, tools=[WEATHER])
    assert r.choices[0].message.content == "[openai:m] tool result: sunny 21C"
    assert r.choices[0].finish_reason == "stop"


async def test_no_tool_call_when_not_asked(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(model="m", messages=MSG, tools=[WEATHER])
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].finish_reason == "stop"


async def test_response_formats(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="m",
        messages=MSG,
        response_format={"type": "json_object"},
    )
    assert json.loads(r.choices[0].message.content or "") == {
        "provider": "openai",
        "model": "m",
        "echo": "hello there friend",
    }
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["bug", "billing"]}, "score": {"type": "number"}},
        "required": ["label", "score"],
        "additionalProperties": False,
    }
    r = await oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "classify score=0.5"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "t", "schema": schema, "strict": True},
        },
    )
    doc = json.loads(r.choices[0].message.content or "")
    jsonschema.validate(doc, schema)
    assert doc == {"label": "bug", "score": 0.5}


async def test_max_tokens_and_stop(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(model="m", messages=MSG, max_tokens=2)
    assert r.choices[0].message.content == "[openai:m] hello"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 2
    r = await oai.chat.completions.create(model="m", messages=MSG, stop=[" there"])
    assert r.choices[0].message.content == "[openai:m] hello"
    assert r.choices[0].finish_reason == "stop"


async def test_models_list(oai: openai.AsyncOpenAI) -> None:
    ids = [m.id async for m in oai.models.list()]
    assert "gpt-4o-mini" in ids


async def test_request_log_redacts_key(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    await oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, temperature=0.1)
    [rec] = emu.requests("openai")
    assert rec.body["temperature"] == 0.1 and rec.model == "gpt-4o-mini" and rec.status == 200
    assert rec.headers["authorization"] == key_fingerprint(KEY)
    assert KEY not in json.dumps([r.to_json() for r in emu.requests()])


async def test_missing_auth_is_401_envelope(emu: EmulatorServer) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(emu.openai_url + "/chat/completions", json={"model": "m", "messages": MSG}) as resp,
    ):
        assert resp.status == 401
        body = await resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_bad_request_names_param(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await oai.chat.completions.create(model="m", messages=[])
    assert err.value.status_code == 400
    assert err.value.param == "messages"


# faults ------------------------------------------------------------------------------------


async def test_429_with_retry_after(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="status", status=429, retry_after=2, retry_after_ms=1500, provider="openai", times=1)
    with pytest.raises(openai.RateLimitError) as err:
        await oai.chat.completions.create(model="m", messages=MSG)
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "2"
    assert err.value.response.headers["retry-after-ms"] == "1500"
    assert err.value.type == "requests" and err.value.code == "rate_limit_exceeded"
    # times=1: the next request succeeds
    r = await oai.chat.completions.create(model="m", messages=MSG)
    assert r.choices[0].message.content
    assert [x.fault for x in emu.requests()] == ["status", None]


@pytest.mark.parametrize("stream", [False, True])
async def test_503_is_internal_server_error(
    emu: EmulatorServer, oai: openai.AsyncOpenAI, stream: bool
) -> None:
    emu.fault(kind="status", status=503)
    with pytest.raises(openai.InternalServerError) as err:
        await oai.chat.completions.create(model="m", messages=MSG, stream=stream)
    assert err.value.status_code == 503


async def test_latency_above_timeout(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="latency", latency_ms=600)
    with pytest.raises(openai.APITimeoutError):
        await oai.chat.completions.create(model="m", messages=MSG, timeout=0.2)


async def test_reset_is_connection_error(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="reset")
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="m", messages=MSG)
    assert emu.requests()[0].status == 0


async def test_garbage_body_fails_to_parse(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="garbage")
    with pytest.raises(json.JSONDecodeError):
        await oai.chat.completions.create(model="m", messages=MSG)


async def test_stream_cut_after_chunks(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="stream_cut", after_chunks=2)
    stream = await oai.chat.completions.create(model="m", messages=MSG, stream=True)
    got: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        await drain(stream, got)
    assert len(got) == 2


async def test_stream_error_event(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="stream_error", after_chunks=3, status=500, message="boom")
    stream = await oai.chat.completions.create(model="m", messages=MSG, stream=True)
    got: list[Any] = []
    with pytest.raises(openai.APIError, match="boom"):
        await drain(stream, got)
    assert len(got) == 3


async def test_chunk_latency_slows_stream(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.fault(kind="latency", chunk_latency_ms=300)
    stream = await oai.chat.completions.create(model="m", messages=MSG, stream=True, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await drain(stream)

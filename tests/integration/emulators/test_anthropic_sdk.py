"""The real `anthropic` SDK against the emulator: messages, named SSE events, tools, faults."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import pytest

from modelroute.testing.emulators import EmulatorServer, key_fingerprint
from modelroute.testing.sdkviews import error_type, text_of

from .conftest import KEY, drain

MSG: list[Any] = [{"role": "user", "content": "hello there friend"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


async def test_default_answer_and_usage(anth: anthropic.AsyncAnthropic) -> None:
    m = await anth.messages.create(model="claude-haiku-4-5", max_tokens=64, system="be brief", messages=MSG)
    assert m.type == "message" and m.role == "assistant" and m.model == "claude-haiku-4-5"
    assert m._request_id == "req_emu1"
    assert m.content[0].type == "text"
    assert text_of(m.content[0]) == "[anthropic:claude-haiku-4-5] hello there friend"
    assert m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (5, 4)


async def test_stream_named_events_in_order(anth: anthropic.AsyncAnthropic) -> None:
    stream = await anth.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MSG, stream=True)
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert "".join(text_of(d.delta) for d in deltas) == "[anthropic:claude-haiku-4-5] hello there friend"
    md = events[-2]
    assert md.type == "message_delta"
    assert md.delta.stop_reason == "end_turn" and md.usage.output_tokens == 4


async def test_raw_wire_has_ping_and_event_names(emu: EmulatorServer) -> None:
    body = {"model": "c", "max_tokens": 10, "messages": MSG, "stream": True}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(emu.url + "/v1/messages", json=body, headers=headers) as r,
    ):
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = (await r.read()).decode()
    names = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "message_stop"
    assert emu.requests()[0].headers["x-api-key"] == key_fingerprint(KEY)


async def test_stream_helper_final_message(anth: anthropic.AsyncAnthropic) -> None:
    async with anth.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MSG) as stream:
        pieces = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == text_of(final.content[0]) == "[anthropic:claude-haiku-4-5] hello there friend"
    assert final.usage.output_tokens == 4


async def test_tool_use_blocks(anth: anthropic.AsyncAnthropic) -> None:
    m = await anth.messages.create(
        model="c",
        max_tokens=64,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "call get_weather city=Rome"}],
    )
    assert m.stop_reason == "tool_use"
    [block] = m.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Rome"}
    assert block.id.startswith("toolu_")
    follow: Any = [
        {"role": "user", "content": "call get_weather city=Rome"},
        {"role": "assistant", "content": [b.model_dump() for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "warm"}]},
    ]
    m2 = await anth.messages.create(model="c", max_tokens=64, tools=[WEATHER], messages=follow)
    assert text_of(m2.content[0]) == "[anthropic:c] tool result: warm"


async def test_tool_use_streamed_input_json(anth: anthropic.AsyncAnthropic) -> None:
    async with anth.messages.stream(
        model="c",
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "city=Lima please"}],
    ) as stream:
        events = [e async for e in stream]
        final = await stream.get_final_message()
    assert any(e.type == "input_json" for e in events)
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Lima"}
    assert final.stop_reason == "tool_use"


async def test_max_tokens_stop_reason(anth: anthropic.AsyncAnthropic) -> None:
    m = await anth.messages.create(model="c", max_tokens=2, messages=MSG)
    assert text_of(m.content[0]) == "[anthropic:c] hello"
    assert m.stop_reason == "max_tokens"
    m = await anth.messages.create(model="c", max_tokens=50, stop_sequences=["friend"], messages=MSG)
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == "friend"


async def test_required_headers_and_fields(emu: EmulatorServer) -> None:
    body = {"model": "c", "max_tokens": 10, "messages": MSG}
    async with aiohttp.ClientSession() as s:
        async with s.post(emu.url + "/v1/messages", json=body, headers={"x-api-key": KEY}) as r:
            assert r.status == 400
            err = await r.json()
            assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
            assert "anthropic-version" in err["error"]["message"]
        async with s.post(
            emu.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        ) as r:
            assert r.status == 401
            assert (await r.json())["error"]["type"] == "authentication_error"
        no_max = {"model": "c", "messages": MSG}
        hdrs = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        async with s.post(emu.url + "/v1/messages", json=no_max, headers=hdrs) as r:
            assert r.status == 400
            assert "max_tokens" in (await r.json())["error"]["message"]


async def test_models_list_by_version_header(anth: anthropic.AsyncAnthropic) -> None:
    page = await anth.models.list()
    assert "claude-haiku-4-5" in [m.id for m in page.data]


# faults ------------------------------------------------------------------------------------


async def test_429_rate_limit_error(emu: EmulatorServer, anth: anthropic.AsyncAnthropic) -> None:
    emu.fault(kind="status", status=429, retry_after=7, provider="anthropic")
    with pytest.raises(anthropic.RateLimitError) as err:
        await anth.messages.create(model="c", max_tokens=10, messages=MSG)
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "7"
    assert error_type(err.value) == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True])
async def test_529_overloaded(emu: EmulatorServer, anth: anthropic.AsyncAnthropic, stream: bool) -> None:
    emu.fault(kind="status", status=529, model="c")
    with pytest.raises(anthropic.InternalServerError) as err:
        await anth.messages.create(model="c", max_tokens=10, messages=MSG, stream=stream)
    assert err.value.status_code == 529
    assert isinstance(err.value, anthropic.OverloadedError)
    assert error_type(err.value) == "overloaded_error"
    # the fault was for model "c" only
    ok = await anth.messages.create(model="other", max_tokens=10, messages=MSG)
    assert ok.stop_reason == "end_turn"


async def test_latency_timeout_and_reset(emu: EmulatorServer, anth: anthropic.AsyncAnthropic) -> None:
    f = emu.fault(kind="latency", latency_ms=600, times=1)
    with pytest.raises(anthropic.APITimeoutError):
        await anth.messages.create(model="c", max_tokens=10, messages=MSG, timeout=0.2)
    assert f.applied == 1 and len(emu.faults) == 0
    emu.fault(kind="reset", times=1)
    with pytest.raises(anthropic.APIConnectionError):
        await anth.messages.create(model="c", max_tokens=10, messages=MSG)


async def test_stream_error_event_mid_stream(emu: EmulatorServer, anth: anthropic.AsyncAnthropic) -> None:
    emu.fault(kind="stream_error", status=529, after_chunks=4)
    stream = await anth.messages.create(model="c", max_tokens=10, messages=MSG, stream=True)
    events: list[Any] = []
    with pytest.raises(anthropic.APIStatusError) as err:
        await drain(stream, events)
    got = [e.type for e in events]
    assert got[:2] == ["message_start", "content_block_start"] and len(got) == 3  # ping is not yielded
    assert error_type(err.value) == "overloaded_error"


async def test_stream_cut_has_no_message_stop(emu: EmulatorServer, anth: anthropic.AsyncAnthropic) -> None:
    emu.fault(kind="stream_cut", after_chunks=4)
    stream = await anth.messages.create(model="c", max_tokens=10, messages=MSG, stream=True)
    events: list[Any] = []
    with pytest.raises(Exception) as err:  # httpx2.RemoteProtocolError: incomplete chunked read
        await drain(stream, events)
    got = [e.type for e in events]
    assert "incomplete" in str(err.value) or isinstance(err.value, anthropic.APIConnectionError)
    assert "message_stop" not in got and got[0] == "message_start"


async def test_garbage(emu: EmulatorServer, anth: anthropic.AsyncAnthropic) -> None:
    emu.fault(kind="garbage", stream=False)
    with pytest.raises(json.JSONDecodeError):
        await anth.messages.create(model="c", max_tokens=10, messages=MSG)

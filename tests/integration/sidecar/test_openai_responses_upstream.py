"""openai targets with ``api: responses``: the sidecar calls the Responses API upstream, for any inbound API.

Every body the emulator receives is checked against the openai SDK's own ``ResponseCreateParams``
(and the emulator refuses fields the real API does not have).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import TypeAdapter

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
TAG = f"[openai:{MODELS['openai']}]"
TOOL: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def sent(emu: EmulatorServer) -> dict[str, Any]:
    req = emu.requests("openai")[-1]
    assert req.path == "/v1/responses"
    body: dict[str, Any] = dict(req.body)
    adapter: Any = TypeAdapter(ResponseCreateParamsStreaming if body.get("stream") else ResponseCreateParamsNonStreaming)
    adapter.validate_python(body)
    assert body["store"] is False
    return body


async def test_chat_app_through_the_responses_api(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai", api="responses")], params={"maxTokens": 50, "temperature": 0.3},
                            prompt={"version": "v1", "system": "Be brief."})])
    resp = await sc.client.chat.completions.create(model="r", messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == f"{TAG} hello" and resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    body = sent(emu)
    assert body["input"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    assert body["max_output_tokens"] == 50 and body["temperature"] == 0.3 and body["model"] == MODELS["openai"]

    stream = await sc.client.chat.completions.create(model="r", messages=[{"role": "user", "content": "one two"}],
                                                     stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"{TAG} one two"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert sent(emu)["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
async def test_tools_round_trip_and_json_schema(emu: EmulatorServer, start: Start, stream: bool) -> None:
    sc = await start([route("r", [target(emu, "openai", api="responses")])])
    messages: list[Any] = [{"role": "user", "content": "call get_weather city=Rome"}]
    if stream:
        s = await sc.client.chat.completions.create(model="r", messages=messages, tools=[TOOL], stream=True)
        chunks = [c async for c in s]
        deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
        call_id, name = deltas[0].id, deltas[0].function.name if deltas[0].function else None
        args = "".join(d.function.arguments or "" for d in deltas if d.function)
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    else:
        resp = await sc.client.chat.completions.create(model="r", messages=messages, tools=[TOOL], tool_choice="required")
        (call,) = resp.choices[0].message.tool_calls or []
        assert call.type == "function"
        call_id, name, args = call.id, call.function.name, call.function.arguments
        assert resp.choices[0].finish_reason == "tool_calls"
    assert name == "get_weather" and json.loads(args) == {"city": "Rome"}
    history: list[Any] = [*messages, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "warm"}]
    answer = await sc.client.chat.completions.create(model="r", messages=history, tools=[TOOL])
    assert answer.choices[0].message.content == f"{TAG} tool result: warm"
    items = sent(emu)["input"]
    assert [i.get("type", "message") for i in items] == ["message", "function_call", "function_call_output"]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    doc = await sc.client.chat.completions.create(model="r", messages=[{"role": "user", "content": "n=4"}], response_format={
        "type": "json_schema", "json_schema": {"name": "num", "schema": schema, "strict": True}})
    assert json.loads(doc.choices[0].message.content or "") == {"n": 4}
    assert sent(emu)["text"]["format"]["type"] == "json_schema"


async def test_responses_app_end_to_end_and_token_limit(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai", api="responses")])])
    async with sc.client.responses.stream(model="r", input="a b c", instructions="Be brief.") as s:
        final = await s.get_final_response()
    assert final.output_text == f"{TAG} a b c"
    # 16 is the API's minimum (the strict emulator refuses less, as the real API does)
    short = await sc.client.responses.create(model="r", input=" ".join(["word"] * 40), max_output_tokens=16)
    assert short.status == "incomplete"


async def test_upstream_failures(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai", api="responses"), target(emu, "gemini")])])
    emu.fault(status=503, provider="openai", times=1)
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-modelroute-target"] == "gemini"  # 5xx from the Responses API: fallback as ever
    emu.fault(kind="stream_error", after_chunks=4, status=503, provider="openai", times=1)
    stream = await sc.client.chat.completions.create(
        model="r", messages=[{"role": "user", "content": "a b c d e f g h"}], stream=True)
    got: list[Any] = []
    with pytest.raises(openai.APIError, match="failed mid-way"):
        got.extend([c async for c in stream])  # the upstream's error event ends the app's stream with an error
    # stop sequences cannot be sent through the Responses API: the capability table drops the app's and says so.
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=[{"role": "user", "content": "x"}],
                                                                    stop=["END"])
    assert raw.headers["x-modelroute-dropped-params"] == "stop" and raw.headers["x-modelroute-target"] == "openai"
    assert "stop" not in emu.requests("openai")[-1].body

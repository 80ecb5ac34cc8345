"""Apps on the openai SDK's Responses API (``client.responses``) reach every provider through a route."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
PROVIDERS = ["openai", "anthropic", "gemini"]

WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False},
                "strict": True}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_create_and_stream(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    tag = f"[{provider}:{MODELS[provider]}]"
    resp = await sc.client.responses.create(model="r", input="hello", instructions="Be brief.", temperature=0.5,
                                            max_output_tokens=64)
    assert resp.output_text == f"{tag} hello"
    assert resp.status == "completed" and resp.to_dict()["store"] is False and resp.instructions == "Be brief."
    assert resp.usage is not None and resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.usage.input_tokens_details.cached_tokens == 0

    deltas: list[str] = []
    types: list[str] = []
    async with sc.client.responses.stream(model="r", input="one two three") as stream:
        async for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == f"{tag} one two three"
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert "response.output_item.done" in types
    assert final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_function_tool_round_trip(emu: EmulatorServer, start: Start, provider: str, stream: bool) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    question: list[Any] = [{"role": "user", "content": "call get_weather city=Paris"}]
    first: Any
    if stream:
        async with sc.client.responses.stream(model="r", input=question, tools=[WEATHER]) as s:
            args = "".join([e.delta async for e in s if e.type == "response.function_call_arguments.delta"])
            first = await s.get_final_response()
        assert json.loads(args) == {"city": "Paris"}
    else:
        first = await sc.client.responses.create(model="r", input=question, tools=[WEATHER], tool_choice="auto")
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    history: list[Any] = [*question, calls[0].model_dump(exclude_none=True),
                          {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}]
    second = await sc.client.responses.create(model="r", input=history, tools=[WEATHER])
    # (gemini's functionResponse wraps a plain-text result as {"output": ...})
    assert second.output_text.startswith(f"[{provider}:{MODELS[provider]}] tool result: ") and "sunny" in second.output_text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_forced_tool_choice(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    resp = await sc.client.responses.create(model="r", input="hi", tools=[WEATHER],
                                            tool_choice={"type": "function", "name": "get_weather"})
    assert [o.type for o in resp.output] == ["function_call"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_json_schema_text_format(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
              "required": ["city", "temp"], "additionalProperties": False}
    resp = await sc.client.responses.create(
        model="r", input="weather city=Oslo temp=3",
        text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
    assert json.loads(resp.output_text) == {"city": "Oslo", "temp": 3}
    assert resp.text is not None and resp.text.format is not None and resp.text.format.type == "json_schema"


async def test_token_limit_is_incomplete(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])
    resp = await sc.client.responses.create(model="r", input="a b c d e f g h i j", max_output_tokens=3)
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None and resp.incomplete_details.reason == "max_output_tokens"


async def test_fallback_on_5xx(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai"), target(emu, "gemini")])])
    emu.fault(status=503, provider="openai")
    raw = await sc.client.responses.with_raw_response.create(model="r", input="hello")
    assert raw.headers["x-modelroute-target"] == "gemini"
    assert raw.parse().output_text == f"[gemini:{MODELS['gemini']}] hello"
    async with sc.client.responses.stream(model="r", input="hello") as s:
        final = await s.get_final_response()
    assert final.output_text == f"[gemini:{MODELS['gemini']}] hello"


@pytest.mark.parametrize("kind", ["stream_cut", "stream_error"])
async def test_stream_failing_mid_way_is_failed(emu: EmulatorServer, start: Start, kind: str) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])
    emu.fault(kind=kind, after_chunks=5, status=503, provider="anthropic")
    types: list[str] = []
    failed: Any = None
    async with sc.client.responses.stream(model="r", input="a b c d e f g h i j k l") as s:
        async for event in s:
            types.append(event.type)
            if event.type == "response.failed":
                failed = event.response
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await s.get_final_response()
    assert "response.output_text.delta" in types
    assert types[-2:] == ["error", "response.failed"] and "response.completed" not in types
    assert failed.status == "failed" and failed.error is not None and "failed mid-way" in failed.error.message


async def test_refusals_name_the_field(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"truncation": "auto"}, "truncation"),
        ({"extra_body": {"bogus": 1}}, "bogus"),
    ]
    for extra, param in cases:
        kwargs: dict[str, Any] = {"model": "r", "input": "hi", **extra}
        with pytest.raises(openai.BadRequestError) as e:
            await sc.client.responses.create(**kwargs)
        assert e.value.param == param, (extra, e.value.body)
    with pytest.raises(openai.BadRequestError) as e:
        await sc.client.responses.create(model="r", input="hi", previous_response_id="resp_1")
    assert "send the whole conversation as `input` items" in e.value.message
    with pytest.raises(openai.NotFoundError) as nf:
        await sc.client.responses.create(model="nope", input="hi")
    assert "known routes: r" in nf.value.message
    with pytest.raises(openai.NotFoundError) as nf:
        await sc.client.responses.retrieve("resp_123")
    assert "store: false" in nf.value.message
    # store: true (the API's default) is accepted; the answer says it was not stored.
    resp = await sc.client.responses.create(model="r", input="hi", store=True)
    assert resp.to_dict()["store"] is False


async def test_params_the_target_cannot_take_are_dropped_and_named(emu: EmulatorServer, start: Start) -> None:
    # anthropic at the SDK's default API version takes no sampling params: the app's are dropped, never sent.
    sc = await start([route("r", [target(emu, "anthropic")])])
    raw = await sc.client.responses.with_raw_response.create(model="r", input="hello", temperature=0.7, top_p=0.9,
                                                             max_output_tokens=40, instructions="Be brief.")
    assert raw.headers["x-modelroute-dropped-params"] == "temperature,top_p"
    body = dict(emu.requests("anthropic")[-1].body)
    assert body["max_tokens"] == 40 and "temperature" not in body and "top_p" not in body
    assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert raw.parse().output_text.endswith("hello")

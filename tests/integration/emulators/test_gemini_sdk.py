"""The real `google-genai` SDK against the emulator: generateContent, SSE, functions, faults."""

from __future__ import annotations

import json

import aiohttp
import jsonschema
import pytest
from google import genai
from google.genai import errors, types

from modelroute.testing.emulators import EmulatorServer, key_fingerprint

from .conftest import KEY, drain, gemini_client

WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)


async def test_default_answer_and_usage(emu: EmulatorServer, gem: genai.Client) -> None:
    r = await gem.aio.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello there friend",
        config=types.GenerateContentConfig(system_instruction="be brief"),
    )
    assert r.text == "[gemini:gemini-2.5-flash] hello there friend"
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert u is not None
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (5, 4, 9)
    [rec] = emu.requests("gemini")
    assert rec.model == "gemini-2.5-flash" and rec.path.endswith(":generateContent")
    assert rec.headers["x-goog-api-key"] == key_fingerprint(KEY)
    assert rec.body["systemInstruction"]["parts"][0]["text"] == "be brief"


async def test_stream(gem: genai.Client) -> None:
    chunks = [c async for c in await gem.aio.models.generate_content_stream(model="g", contents="a b c")]
    assert "".join(c.text or "" for c in chunks) == "[gemini:g] a b c"
    assert len(chunks) == 4
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.candidates_token_count == 4
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])


async def test_function_call_and_response(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    r = await gem.aio.models.generate_content(model="g", contents="get_weather city=Kyiv", config=config)
    assert r.function_calls and r.function_calls[0].name == "get_weather"
    assert r.function_calls[0].args == {"city": "Kyiv"}
    contents = [
        types.Content(role="user", parts=[types.Part(text="get_weather city=Kyiv")]),
        types.Content(role="model", parts=[types.Part(function_call=r.function_calls[0])]),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"temp": 3})],
        ),
    ]
    r2 = await gem.aio.models.generate_content(model="g", contents=contents, config=config)
    assert r2.text == '[gemini:g] tool result: {"temp":3}'


async def test_function_call_streamed_forced(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    chunks = [
        c async for c in await gem.aio.models.generate_content_stream(model="g", contents="hi", config=config)
    ]
    calls = [fc for c in chunks for fc in (c.function_calls or ())]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", {"city": "example"})]


async def test_json_schema_and_max_tokens(gem: genai.Client) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    r = await gem.aio.models.generate_content(
        model="g",
        contents="count n=4",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    doc = json.loads(r.text or "")
    jsonschema.validate(doc, schema)
    assert doc == {"n": 4}
    r = await gem.aio.models.generate_content(
        model="g", contents="one two three", config=types.GenerateContentConfig(max_output_tokens=2)
    )
    assert r.text == "[gemini:g] one"
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


async def test_v1beta_alt_sse_and_key_checks(emu: EmulatorServer) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x y"}]}]}
    url = emu.url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers={"x-goog-api-key": KEY}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            lines = [ln for ln in (await r.text()).splitlines() if ln]
        assert all(ln.startswith("data: ") for ln in lines)
        final = json.loads(lines[-1][6:])
        assert final["candidates"][0]["finishReason"] == "STOP"
        assert set(final["usageMetadata"]) >= {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"}
        async with s.post(url, json=body) as r:
            assert r.status == 403
            assert (await r.json())["error"]["status"] == "PERMISSION_DENIED"
        async with s.post(url.replace("alt=sse", f"alt=sse&key={KEY}"), json={"contents": []}) as r:
            assert r.status == 400
            err = (await r.json())["error"]
            assert err["status"] == "INVALID_ARGUMENT" and err["code"] == 400
        async with s.get(emu.url + "/v1beta/models", headers={"x-goog-api-key": KEY}) as r:
            assert "models/gemini-2.5-flash" in [m["name"] for m in (await r.json())["models"]]


# faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_429_resource_exhausted(emu: EmulatorServer, gem: genai.Client, stream: bool) -> None:
    emu.fault(kind="status", status=429, retry_after=1, provider="gemini")
    if stream:
        with pytest.raises(errors.ClientError) as err:
            await drain(await gem.aio.models.generate_content_stream(model="g", contents="x"))
    else:
        with pytest.raises(errors.ClientError) as err:
            await gem.aio.models.generate_content(model="g", contents="x")
    assert err.value.code == 429 and err.value.status == "RESOURCE_EXHAUSTED"


async def test_503_unavailable(emu: EmulatorServer, gem: genai.Client) -> None:
    emu.fault(kind="status", status=503, times=1)
    with pytest.raises(errors.ServerError) as err:
        await gem.aio.models.generate_content(model="g", contents="x")
    assert err.value.code == 503 and err.value.status == "UNAVAILABLE"
    assert (await gem.aio.models.generate_content(model="g", contents="x")).text == "[gemini:g] x"


async def test_stream_error_chunk(emu: EmulatorServer, gem: genai.Client) -> None:
    emu.fault(kind="stream_error", status=503, after_chunks=1)
    got: list[types.GenerateContentResponse] = []
    with pytest.raises(errors.ServerError) as err:
        await drain(await gem.aio.models.generate_content_stream(model="g", contents="a b c"), got)
    assert [c.text for c in got] == ["[gemini:g]"] and err.value.code == 503


async def test_reset_cut_garbage_latency(emu: EmulatorServer) -> None:
    gem = gemini_client(emu.url, timeout_ms=300)
    try:
        emu.fault(kind="reset", times=1)
        with pytest.raises(aiohttp.ClientError):  # google-genai's aiohttp transport lets it through
            await gem.aio.models.generate_content(model="g", contents="x")
        emu.fault(kind="stream_cut", after_chunks=1, times=1)
        got: list[types.GenerateContentResponse] = []
        with pytest.raises(aiohttp.ClientPayloadError):
            await drain(await gem.aio.models.generate_content_stream(model="g", contents="a b c"), got)
        assert [c.text for c in got] == ["[gemini:g]"]
        emu.fault(kind="garbage", times=1)
        with pytest.raises(json.JSONDecodeError):
            await gem.aio.models.generate_content(model="g", contents="x")
        emu.fault(kind="latency", latency_ms=800, times=1)
        with pytest.raises(TimeoutError):
            await gem.aio.models.generate_content(model="g", contents="x")
    finally:
        await gem.aio.aclose()

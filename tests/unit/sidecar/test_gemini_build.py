"""The Gemini adapter's body converter (``gemini._to_mldev``) gives the SDK's own body, byte for byte."""

from __future__ import annotations

import base64
import json
from typing import Any

import pydantic
import pytest
from google import genai
from google.genai import _common
from google.genai import models as genai_models

from modelroute.sidecar.providers.gemini import _to_mldev
from modelroute.sidecar.translate.gemini import chat_to_gemini_request

Json = dict[str, Any]

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
TOOL: Json = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SCHEMA: Json = {"type": "json_schema", "json_schema": {"name": "label", "schema": {
    "type": "object", "properties": {"label": {"type": "string", "enum": ["a", "b"]}}, "required": ["label"]}}}

REQUESTS: list[Json] = [
    {"model": "r", "messages": [{"role": "user", "content": "Classify: printer on fire"}], "max_tokens": 16},
    {"model": "r", "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather here? café ☕"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 3, \"none\": null}"},
        {"role": "assistant", "content": "Cold."},
        {"role": "user", "content": "And tomorrow?"},
    ], "tools": [TOOL], "tool_choice": "required", "temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "stop": ["x"],
     "seed": 3},
    {"model": "r", "messages": [{"role": "user", "content": "label it"}], "response_format": SCHEMA},
    {"model": "r", "messages": [{"role": "user", "content": "json"}], "response_format": {"type": "json_object"}},
]


def _body(request: Json) -> bytes:
    request = dict(request)
    request.pop("config", None)
    return json.dumps(_common.encode_unserializable_types(_common.convert_to_dict(request))).encode()


@pytest.fixture
def api() -> Any:
    client = genai.Client(api_key="k")
    yield client._api_client
    client.close()


@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_the_body_is_the_sdks_own(api: Any, index: int) -> None:
    kwargs = chat_to_gemini_request(REQUESTS[index], model="gemini-2.5-flash")
    ours = _to_mldev(api, kwargs)
    sdk = genai_models._GenerateContentParameters_to_mldev(api, kwargs, None, kwargs)
    assert ours["_url"] == sdk["_url"]
    assert _body(ours) == _body(sdk)


def test_contents_the_sdk_refuses_are_refused_the_same(api: Any) -> None:
    kwargs: Json = {"model": "gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": "hi", "bogus": 1}]}]}
    with pytest.raises(pydantic.ValidationError):
        genai_models._GenerateContentParameters_to_mldev(api, kwargs, None, kwargs)
    with pytest.raises(pydantic.ValidationError):
        _to_mldev(api, kwargs)


def test_anything_else_takes_the_sdks_path(api: Any) -> None:
    for contents in ("just text", [{"text": "a part"}], []):
        kwargs: Json = {"model": "gemini-2.5-flash", "contents": contents}
        try:
            sdk = genai_models._GenerateContentParameters_to_mldev(api, kwargs, None, kwargs)
        except ValueError as e:
            with pytest.raises(ValueError, match=str(e)):
                _to_mldev(api, kwargs)
            continue
        assert _body(_to_mldev(api, kwargs)) == _body(sdk)

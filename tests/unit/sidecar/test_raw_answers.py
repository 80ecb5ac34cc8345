"""Whole OpenAI answers relayed with the text they came in (``OpenAIAdapter.answer_body``): only when unchanged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.build_send import SdkBuiltAdapter
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.server.wire import ANTHROPIC, OPENAI
from modelroute.sidecar.translate.chat import RawChunk

TEXT = ('{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",'
        '"choices":[{"index":0,"message":{"role":"assistant","content":"caf\\u00e9"},"finish_reason":"stop"}],'
        '"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}')


async def _adapter(api: str | None = None) -> SdkBuiltAdapter:
    spec: dict[str, Any] = {"name": "o", "provider": "openai", "model": "gpt-4o-mini", "baseUrl": "http://127.0.0.1:9",
                            "apiKey": {"env": "K"}}
    if api is not None:
        spec["api"] = api
    adapter = build_adapter(Target.model_validate(spec), lambda: "sk-test")
    assert isinstance(adapter, SdkBuiltAdapter)
    return adapter


@pytest.fixture
async def chat() -> AsyncIterator[SdkBuiltAdapter]:
    adapter = await _adapter()
    yield adapter
    await adapter.aclose()


async def test_an_unchanged_answer_is_relayed_as_it_came(chat: SdkBuiltAdapter) -> None:
    done = chat.answer_body(TEXT.encode())
    assert done.__class__ is RawChunk and done == json.loads(TEXT)
    assert OPENAI.response(done) == TEXT.encode()  # the upstream's bytes, escapes and all
    pretty = json.dumps(json.loads(TEXT), indent=2)  # whitespace is the upstream's business: a JSON body
    assert OPENAI.response(chat.answer_body(pretty.encode())) == pretty.encode()


async def test_a_changed_answer_is_serialized_again(chat: SdkBuiltAdapter) -> None:
    no_model = TEXT.replace('"model":"gpt-4o-mini-2024-07-18",', "")
    done = chat.answer_body(no_model.encode())
    assert done["model"] == "gpt-4o-mini"  # filled in: the text would lack it
    assert json.loads(OPENAI.response(done)) == {**json.loads(no_model), "model": "gpt-4o-mini"}
    relayed = chat.answer_body(TEXT.encode())
    relayed["modelroute"] = {"route": "r"}  # any change through the dict drops the text
    assert json.loads(OPENAI.response(relayed))["modelroute"] == {"route": "r"}
    # other wires always render from the dict
    assert json.loads(ANTHROPIC.response(chat.answer_body(TEXT.encode())))["content"][0]["text"] == "café"


async def test_bodies_that_are_not_answers_stay_errors(chat: SdkBuiltAdapter) -> None:
    for body in (b"not json", b"[1]", b'{"model":"m"}', b"\xff\xfe{"):
        with pytest.raises(UpstreamError) as e:
            chat.answer_body(body)
        assert e.value.kind is FailureKind.BAD_RESPONSE
    bom = b"\xef\xbb\xbf" + TEXT.encode()  # read as json.loads reads it (the encoding detected)
    assert chat.answer_body(bom) == json.loads(TEXT)


async def test_a_responses_answer_is_a_new_dict_never_the_upstream_text() -> None:
    adapter = await _adapter("responses")
    try:
        text = json.dumps({"id": "r1", "object": "response", "created_at": 1, "model": "gpt-4o-mini", "status": "completed",
                           "output": [{"type": "message", "role": "assistant",
                                       "content": [{"type": "output_text", "text": "hi"}]}]})
        done = adapter.answer_body(text.encode())
        assert done.__class__ is dict and done["object"] == "chat.completion"
    finally:
        await adapter.aclose()

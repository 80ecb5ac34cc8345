"""The OpenAI emulator pads its stream events with ``obfuscation`` as the real API does (``dialects/obfuscation.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelroute.testing.emulators.answers import finalize
from modelroute.testing.emulators.dialects import DIALECTS, OPENAI_RESPONSES
from modelroute.testing.emulators.dialects.obfuscation import ALPHABET, chat_chunk
from modelroute.testing.emulators.model import Reply, ToolCall

Json = dict[str, Any]
CHAT = DIALECTS["openai"]
MESSAGES = [{"role": "user", "content": "hi"}]


def _events(frames: list[bytes]) -> list[str]:
    return [line[6:] for f in frames for line in f.decode().split("\n") if line.startswith("data: ")]


def _chat(options: Json | None, reply: Reply) -> list[str]:
    body: Json = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    if options is not None:
        body["stream_options"] = options
    assert CHAT.validate(body, {}, "/v1/chat/completions") is None  # the strict emulator takes it, as the API
    prompt = CHAT.parse(body, None, True)
    return _events(CHAT.stream_frames(prompt, finalize(prompt, reply, lambda: "call_1"), 7, 1700000000))


REPLY = Reply(text="caf\u00e9 au lait \U0001f600 with a \"quoted\" word and a-much-longer-word-than-sixteen-characters")


@pytest.mark.parametrize("options", [None, {"include_usage": True}, {"include_obfuscation": True, "include_usage": True}])
def test_every_chat_chunk_is_padded_to_1_mod_16_characters_with_obfuscation_last(options: Json | None) -> None:
    texts = _chat(options, REPLY)
    assert texts[-1] == "[DONE]"
    chunks = [json.loads(t) for t in texts[:-1]]
    assert len(chunks) == len(REPLY.text.split(" ")) + 2 + bool(options and options.get("include_usage"))
    for text, chunk in zip(texts[:-1], chunks, strict=True):
        assert list(chunk)[-1] == "obfuscation"  # role, content, finish and usage chunk alike
        pad = chunk["obfuscation"]
        assert 1 <= len(pad) <= 16 and set(pad) <= set(ALPHABET)
        assert len(text) % 16 == 1  # code points: the non-ASCII chunks are longer in bytes
    assert len({c["obfuscation"] for c in chunks}) > len(chunks) // 2  # it varies from chunk to chunk
    assert _chat(options, REPLY) == texts  # and is the same on every run


def test_include_obfuscation_false_sends_none() -> None:
    texts = _chat({"include_obfuscation": False, "include_usage": True}, REPLY)
    assert not any("obfuscation" in t for t in texts)
    padded = _chat({"include_usage": True}, REPLY)
    assert [json.dumps({k: v for k, v in json.loads(t).items() if k != "obfuscation"}, separators=(",", ":"),
                       ensure_ascii=False) for t in padded[:-1]] == texts[:-1]


def test_a_recorded_chunk_gets_the_padding_length_openai_gave_it() -> None:
    # api.openai.com, gpt-4o-2024-08-06, 2026-03 (a stream quoted in aimlapi's docs): "obfuscation":"fjE24R0ZOJr"
    body = ('{"id":"chatcmpl-DL2G9KdEY06xq8M0PqZ5rs5Jv13ok","object":"chat.completion.chunk","created":1773905945,'
            '"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f986a632b0","choices":[{"index":0,'
            '"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}')
    assert len(json.loads(chat_chunk(body.encode(), 1, 1))["obfuscation"]) == len("fjE24R0ZOJr")


def test_the_strict_emulator_refuses_a_include_obfuscation_that_is_not_a_boolean() -> None:
    refused = CHAT.validate({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True,
                             "stream_options": {"include_obfuscation": "no"}}, {}, "/v1/chat/completions")
    assert refused is not None and "include_obfuscation" in refused.message


@pytest.mark.parametrize("obfuscate", [True, False])
def test_responses_delta_events_are_padded_unless_include_obfuscation_is_false(obfuscate: bool) -> None:
    body: Json = {"model": "gpt-4o-mini", "input": "hi", "stream": True}
    if not obfuscate:
        body["stream_options"] = {"include_obfuscation": False}
    assert OPENAI_RESPONSES.validate(body, {}, "/v1/responses") is None
    prompt = OPENAI_RESPONSES.parse(body, None, True)
    reply = Reply(text="one two", tool_calls=(ToolCall(id="", name="f", arguments={"a": "b" * 20}),))
    events = [json.loads(t) for t in _events(OPENAI_RESPONSES.stream_frames(prompt, finalize(prompt, reply, lambda: "c1"), 3, 1))]
    deltas = [e for e in events if e["type"].endswith(".delta")]
    assert {e["type"] for e in deltas} == {"response.output_text.delta", "response.function_call_arguments.delta"}
    for e in events:
        if obfuscate and e in deltas:
            assert list(e)[-1] == "obfuscation" and (len(e["delta"]) + len(e["obfuscation"])) % 16 == 0
        else:
            assert "obfuscation" not in e

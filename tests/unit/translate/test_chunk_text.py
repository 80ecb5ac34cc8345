"""OpenAI chunks read from their text (``translate.chunktext``): the same chunks and bytes as the full parse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelroute.sidecar.errors import UpstreamError
from modelroute.sidecar.providers.build_send import json_event
from modelroute.sidecar.server.wire import OPENAI
from modelroute.sidecar.translate.chat import RawChunk
from modelroute.sidecar.translate.openai import OpenAIStreamToChat

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
usage: st.SearchStrategy[Any] = st.one_of(st.none(), st.just({}), st.fixed_dictionaries({"prompt_tokens": st.integers(0, 9), "total_tokens": st.integers(0, 9)}))
finish = st.one_of(st.none(), st.sampled_from(["stop", "length", "tool_calls", ""]))
delta: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries({"content": st.text()}),
    st.fixed_dictionaries({"content": st.one_of(st.none(), st.text())}, optional={"role": st.just("assistant"), "refusal": st.one_of(st.none(), st.text())}),
    st.fixed_dictionaries({"tool_calls": st.just([{"index": 0, "function": {"arguments": "{\"a\":"}}])}),
    st.just({}),
)


@st.composite
def chunks(draw: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": draw(delta), "logprobs": None, "finish_reason": draw(finish)}
    choice.update(draw(st.dictionaries(st.sampled_from(["extra", "logprobs"]), scalars, max_size=1)))
    out: dict[str, Any] = {"id": draw(st.text(max_size=12)), "object": "chat.completion.chunk",
                           "created": draw(st.integers(0, 2**40)), "model": draw(st.text(max_size=12))}
    if draw(st.booleans()):
        out["system_fingerprint"] = draw(st.one_of(st.none(), st.text(max_size=8)))
    out["choices"] = draw(st.one_of(st.just([choice]), st.just([]), st.just([choice, dict(choice, index=1)])))
    if draw(st.booleans()):
        out["usage"] = draw(usage)
    out.update(draw(st.dictionaries(st.sampled_from(["obfuscation", "x", "content"]), st.one_of(scalars, st.just({"content": "x"})), max_size=2)))
    return out


def text_of(chunk: dict[str, Any], style: int) -> str:
    """The chunk as JSON in one of the ways an upstream may write it."""
    if style == 0:
        return json.dumps(chunk, separators=(",", ":"), ensure_ascii=False)
    if style == 1:
        return json.dumps(chunk, separators=(",", ":"))  # \\u escapes
    if style == 2:
        return json.dumps(chunk)  # spaces after , and :
    return json.dumps(chunk, indent=1)  # several lines


def relayed(texts: list[str], batched: bool) -> tuple[list[bytes], list[Any], Any]:
    """What the OpenAI wire writes for each event, the chunk dicts, and what the translator learned."""
    tr = OpenAIStreamToChat(model="route-model", include_usage=True)
    enc = OPENAI.stream({})
    out: list[Any] = []
    if batched:
        tr.feed_events(texts, out, json_event)
    else:
        for t in texts:
            out += tr.feed_raw(json_event(t), t)
    return [enc.feed(c) for c in out], [(c.__class__, dict(c)) for c in out], (tr.finish_reason, tr.usage)


@settings(max_examples=300, deadline=None)
@given(first=chunks(), rest=st.lists(st.tuples(chunks(), st.text()), max_size=6), style=st.integers(0, 3),
       styles=st.lists(st.integers(0, 3), min_size=6, max_size=6))
def test_events_read_from_their_text_are_the_chunks_and_bytes_of_the_full_parse(
        first: dict[str, Any], rest: list[tuple[dict[str, Any], str]], style: int, styles: list[int]) -> None:
    texts = [text_of(first, style)]
    for i, (chunk, content) in enumerate(rest):
        like_first = json.loads(texts[0])  # the stream's repeated fields with another text, or another chunk
        if like_first.get("choices") and isinstance(like_first["choices"][0].get("delta"), dict):
            like_first["choices"][0]["delta"] = {"content": content}
        texts.append(text_of(like_first if i % 2 == 0 else chunk, style if i % 3 else styles[i]))
    assert relayed(texts, True) == relayed(texts, False)


def test_a_stream_of_content_chunks_is_read_from_its_text() -> None:
    head = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","usage":null,'
            '"choices":[{"index":0,"delta":{"content":')
    texts = [head + json.dumps(t, ensure_ascii=False) + '},"x":1,"logprobs":null,"finish_reason":null}]}'
             for t in ["a", 'say "hi"', "caf\u00e9", "\t", "\\", "", "\U0001f600"]]
    texts += [texts[0].replace('"c1"', '"c2"'), texts[0].replace('"a"', '"a" ')]
    parsed = 0

    def parse(text: str) -> Any:
        nonlocal parsed
        parsed += 1
        return json_event(text)

    tr = OpenAIStreamToChat(model="m", include_usage=False)
    out: list[Any] = []
    assert tr.feed_events([*texts, "[DONE]", "not read"], out, parse) is True
    assert [c.__class__ for c in out] == [RawChunk] * len(texts)
    assert [OPENAI.stream({}).feed(c) for c in out] == [b"data: " + t.encode() + b"\n\n" for t in texts]
    assert [c["choices"][0]["delta"] for c in out] == [json.loads(t)["choices"][0]["delta"] for t in texts]
    # Parsed, each with the proof of its template: the first, the other id, the odd spacing. The rest: their text.
    assert parsed == 6


def test_a_bad_event_after_template_chunks_fails_with_the_chunks_before_it_kept() -> None:
    text = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
            '"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}')
    tr = OpenAIStreamToChat(model="m", include_usage=False)
    out: list[Any] = []
    bad = text.replace('"a"', '"a\tb"')  # a raw control character: not JSON
    with pytest.raises(UpstreamError, match="not JSON"):
        tr.feed_events([text, text, bad, text], out, json_event)
    assert len(out) == 2

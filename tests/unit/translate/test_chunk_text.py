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
    if draw(st.booleans()):  # OpenAI's padding (its place: last, as OpenAI sends it, or first)
        pad = draw(st.text(max_size=16))
        out = {**out, "obfuscation": pad} if draw(st.booleans()) else {"obfuscation": pad, **out}
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


@settings(max_examples=400, deadline=None)
@given(first=chunks(), rest=st.lists(st.tuples(chunks(), st.text(), st.one_of(st.none(), st.text(max_size=16))), max_size=6),
       style=st.integers(0, 3), styles=st.lists(st.integers(0, 3), min_size=6, max_size=6))
def test_events_read_from_their_text_are_the_chunks_and_bytes_of_the_full_parse(
        first: dict[str, Any], rest: list[tuple[dict[str, Any], str, str | None]], style: int, styles: list[int]) -> None:
    texts = [text_of(first, style)]
    for i, (chunk, content, pad) in enumerate(rest):
        like_first = json.loads(texts[0])  # the stream's repeated fields with another text (and padding), or another chunk
        if like_first.get("choices") and isinstance(like_first["choices"][0].get("delta"), dict):
            like_first["choices"][0]["delta"] = {"content": content}
        if pad is not None and isinstance(like_first.get("obfuscation"), str):
            like_first["obfuscation"] = pad
        texts.append(text_of(like_first if i % 2 == 0 else chunk, style if i % 3 else styles[i]))
    assert relayed(texts, True) == relayed(texts, False)


@st.composite
def content_chunks(draw: Any) -> dict[str, Any]:
    """The common content chunk (a template's shape) with OpenAI's padding, last or first."""
    choice = {"index": 0, "delta": {"content": draw(st.text())}, "logprobs": None, "finish_reason": None}
    choice.update(draw(st.dictionaries(st.sampled_from(["extra", "logprobs"]), scalars, max_size=1)))
    out: dict[str, Any] = {"id": draw(st.text(max_size=12)), "object": "chat.completion.chunk",
                           "created": draw(st.integers(0, 2**40)), "model": draw(st.text(min_size=1, max_size=12))}
    out.update(draw(st.dictionaries(st.sampled_from(["system_fingerprint", "service_tier", "x"]), scalars, max_size=2)))
    out["choices"] = [choice]
    if draw(st.booleans()):
        out["usage"] = None
    pad = draw(st.text(max_size=16))
    return {**out, "obfuscation": pad} if draw(st.booleans()) else {"obfuscation": pad, **out}


@settings(max_examples=300, deadline=None)
@given(first=content_chunks(), rest=st.lists(st.tuples(st.text(), st.text(max_size=16)), min_size=1, max_size=8),
       style=st.integers(0, 2))
def test_chunks_differing_in_content_and_obfuscation_are_the_chunks_and_bytes_of_the_full_parse(
        first: dict[str, Any], rest: list[tuple[str, str]], style: int) -> None:
    texts = [text_of(first, style)]
    for content, pad in rest:
        chunk = json.loads(texts[0])
        chunk["choices"][0]["delta"] = {"content": content}
        chunk["obfuscation"] = pad
        texts.append(text_of(chunk, style))
    calls, parse = _counting(json_event)
    tr = OpenAIStreamToChat(model="route-model", include_usage=True)
    out: list[Any] = []
    tr.feed_events(texts, out, parse)
    assert calls[0] == 2  # the first chunk and its template's proof: every other one from its text
    assert relayed(texts, True) == relayed(texts, False)


def _counting(parse: Any) -> tuple[list[int], Any]:
    calls = [0]

    def counted(text: str) -> Any:
        calls[0] += 1
        return parse(text)

    return calls, counted


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


@pytest.mark.parametrize(("pad", "bad"), [("", '"a\tb"'), (',"obfuscation":"xyz"', '"a\tb"'), (',"obfuscation":"xyz"', '"x\ty"')])
def test_a_bad_event_after_template_chunks_fails_with_the_chunks_before_it_kept(pad: str, bad: str) -> None:
    text = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
            '"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]' + pad + "}")
    tr = OpenAIStreamToChat(model="m", include_usage=False)
    out: list[Any] = []
    broken = text.replace('"xyz"' if "x" in bad else '"a"', bad)  # a raw control character: not JSON
    with pytest.raises(UpstreamError, match="not JSON"):
        tr.feed_events([text, text.replace('"xyz"', '"q"'), broken, text], out, json_event)
    assert len(out) == 2


def test_chunks_that_differ_in_content_and_obfuscation_are_read_from_their_text() -> None:
    # OpenAI's shape (recorded streams): usage null after choices, the padding last; or the padding first.
    head = ('{"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",'
            '"service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":')
    tail = ('},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":')
    mid = json.dumps(tail)[1:-1]  # the text between the two strings, escaped inside a content string
    pairs = [("Hello", "fjE24R0ZOJr"), ("!", "qAlxZuNpvVvIIOm"), ('say "hi"', "A"), ("caf\u00e9 \U0001f600", "ab\u0041"),
             ("", "0123456789abcdef"), ('"' + mid + '"', "x"), ("\n", "")]
    for before in (False, True):
        texts = [head + json.dumps(c, ensure_ascii=False) + tail + json.dumps(p) + "}" for c, p in pairs]
        if before:
            texts = [t.replace('"usage":null,"obfuscation":' + json.dumps(p) + "}", '"usage":null}').replace(
                '{"id"', '{"obfuscation":' + json.dumps(p) + ',"id"', 1) for t, (_, p) in zip(texts, pairs, strict=True)]
        calls, parse = _counting(json_event)
        tr = OpenAIStreamToChat(model="m", include_usage=False)
        out: list[Any] = []
        assert tr.feed_events(texts, out, parse) is False
        assert [c.__class__ for c in out] == [RawChunk] * len(texts)
        assert [dict(c) for c in out] == [json.loads(t) for t in texts]
        assert [OPENAI.stream({}).feed(c) for c in out] == [b"data: " + t.encode() + b"\n\n" for t in texts]
        assert calls[0] == 2  # the first chunk and the proof of its template; the rest from their text


def test_an_emulated_openai_stream_takes_the_template_with_or_without_obfuscation() -> None:
    from modelroute.testing.emulators.answers import finalize
    from modelroute.testing.emulators.dialects import DIALECTS
    from modelroute.testing.emulators.model import Reply

    dialect = DIALECTS["openai"]
    for options in ({"include_usage": True}, {"include_usage": True, "include_obfuscation": False}):
        prompt = dialect.parse({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": True,
                                "stream_options": options}, None, True)
        text = " ".join(f"w{i}" for i in range(1, 201)) + ' "q" caf\u00e9'
        frames = dialect.stream_frames(prompt, finalize(prompt, Reply(text=text), lambda: "c"), 3, 1700000000)
        items = [f[6:-2].decode() for f in frames]
        calls, parse = _counting(json_event)
        tr = OpenAIStreamToChat(model="m", include_usage=True)
        out: list[Any] = []
        assert tr.feed_events(items, out, parse) is True
        assert b"".join(OPENAI.stream({}).feed(c) for c in out) == b"".join(frames[:-1])
        assert [("obfuscation" in c) for c in out] == [options.get("include_obfuscation", True)] * len(out)
        assert calls[0] == 5  # role chunk, first content chunk and its proof, finish chunk, usage chunk


def test_an_event_that_is_the_template_prefix_and_suffix_overlapping_is_not_a_chunk() -> None:
    # The prefix ends with the content's opening quote, the suffix starts with its closing quote: an
    # event that shares that quote is not JSON (it was read as an empty content chunk).
    text = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
            '"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}')
    bad = text.replace('"a"', '"')
    tr = OpenAIStreamToChat(model="m", include_usage=False)
    out: list[Any] = []
    with pytest.raises(UpstreamError, match="not JSON"):
        tr.feed_events([text, bad], out, json_event)
    assert len(out) == 1

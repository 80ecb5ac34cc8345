"""OpenAI chunks relayed with the text they came in: only when nothing in them changed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelroute.sidecar.server.wire import OPENAI
from modelroute.sidecar.translate import chat
from modelroute.sidecar.translate.anthropic import AnthropicStreamToChat
from modelroute.sidecar.translate.chat import RawChunk
from modelroute.sidecar.translate.openai import OpenAIStreamToChat

TEXT = ('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","usage":null,'
        '"choices":[{"index":0,"delta":{"content":"caf\\u00e9"},"logprobs":null,"finish_reason":null}]}')


def relay(text: str, *, include_usage: bool = False) -> list[bytes]:
    tr = OpenAIStreamToChat(model="gpt-4o-mini", include_usage=include_usage)
    enc = OPENAI.stream({})
    return [enc.feed(c) for c in tr.feed_raw(json.loads(text), text)]


def test_an_unchanged_chunk_is_written_as_it_came() -> None:
    assert relay(TEXT) == [b"data: " + TEXT.encode() + b"\n\n"]


def test_a_changed_chunk_is_serialized_again() -> None:
    no_model = TEXT.replace('"model":"gpt-4o-mini",', "")
    [out] = relay(no_model)
    assert json.loads(out[6:])["model"] == "gpt-4o-mini"  # filled in: the text would lack it
    usage = TEXT.replace('"usage":null', '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}')
    [out] = relay(usage)
    assert json.loads(out[6:])["usage"] is None  # the app did not ask for usage
    assert relay(usage, include_usage=True) == [b"data: " + usage.encode() + b"\n\n"]


def test_multi_line_data_is_never_relayed_as_one_line() -> None:
    pretty = json.dumps(json.loads(TEXT), indent=1)
    [out] = relay(pretty)
    assert out.count(b"\n") == 2 and json.loads(out[6:]) == json.loads(TEXT)


def test_any_change_to_a_raw_chunk_drops_its_text() -> None:
    changes: list[Any] = [lambda c: c.__setitem__("model", "x"), lambda c: c.pop("usage"), lambda c: c.update(a=1),
                          lambda c: c.setdefault("new", 1), lambda c: c.__delitem__("id"), lambda c: c.popitem(),
                          lambda c: c.clear(), lambda c: c.__ior__({"b": 2})]
    for change in changes:
        chunk = RawChunk(json.loads(TEXT), TEXT)
        change(chunk)
        assert chunk.raw is None
        assert OPENAI.stream({}).feed(chunk) == b"data: " + json.dumps(dict(chunk), separators=(",", ":"),
                                                                     ensure_ascii=False).encode() + b"\n\n"


def written(chunk: dict[str, Any]) -> bytes:
    """What the OpenAI wire writes for ``chunk`` serialized from its dict (its text ignored)."""
    return OPENAI.stream({}).feed(dict(chunk))


@given(text=st.text(min_size=1), id=st.text(), model=st.text(), created=st.integers())
def test_a_translated_text_chunk_carries_the_json_its_dict_would_be_written_as(text: str, id: str, model: str,
                                                                               created: int) -> None:
    tr = AnthropicStreamToChat(model=model, id=id, created=created, include_usage=False)
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
    [chunk] = tr.feed(event)
    assert chunk.__class__ is RawChunk and chunk.raw is not None
    assert chunk == chat.chunk(id=id, created=created, model=model, delta={"content": text})
    assert OPENAI.stream({}).feed(chunk) == written(chunk)


def test_text_chunks_follow_the_model_the_stream_names() -> None:
    tr = AnthropicStreamToChat(model="claude", id="msg_1", created=7, include_usage=False)
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 'say "hi"\n'}}
    before = tr.feed(delta)[0]
    tr.feed({"type": "message_start", "message": {"model": "claude-haiku-4-5-20251001", "usage": {"input_tokens": 1}}})
    after = tr.feed(delta)[0]
    assert (before["model"], after["model"]) == ("claude", "claude-haiku-4-5-20251001")
    for chunk in (before, after):
        assert OPENAI.stream({}).feed(chunk) == written(chunk)
    odd = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}}
    assert tr.feed(odd)[0]["choices"][0]["delta"] == {"content": 5}  # not text: the dict, as before


def test_the_finish_reason_of_a_relayed_chunk_is_kept() -> None:
    tr = OpenAIStreamToChat(model="gpt-4o-mini", include_usage=False)
    text = TEXT.replace('"finish_reason":null', '"finish_reason":"length"')
    [out] = tr.feed_raw(json.loads(text), text)
    assert out.__class__ is RawChunk and tr.finish_reason == "length"
    assert tr.finish() == []

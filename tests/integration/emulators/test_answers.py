"""The emulator's pure answer logic and request parsing, without a server."""

from __future__ import annotations

import json

import jsonschema

from modelroute.testing.emulators.answers import default_reply, finalize, schema_instance, split_words
from modelroute.testing.emulators.dialects import DIALECTS
from modelroute.testing.emulators.model import Prompt, Reply, ToolCall, ToolSpec


def prompt(**kw: object) -> Prompt:
    base: dict[str, object] = dict(
        provider="openai", model="m", stream=False, last_user_text="a b c", tool_result=None, input_tokens=3
    )
    return Prompt(**{**base, **kw})  # type: ignore[arg-type]


def test_schema_instance_is_valid_and_uses_hints() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "n": {"type": "integer", "minimum": 2},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "kind": {"enum": ["x", "y"]},
            "opt": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            "nested": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        },
    }
    doc = schema_instance(schema, {"name": "Ann"})
    jsonschema.validate(doc, schema)
    assert doc["name"] == "Ann" and doc["n"] == 2 and len(doc["tags"]) == 2 and doc["kind"] == "x"
    # Gemini's OpenAPI-style upper-case types
    assert schema_instance({"type": "OBJECT", "properties": {"k": {"type": "INTEGER"}}}, {}) == {"k": 1}


def test_tool_choice_rules() -> None:
    tools = (
        ToolSpec("alpha", {}),
        ToolSpec("beta", {"type": "object", "properties": {"q": {"type": "string"}}}),
    )
    assert default_reply(prompt(tools=tools)).tool_calls == ()
    assert default_reply(prompt(tools=tools, last_user_text="use beta q=z")).tool_calls[0] == ToolCall(
        "beta", {"q": "z"}
    )
    assert default_reply(prompt(tools=tools, tool_mode="any")).tool_calls[0].name == "alpha"
    assert (
        default_reply(prompt(tools=tools, tool_mode="tool", forced_tool="beta")).tool_calls[0].name == "beta"
    )
    assert default_reply(prompt(tools=tools, tool_mode="none", last_user_text="beta")).tool_calls == ()
    assert default_reply(prompt(tools=tools, last_user_text="beta", tool_result="42")).text == (
        "[openai:m] tool result: 42"
    )


def test_finalize_counts_and_truncates() -> None:
    ids = iter(["id1", "id2"])
    a = finalize(prompt(max_tokens=3), Reply(text="one two three four"), lambda: next(ids))
    assert (a.text, a.finish, a.output_tokens, a.input_tokens) == ("one two three", "length", 3, 3)
    a = finalize(prompt(stop=("three",)), Reply(text="one two three four"), lambda: next(ids))
    assert (a.text, a.finish, a.stop_sequence) == ("one two ", "stop_sequence", "three")
    a = finalize(prompt(), Reply(tool_calls=(ToolCall("t", {"x": 1}),)), lambda: next(ids))
    assert a.finish == "tool_calls" and a.tool_calls[0].id == "id1"
    a = finalize(prompt(), Reply(text="x", finish="length", output_tokens=99), lambda: "")
    assert (a.finish, a.output_tokens) == ("length", 99)
    assert "".join(split_words("a  b c")) == "a  b c"


def test_gemini_accepts_snake_and_camel_case() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
        "generationConfig": {"max_output_tokens": 5, "stopSequences": ["x"]},
    }
    p = DIALECTS["gemini"].parse(body, "g", True)
    assert p.input_tokens == 3 and p.tools[0].name == "f" and p.max_tokens == 5 and p.stop == ("x",)
    assert p.stream and p.model == "g"


def _texts(name: str, frames: list[bytes]) -> str:
    out = []
    for f in frames:
        data = next(line[6:] for line in f.decode().splitlines() if line.startswith("data: "))
        if data == "[DONE]":
            continue
        doc = json.loads(data)
        if name == "openai":
            out += [c["delta"].get("content") or "" for c in doc["choices"]]
        elif name == "anthropic":
            out.append(doc.get("delta", {}).get("text", "") if doc["type"] == "content_block_delta" else "")
        else:
            out += [p.get("text", "") for p in doc["candidates"][0]["content"]["parts"]]
    return "".join(out)


def test_stream_frames_reassemble_exactly() -> None:
    text = 'quote " and \\ and  ünïcode'
    for name, dialect in DIALECTS.items():
        p = prompt(provider=name, stream=True, include_usage=True)
        a = finalize(p, Reply(text=text), lambda: "id")
        frames = dialect.stream_frames(p, a, 1, 0)
        assert all(f.endswith(b"\n\n") for f in frames), name
        assert _texts(name, frames) == text, name


def test_stream_words_sets_the_length_of_streamed_text_replies_only() -> None:
    streamed = default_reply(prompt(stream=True), stream_words=4)
    assert streamed.text == "w1 w2 w3 w4" and split_words(streamed.text) == ["w1", " w2", " w3", " w4"]
    assert default_reply(prompt(stream=False), stream_words=4).text == "[openai:m] a b c"  # not streamed: the echo
    assert default_reply(prompt(stream=True)).text == "[openai:m] a b c"  # the option off: the echo
    tools = (ToolSpec(name="lookup", schema={"type": "object", "properties": {}}),)
    called = default_reply(prompt(stream=True, tools=tools, tool_mode="any"), stream_words=4)
    assert called.tool_calls and not called.text  # a tool call still decides the reply

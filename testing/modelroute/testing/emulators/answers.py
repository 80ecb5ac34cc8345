"""The emulator's deterministic brain: which reply a prompt gets, and how it is finished.

Default text is `"[<provider>:<model>] <last user message>"`. A tool is called when the
request offers tools and either forces one or the last user message names one; arguments
come from `key=value` words in that message, else from schema placeholders. JSON modes
answer a JSON document (schema-shaped when a schema is given). Pure functions only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .model import Answer, Finish, Prompt, Reply, ToolCall, ToolSpec, count_tokens

_KV = re.compile(r"(\w+)=(\S+)")


def hints_from(text: str) -> dict[str, str]:
    """`key=value` words in a message, used to fill tool arguments and JSON fields."""
    return {k: v.rstrip(".,;!?") for k, v in _KV.findall(text)}


def _coerce(value: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return value.lower() in ("1", "true", "yes")
    except ValueError:
        return value
    return value


def schema_instance(schema: dict[str, Any], hints: dict[str, str], name: str = "") -> Any:
    """A deterministic value valid against a JSON (or Gemini OpenAPI-style) schema."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0], hints, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()
    if name in hints and kind not in ("object", "array"):
        return _coerce(hints[name], kind)
    if kind == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        return {k: schema_instance(v if isinstance(v, dict) else {}, hints, k) for k, v in props.items()}
    if kind == "array":
        items = schema.get("items")
        count = int(schema.get("minItems") or 1)
        return [schema_instance(items if isinstance(items, dict) else {}, hints, name) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum") or 1)
    if kind == "number":
        return float(schema.get("minimum") or 1.0)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"


def _pick_tool(prompt: Prompt) -> ToolSpec | None:
    if not prompt.tools or prompt.tool_mode == "none" or prompt.tool_result is not None:
        return None
    by_name = {t.name: t for t in prompt.tools}
    if prompt.tool_mode == "tool" and prompt.forced_tool in by_name:
        return by_name[prompt.forced_tool]
    for tool in prompt.tools:
        if tool.name in prompt.last_user_text:
            return tool
    if prompt.tool_mode in ("any", "tool"):
        return prompt.tools[0]
    return None


def tag(prompt: Prompt) -> str:
    return f"[{prompt.provider}:{prompt.model}]"


def default_reply(prompt: Prompt, stream_words: int | None = None) -> Reply:
    """The reply a prompt gets when no script rule matches.

    ``stream_words``: a streamed text reply is that many words instead (``w1 w2 ...``, one
    content chunk each), for benchmarks that need streams of a given length.
    """
    tool = _pick_tool(prompt)
    if tool is not None:
        args = schema_instance(tool.schema, hints_from(prompt.last_user_text))
        return Reply(tool_calls=(ToolCall(tool.name, args if isinstance(args, dict) else {}),))
    if prompt.json_mode:
        hints = hints_from(prompt.last_user_text)
        if prompt.json_schema is not None:
            doc = schema_instance(prompt.json_schema, hints)
        else:
            doc = {"provider": prompt.provider, "model": prompt.model, "echo": prompt.last_user_text}
        return Reply(text=json.dumps(doc, separators=(", ", ": ")))
    if stream_words and prompt.stream:
        return Reply(text=" ".join(f"w{i}" for i in range(1, stream_words + 1)))
    if prompt.tool_result is not None:
        return Reply(text=f"{tag(prompt)} tool result: {prompt.tool_result}")
    return Reply(text=f"{tag(prompt)} {prompt.last_user_text}".rstrip())


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for s in stops:
        if s and (i := text.find(s)) >= 0 and (best is None or i < best[0]):
            best = (i, s)
    return (text, None) if best is None else (text[: best[0]], best[1])


def _tool_tokens(calls: tuple[ToolCall, ...]) -> int:
    return sum(1 + count_tokens(json.dumps(c.arguments)) for c in calls)


def finalize(prompt: Prompt, reply: Reply, new_id: Callable[[], str]) -> Answer:
    """Apply stop sequences and max_tokens (in words), give tool calls ids, count usage."""
    text, stop_seq = _cut_at_stop(reply.text, prompt.stop)
    finish: Finish = "stop_sequence" if stop_seq is not None else "stop"
    words = text.split(" ")
    if prompt.max_tokens is not None and count_tokens(text) > prompt.max_tokens:
        kept: list[str] = []
        for w in words:
            if count_tokens(" ".join([*kept, w])) > prompt.max_tokens:
                break
            kept.append(w)
        text, finish, stop_seq = " ".join(kept), "length", None
    calls = tuple(c if c.id else ToolCall(c.name, c.arguments, new_id()) for c in reply.tool_calls)
    if calls and finish != "length":
        finish = "tool_calls"
    return Answer(
        text=text,
        tool_calls=calls,
        finish=reply.finish or finish,
        stop_sequence=stop_seq,
        input_tokens=prompt.input_tokens if reply.input_tokens is None else reply.input_tokens,
        output_tokens=(
            count_tokens(text) + _tool_tokens(calls) if reply.output_tokens is None else reply.output_tokens
        ),
    )


def split_words(text: str) -> list[str]:
    """Stream pieces: one word each, spaces kept, so joining them gives `text` back."""
    if not text:
        return []
    parts = text.split(" ")
    return [parts[0]] + [" " + p for p in parts[1:]]


def split_fixed(text: str, size: int = 16) -> list[str]:
    """Fixed-size pieces for streamed tool-call arguments."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]

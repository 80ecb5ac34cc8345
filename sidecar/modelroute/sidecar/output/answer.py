"""What an answer says: the one definition mirror agreement, eval, the gate and rollout evidence share.

Before this module the rollout evidence, eval scoring and mirror copies each read "the
answer" their own way (tool calls as every call vs the first call's arguments; two label
normalisations), so a canary could agree with stable live and disagree in eval.

* ``answer_of(completion)``: choice 0's text; else its tool calls as canonical JSON
  (``[{"name", "arguments"}]``, arguments parsed). A task answer (classify, extract) comes
  out of the route's checked chain already normalised (``pipeline.stages.normalised``): the
  label as configured, or the extracted JSON, compact.
* ``answers_agree(a, b)``: equal JSON objects or arrays (key order, whitespace and a code
  fence do not matter), else equal normalised labels (``parse.normalize_label``).
* ``output_valid(text, want_json)``: non-empty, and JSON when JSON was asked for.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from typing import Any

from modelroute.sidecar.output.parse import normalize_label
from modelroute.sidecar.translate import chat

Json = dict[str, Any]

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
NOT_JSON: Any = object()


def answer_of(completion: Json) -> str:
    """Choice 0's answer: its text, else its tool calls as canonical JSON ("" when neither)."""
    text = chat.answer_text(completion)
    if text:
        return text
    calls = chat.answer_tool_calls(completion)
    if calls:
        return tool_calls_text(c.get("function") or {} for c in calls)
    return ""


def tool_calls_text(functions: Iterable[Json]) -> str:
    """Tool calls (``{"name", "arguments"}``, arguments a JSON string or value) as canonical JSON."""
    out = []
    for f in functions:
        args: Any = f.get("arguments") or ""
        if isinstance(args, str) and args:
            with contextlib.suppress(json.JSONDecodeError):
                args = json.loads(args)
        out.append({"name": f.get("name"), "arguments": args})
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def parse_json(text: str) -> Any:
    """The JSON value of an answer (a Markdown code fence around it allowed), or ``NOT_JSON``."""
    t = text.strip()
    m = _FENCE.match(t)
    if m:
        t = m.group(1).strip()
    try:
        return json.loads(t)
    except (json.JSONDecodeError, ValueError):
        return NOT_JSON


def answers_agree(a: str, b: str) -> bool:
    """Whether two answers say the same thing: equal JSON objects/arrays, else equal normalised labels."""
    ja, jb = parse_json(a), parse_json(b)
    if isinstance(ja, dict | list) and isinstance(jb, dict | list):
        return bool(ja == jb)
    return normalize_label(a) == normalize_label(b)


def output_valid(text: str, want_json: bool) -> bool:
    """Non-empty, and (when JSON was asked for) parseable JSON, a Markdown fence allowed."""
    if not text.strip():
        return False
    return not want_json or parse_json(text) is not NOT_JSON

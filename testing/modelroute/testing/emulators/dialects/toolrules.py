"""Conversation rules the real APIs apply to tool calls and their results, beyond the request schemas.

A schema says what a message may hold; these rules say how the turns of a tool conversation
must pair up, and the real APIs refuse a request that breaks them with a 400 (the wording
below is theirs). Translation defects show up here first: an id changed on the way, a result
that lost its call, a parallel turn split apart.

* OpenAI Chat Completions: a tool call id is at most 40 characters (``string_above_max_length``);
  an assistant message's ``tool_calls`` are each answered by the ``tool`` messages right after
  it, and a ``tool`` message answers a call of the assistant message before it.
* OpenAI Responses: a ``function_call_output`` answers a ``function_call`` earlier in ``input``.
* Anthropic Messages: each ``tool_use`` has its ``tool_result`` in the next (user) message, each
  ``tool_result`` answers a ``tool_use`` of the previous (assistant) message, and a ``tool_use``
  id matches ``^[a-zA-Z0-9_-]+$``.
* Gemini: a turn of function calls is followed by as many function responses.
"""

from __future__ import annotations

import re
from typing import Any

from .base import BadRequest

OPENAI_ID_MAX = 40
_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def openai_chat(body: Any) -> BadRequest | None:
    messages = _dicts(body.get("messages")) if isinstance(body, dict) else []
    pending: list[str] = []  # calls of the last assistant message not answered yet
    answerable: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "tool":
            call_id = m.get("tool_call_id")
            if call_id not in answerable:
                return BadRequest("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                  "message with 'tool_calls'.", param=f"messages.[{i}].role")
            if call_id in pending:
                pending.remove(call_id)
            continue
        if pending:
            return BadRequest("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                              f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                              param=f"messages.[{i}].role")
        answerable = set()
        if role == "assistant":
            for j, call in enumerate(_dicts(m.get("tool_calls"))):
                call_id = call.get("id")
                if isinstance(call_id, str) and len(call_id) > OPENAI_ID_MAX:
                    return BadRequest(f"Invalid 'messages[{i}].tool_calls[{j}].id': string too long. Expected a string with "
                                      f"maximum length {OPENAI_ID_MAX}, but got a string with length {len(call_id)} instead.",
                                      param=f"messages[{i}].tool_calls[{j}].id", code="string_above_max_length")
                pending.append(str(call_id))
                answerable.add(str(call_id))
    if pending:
        return BadRequest("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                          f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                          param="messages")
    return None


def openai_responses(body: Any) -> BadRequest | None:
    items = body.get("input") if isinstance(body, dict) else None
    calls: set[Any] = set()
    for item in _dicts(items):
        if item.get("type") == "function_call":
            calls.add(item.get("call_id"))
        elif item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            return BadRequest(f"No tool call found for function call output with call_id {item.get('call_id')}.", param="input")
    return None


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in _dicts(message.get("content")) if b.get("type") == kind]


def anthropic(body: Any) -> BadRequest | None:
    messages = _dicts(body.get("messages")) if isinstance(body, dict) else []
    for i, m in enumerate(messages):
        uses = _blocks(m, "tool_use") if m.get("role") == "assistant" else []
        for j, block in enumerate(uses):
            if not _ANTHROPIC_ID.match(str(block.get("id") or "")):
                return BadRequest(f"messages.{i}.content.{j}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        results = _blocks(m, "tool_result") if m.get("role") == "user" else []
        before = {b.get("id") for b in _blocks(messages[i - 1], "tool_use")} if i and results else set()
        for j, block in enumerate(results):
            if block.get("tool_use_id") not in before:
                return BadRequest(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                  f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                                  "`tool_use` block in the previous message.")
        if uses:
            after = {b.get("tool_use_id") for b in _blocks(messages[i + 1], "tool_result")} if i + 1 < len(messages) else set()
            missing = [str(b.get("id")) for b in uses if b.get("id") not in after]
            if missing and i + 1 < len(messages):
                return BadRequest(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                                  f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                                  "in the next message.")
    return None


def _parts(content: dict[str, Any], camel: str, snake: str) -> int:
    return sum(1 for p in _dicts(content.get("parts")) if p.get(camel) is not None or p.get(snake) is not None)


def gemini(body: Any) -> BadRequest | None:
    contents = _dicts(body.get("contents")) if isinstance(body, dict) else []
    for i, content in enumerate(contents[:-1]):
        calls = _parts(content, "functionCall", "function_call")
        if calls and _parts(contents[i + 1], "functionResponse", "function_response") != calls:
            return BadRequest("Please ensure that the number of function response parts is equal to the number of "
                              "function call parts of the function call turn.")
    return None

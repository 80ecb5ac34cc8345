"""Anthropic Messages wire format: request parsing, responses, named SSE events, errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..answers import split_fixed, split_words
from ..model import Answer, Prompt, Provider, ToolMode, ToolSpec, count_tokens
from ..promptcache import MARK, CachePoint, Prefixes
from . import anthropic_schema, toolrules
from .base import BadRequest, dumps, sse_event

_STOP = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_PING = sse_event("ping", {"type": "ping"})
_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":'
)
_MESSAGE_STOP = sse_event("message_stop", {"type": "message_stop"})


def _error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def _blocks_text(content: Any) -> tuple[str, str | None, int]:
    """(text of text blocks, tool_result text if any, token count of everything)."""
    if isinstance(content, str):
        return content, None, count_tokens(content)
    texts: list[str] = []
    result: str | None = None
    tokens = 0
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            tokens += count_tokens(json.dumps(block.get("input") or {}))
        elif kind == "tool_result":
            inner = block.get("content")
            result = inner if isinstance(inner, str) else _blocks_text(inner)[0]
            tokens += count_tokens(result)
    text = " ".join(texts)
    return text, result, tokens + count_tokens(text)


def _has_marks(body: dict[str, Any]) -> bool:
    if MARK in body:
        return True
    system = body.get("system")
    blocks: list[Any] = [*(body.get("tools") or ()), *(system if isinstance(system, list) else ())]
    for m in body.get("messages") or ():
        if isinstance(m, dict) and isinstance(m.get("content"), list):
            blocks.extend(m["content"])
    return any(isinstance(b, dict) and MARK in b for b in blocks)


def _ttl(block: Any) -> str:
    mark = block.get(MARK) if isinstance(block, dict) else None
    return str(mark.get("ttl") or "5m") if isinstance(mark, dict) else "5m"


def _cache_points(body: dict[str, Any], model: str) -> tuple[CachePoint, ...]:
    """Every block boundary (tools, system, messages), breakpoints where ``cache_control`` is
    (``promptcache.py``); none when the request has no mark (nothing is cached then)."""
    if not _has_marks(body):
        return ()
    pre = Prefixes("anthropic", model)
    for tool in body.get("tools") or ():
        pre.add(tool, 0, write=isinstance(tool, dict) and MARK in tool, ttl=_ttl(tool))
    system = body.get("system")
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or ():
        pre.add(block, _blocks_text([block])[2], write=isinstance(block, dict) and MARK in block, ttl=_ttl(block))
    for m in body.get("messages") or ():
        content = m.get("content")
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content or ():
            if isinstance(block, dict):
                pre.add({"role": m.get("role"), **block}, _blocks_text([block])[2], write=MARK in block, ttl=_ttl(block))
    points = pre.points
    if body.get(MARK) is not None and points:  # automatic caching: a breakpoint on the last block
        points[-1] = CachePoint(points[-1].key, points[-1].tokens, True, _ttl(body))
    return tuple(points)


class AnthropicDialect:
    provider: Provider = "anthropic"
    request_id_header = "request-id"
    tool_id_prefix = "toolu_emu"

    def check_auth(self, headers: Mapping[str, str], query: Mapping[str, str]) -> BadRequest | None:
        auth = headers.get("Authorization", "")
        if not headers.get("x-api-key") and not (auth.lower().startswith("bearer ") and auth[7:].strip()):
            return BadRequest("x-api-key header is required", status=401)
        if not headers.get("anthropic-version"):
            return BadRequest("anthropic-version: header is required")
        return None

    def validate(self, body: Any, headers: Mapping[str, str], path: str) -> BadRequest | None:
        return anthropic_schema.validate(body, headers) or toolrules.anthropic(body)

    def parse(self, body: Any, model: str | None, stream: bool | None) -> Prompt:
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise BadRequest("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: at least one message is required")
        tokens = _blocks_text(body.get("system"))[2] if body.get("system") else 0
        last_user = ""
        tool_result: str | None = None
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                raise BadRequest("messages: each message needs role 'user' or 'assistant'")
            text, result, n = _blocks_text(m.get("content"))
            tokens += n
            if m["role"] == "user" and text:
                last_user = text
            tool_result = result if m is messages[-1] else None
        tools = tuple(
            ToolSpec(str(t["name"]), dict(t.get("input_schema") or {}))
            for t in body.get("tools") or ()
            if isinstance(t, dict) and "name" in t and t.get("type") in (None, "custom")
        )
        choice = body.get("tool_choice") or {}
        mode: ToolMode = (
            choice.get("type", "auto") if choice.get("type") in ("auto", "any", "tool", "none") else "auto"
        )
        fmt = (body.get("output_config") or {}).get("format") or body.get("output_format") or {}
        json_mode = fmt.get("type") == "json_schema"
        return Prompt(
            provider="anthropic",
            model=model,
            stream=bool(body.get("stream")),
            last_user_text=last_user,
            tool_result=tool_result,
            input_tokens=tokens,
            tools=tools,
            tool_mode=mode,
            forced_tool=choice.get("name"),
            json_mode=json_mode,
            json_schema=fmt.get("schema") if json_mode else None,
            max_tokens=max_tokens,
            stop=tuple(body.get("stop_sequences") or ()),
            cache_points=_cache_points(body, model),
            cache_explicit=True,
        )

    @staticmethod
    def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
        """Usage as the API reports it: ``input_tokens`` leaves out cache reads and writes."""
        return {
            "input_tokens": answer.input_tokens - answer.cache_read - answer.cache_write,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": answer.cache_write,
            "cache_read_input_tokens": answer.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": answer.cache_write - answer.cache_write_1h,
                               "ephemeral_1h_input_tokens": answer.cache_write_1h},
            "service_tier": "standard",
        }

    def response(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if answer.text or not answer.tool_calls:
            content.append({"type": "text", "text": answer.text})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in answer.tool_calls
        ]
        return {
            "id": f"msg_emu{seq}",
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": content,
            "stop_reason": _STOP[answer.finish],
            "stop_sequence": answer.stop_sequence,
            "usage": self._usage(answer, answer.output_tokens),
        }

    def stream_frames(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> list[bytes]:
        start: dict[str, Any] = {
            "id": f"msg_emu{seq}",
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(answer, 1),
        }
        frames = [sse_event("message_start", {"type": "message_start", "message": start})]
        index = 0
        if answer.text or not answer.tool_calls:
            frames.append(
                sse_event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            frames.append(_PING)
            frames += [_TEXT_DELTA + dumps(piece) + b"}}\n\n" for piece in split_words(answer.text)]
            frames.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        for c in answer.tool_calls:
            block: dict[str, Any] = {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}
            frames.append(
                sse_event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            if index == 0:
                frames.append(_PING)
            for piece in split_fixed(json.dumps(c.arguments)):
                delta = {"type": "input_json_delta", "partial_json": piece}
                frames.append(
                    sse_event(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
                )
            frames.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        frames.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _STOP[answer.finish], "stop_sequence": answer.stop_sequence},
                    "usage": {"output_tokens": answer.output_tokens},
                },
            )
        )
        frames.append(_MESSAGE_STOP)
        return frames

    def error_body(
        self, status: int, message: str, error_type: str | None, param: str | None, code: str | None = None
    ) -> bytes:
        return dumps(
            {
                "type": "error",
                "error": {"type": error_type or _error_type(status), "message": message},
            }
        )

    def stream_error_frame(self, status: int, message: str, error_type: str | None) -> bytes:
        return sse_event(
            "error",
            {"type": "error", "error": {"type": error_type or _error_type(status), "message": message}},
        )

    def models_body(self, models: list[str]) -> dict[str, Any]:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }

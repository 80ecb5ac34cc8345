"""Inbound Anthropic Messages API: an Anthropic-SDK app served through the chat pivot.

The mirror of ``anthropic.py``: an app that points the ``anthropic`` SDK at the sidecar
(``POST /v1/messages``) sends a Messages request; ``anthropic_to_chat_request`` turns it into
the canonical chat request (``model`` = the route), whatever provider the route then picks.
The answer comes back with ``chat_to_anthropic_response`` (a ``Message`` JSON) or, when
streaming, through ``ChatStreamToAnthropic`` (named SSE events, ``anthropic_sse`` frames
them). ``anthropic_error`` gives the ``{"type": "error", ...}`` envelope the SDK reads.

Prompt-cache marks (``cache_control`` on system, message and tool_result blocks, tools, and
top-level) are kept in the pivot where ``cachemarks`` says, so Anthropic targets get them back
and other targets drop them.

Lossy spots, on purpose: ``top_k``, ``thinking`` and ``service_tier`` have no chat equivalent
and are dropped; thinking / redacted-thinking history blocks are
dropped; images inside a ``tool_result`` are dropped (tool messages are text in the pivot);
``is_error`` tool results are prefixed with ``"Error: "``; server tools (web search, code
execution, ...) and ``n`` > 1 cannot be expressed and raise ``TranslationError``.
``stop_sequence`` is never reported (the pivot only says ``stop``).
"""

from __future__ import annotations

import json
from typing import Any

from modelroute.sidecar.translate import chat, shape
from modelroute.sidecar.translate.cachemarks import MARK, marked
from modelroute.sidecar.translate.errors import StreamError, TranslationError

Json = dict[str, Any]

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
                "function_call": "tool_use"}

# ---- request -------------------------------------------------------------------------


def anthropic_to_chat_request(body: Json) -> Json:
    """An Anthropic ``messages.create`` body (wire JSON) -> canonical chat request.

    ``model`` (the route name) is kept. Streaming requests ask for the usage chunk
    (``stream_options.include_usage``) because Anthropic's ``message_delta`` reports usage.
    Raises ``TranslationError`` (a 400 for the app, naming the field) for a body of the wrong
    shape and for what the pivot cannot express.
    """
    body = shape.obj(body, "request body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise TranslationError("model is required (a non-empty string: the route name)")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise TranslationError("messages must be a non-empty list")
    messages: list[Json] = []
    system = _system(body.get("system"))
    if isinstance(system, list):  # one system message per block: other targets join them as before
        messages.extend({"role": "system", "content": [part]} for part in system)
    elif system:
        messages.append({"role": "system", "content": system})
    for i, m in enumerate(raw_messages):
        where = f"messages[{i}]"
        m = shape.obj(m, where)
        role = m.get("role")
        if role == "user":
            turn = _user_messages(m.get("content"), where)
            if not turn:  # e.g. content [] (the Messages API refuses it too; chat targets refuse messages [])
                raise TranslationError(f"{where}.content: all messages must have non-empty content "
                                       "except for the optional final assistant message")
            messages.extend(turn)
        elif role == "assistant":
            messages.append(_assistant_message(m.get("content"), where))
        else:
            raise TranslationError(f"{where}.role must be user or assistant, not {role!r}")

    out: Json = {"model": model, "messages": messages}
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        out["max_tokens"] = max_tokens
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TranslationError(f"{key} must be a number, not {shape.kind(value)}")
            out[key] = value
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        out["stop"] = [s for s in stops if isinstance(s, str)]
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(shape.array(tools, "tools"))]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        mapped = _tool_choice(choice)
        if mapped is not None:
            out["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use") and tools:
            out["parallel_tool_calls"] = False
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    fmt = (body.get("output_config") or {}).get("format") if isinstance(body.get("output_config"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}
    if body.get("cache_control") is not None:
        out[MARK] = shape.obj(body["cache_control"], "cache_control")
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _system(system: Any) -> str | list[Json]:
    """The system text, or its text blocks as text parts when any carries a cache mark."""
    if isinstance(system, list) and any(marked(b) for b in system):
        return [_marked({"type": "text", "text": shape.text(b, "text", f"system[{i}]")}, b, f"system[{i}]")
                for i, b in enumerate(system) if shape.obj(b, f"system[{i}]").get("type") == "text"]
    return _text_of(system, "system", "text blocks", "\n\n")


def _marked(part: Json, block: Json, where: str) -> Json:
    """``part`` with the block's ``cache_control`` (checked to be an object), if it has one."""
    if block.get(MARK) is not None:
        part[MARK] = shape.obj(block[MARK], f"{where}.cache_control")
    return part


def _text_of(value: Any, where: str, what: str, sep: str) -> str:
    """A string, or the ``text`` blocks of a list of blocks joined with ``sep`` (other blocks skipped)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for i, b in enumerate(value):
            b = shape.obj(b, f"{where}[{i}]")
            if b.get("type") == "text":
                texts.append(shape.text(b, "text", f"{where}[{i}]"))
        return sep.join(texts)
    raise TranslationError(f"{where} must be a string or a list of {what}, not {shape.kind(value)}")


def _blocks(content: Any, where: str) -> list[tuple[str, Any, Json]]:
    """(path, type, block) of each content block of a message (a string is one text block)."""
    if isinstance(content, str):
        return [(f"{where}.content[0]", "text", {"type": "text", "text": content})]
    if isinstance(content, list):
        blocks = [shape.obj(b, f"{where}.content[{i}]") for i, b in enumerate(content)]
        return [(f"{where}.content[{i}]", b.get("type"), b) for i, b in enumerate(blocks)]
    raise TranslationError(f"{where}.content must be a string or a list of content blocks, not {shape.kind(content)}")


def _user_messages(content: Any, where: str) -> list[Json]:
    """One user turn -> tool messages (its ``tool_result`` blocks, first) then a user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[Json] = []
    parts: list[Json] = []
    for at, kind, block in _blocks(content, where):
        if kind == "text":
            parts.append(_marked({"type": "text", "text": shape.text(block, "text", at)}, block, at))
        elif kind == "image":
            parts.append(_marked({"type": "image_url", "image_url": {"url": _source_url(block.get("source"), "image", at)}},
                                 block, at))
        elif kind == "document":
            source = shape.obj(block.get("source") or {}, f"{at}.source")
            if source.get("type") == "text":
                parts.append(_marked({"type": "text", "text": shape.text(source, "data", f"{at}.source")}, block, at))
            else:
                parts.append(_marked({"type": "file", "file": {"file_data": _source_url(source, "document", at)}}, block, at))
        elif kind == "tool_result":
            text = _tool_result_text(block.get("content"), at)
            if block.get("is_error") and chat.tool_error(text) is None:
                text = chat.TOOL_ERROR + text
            result: str | list[Json] = text
            if block.get(MARK) is not None:  # kept on the tool message's one text part
                result = [_marked({"type": "text", "text": text}, block, at)]
            tools.append({"role": "tool", "tool_call_id": shape.text(block, "tool_use_id", at), "content": result})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise TranslationError(f"{at}: content block type {kind!r} is not supported in user messages")
    out = tools
    if parts:
        only_text = all(p["type"] == "text" and MARK not in p for p in parts)
        out.append({"role": "user", "content": "".join(p["text"] for p in parts) if only_text and len(parts) == 1 else parts})
    return out


def _source_url(source: Any, what: str, where: str) -> str:
    source = shape.obj(source, f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media = shape.text(source, "media_type", f"{where}.source") or "application/octet-stream"
        return f"data:{media};base64,{shape.text(source, 'data', f'{where}.source')}"
    if kind == "url" and what == "image":
        return shape.text(source, "url", f"{where}.source")
    raise TranslationError(f"{where}.source: {what} source type {kind!r} is not supported")


def _tool_result_text(content: Any, where: str) -> str:
    return _text_of(content, f"{where}.content", "blocks", "")


def _assistant_message(content: Any, where: str) -> Json:
    texts: list[Json] = []
    calls: list[Json] = []
    for at, kind, block in _blocks(content, where):
        if kind == "text":
            texts.append(_marked({"type": "text", "text": shape.text(block, "text", at)}, block, at))
        elif kind == "tool_use":
            calls.append(_marked(chat.tool_call(shape.text(block, "id", at), shape.text(block, "name", at),
                                                chat.dumps(block.get("input") or {})), block, at))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise TranslationError(f"{at}: content block type {kind!r} is not supported in assistant messages")
    text: str | list[Json] | None = "".join(t["text"] for t in texts) if texts or not calls else None
    if any(MARK in t for t in texts):
        text = texts
    message: Json = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any, where: str) -> Json:
    tool = shape.obj(tool, where)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise TranslationError(f"{where}: server tool {kind!r} is not supported through modelroute")
    name = shape.text(tool, "name", where)
    if not name:
        raise TranslationError(f"{where} needs a name")
    schema = tool.get("input_schema")
    fn: Json = {"name": name, "parameters": shape.obj(schema, f"{where}.input_schema") if schema
                else {"type": "object", "properties": {}}}
    description = shape.text(tool, "description", where)
    if description:
        fn["description"] = description
    return _marked({"type": "function", "function": fn}, tool, where)


def _tool_choice(choice: Json) -> Any:
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        name = shape.text(choice, "name", "tool_choice")
        if not name:
            raise TranslationError("tool_choice of type tool needs a name")
        return {"type": "function", "function": {"name": name}}
    raise TranslationError(f"unsupported tool_choice type {kind!r}")


def count_tokens_response(input_tokens: int) -> Json:
    """Body of ``POST /v1/messages/count_tokens`` (the SDK's ``messages.count_tokens``)."""
    return {"input_tokens": input_tokens}


# ---- response ------------------------------------------------------------------------


def message_id(chat_id: str) -> str:
    """An Anthropic-looking message id for a chat completion id (stable for a given id)."""
    return chat_id if chat_id.startswith("msg_") else f"msg_{chat_id}"


def usage_to_anthropic(usage: Json | None) -> Json:
    """OpenAI usage -> Anthropic usage (``input_tokens`` excludes cache reads and writes)."""
    if not usage:
        return {"input_tokens": 0, "output_tokens": 0}
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    out: Json = {"input_tokens": max(0, (usage.get("prompt_tokens") or 0) - cached - written),
                 "output_tokens": usage.get("completion_tokens") or 0}
    if cached:
        out["cache_read_input_tokens"] = cached
    if written:
        out["cache_creation_input_tokens"] = written
        hour = min(written, details.get("cache_write_1h_tokens") or 0)
        out["cache_creation"] = {"ephemeral_5m_input_tokens": written - hour, "ephemeral_1h_input_tokens": hour}
    return out


def chat_to_anthropic_response(response: Json, *, model: str | None = None) -> Json:
    """A ``chat.completion`` dict -> Anthropic ``Message`` JSON (choice 0).

    ``model`` defaults to the completion's model (the provider model that answered).
    Tool calls become ``tool_use`` blocks with the same ids, so the app's ``tool_result``
    blocks map back to them on the next turn.
    """
    choices = response.get("choices") or [{}]
    first = choices[0]
    message = first.get("message") or {}
    content: list[Json] = []
    text = chat.text_of(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or "", "name": fn.get("name") or "",
                        "input": chat.parse_arguments(fn.get("arguments"))})
    reason = STOP_REASONS.get(first.get("finish_reason") or "stop", "end_turn")
    return {
        "id": message_id(str(response.get("id") or "")), "type": "message", "role": "assistant",
        "model": model or response.get("model") or "", "content": content,
        "stop_reason": reason, "stop_sequence": None, "usage": usage_to_anthropic(response.get("usage")),
    }


# ---- stream --------------------------------------------------------------------------


def anthropic_sse(event: Json) -> bytes:
    """One event as an SSE frame: ``event: <type>`` and ``data: <json>``."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class ChatStreamToAnthropic(chat.ChunksToEvents):
    """Canonical chat chunks -> Anthropic stream events (dicts; ``anthropic_sse`` frames them).

    ``message_start`` and a ``ping`` come with the first chunk; text and tool calls open
    content blocks in order (each block is closed before the next starts); the finish
    reason and the usage chunk (the canonical request asks for it) make ``message_delta``
    and ``message_stop``. ``finish()`` (upstream ended) emits them if the usage chunk never
    came, and raises ``StreamError`` when no finish reason was seen: a cut stream must end
    the app's stream with ``error_event`` instead of a clean ``message_stop``.
    """

    __slots__ = ("_block", "_block_kind", "_next", "_tools", "id", "model")

    def __init__(self, *, model: str, id: str) -> None:
        super().__init__()
        self.model = model
        self.id = message_id(id)
        self._block: int | None = None          # open content block index
        self._block_kind: str | None = None
        self._next = 0                          # next content block index
        self._tools: dict[int, int] = {}        # chat tool call index -> content block index

    def _start(self, chunk: Json, out: list[Json]) -> None:
        if chunk.get("model") and not self.model:
            self.model = chunk["model"]
        out.append({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}})
        out.append({"type": "ping"})

    def _text_delta(self, text: str, out: list[Json]) -> None:
        if self._block_kind != "text":
            self._open({"type": "text", "text": ""}, "text", out)
        out.append({"type": "content_block_delta", "index": self._block, "delta": {"type": "text_delta", "text": text}})

    def _close_all(self, out: list[Json]) -> None:
        self._close(out)

    def _open(self, block: Json, kind: str, out: list[Json]) -> None:
        self._close(out)
        self._block = self._next
        self._block_kind = kind
        self._next += 1
        out.append({"type": "content_block_start", "index": self._block, "content_block": block})

    def _close(self, out: list[Json]) -> None:
        if self._block is not None:
            out.append({"type": "content_block_stop", "index": self._block})
            self._block = None
            self._block_kind = None

    def _tool_delta(self, call: Json, out: list[Json]) -> None:
        index = call.get("index", 0)
        fn = call.get("function") or {}
        block = self._tools.get(index)
        if block is None:
            self._open({"type": "tool_use", "id": call.get("id") or f"toolu_{self.id}_{index}",
                        "name": fn.get("name") or "", "input": {}}, "tool", out)
            assert self._block is not None
            block = self._tools[index] = self._block
        args = fn.get("arguments")
        if args:
            out.append({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": args}})

    def _end(self) -> list[Json]:
        self._done = True
        out: list[Json] = []
        self._close(out)
        reason = STOP_REASONS.get(self._reason or "stop", "end_turn")
        out.append({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": usage_to_anthropic(self._usage)})
        out.append({"type": "message_stop"})
        return out


# ---- errors --------------------------------------------------------------------------

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
                504: "timeout_error", 529: "overloaded_error"}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status."""
    return _ERROR_TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def anthropic_error(status: int, message: str, *, type_: str | None = None) -> Json:
    """The Anthropic error envelope ``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": type_ or anthropic_error_type(status), "message": message}}


def anthropic_error_from_openai(status: int, body: Json) -> Json:
    """An OpenAI error envelope (what the sidecar builds) re-dressed for an Anthropic app."""
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(err, dict)
    return anthropic_error(status, str(err.get("message") or "error"))


def error_event(exc: BaseException) -> Json:
    """The ``error`` stream event that ends an app's stream after a mid-stream failure."""
    if isinstance(exc, StreamError):
        kind = exc.error_type if exc.error_type in ("overloaded_error", "rate_limit_error") else "api_error"
        return anthropic_error(500, exc.message, type_=kind)
    return anthropic_error(500, str(exc) or "upstream stream failed")

"""Chat request <-> Anthropic Messages: request, response and stream events.

Direction names say what goes in and what comes out (``chat_to_anthropic_request``,
``anthropic_to_chat_response``, ``AnthropicStreamToChat``) so that the reverse direction
(an Anthropic-SDK app served by another provider) can be added beside them as
``anthropic_to_chat_request``, ``chat_to_anthropic_response`` and ``ChatStreamToAnthropic``.

Input forms:

* requests: the chat request dict as the app sent it;
* responses: the Anthropic ``Message`` as a dict: the wire JSON, or
  ``message.model_dump()`` of the SDK object (``None`` fields are tolerated);
* stream events: the SSE ``data`` JSON of each event, or ``event.model_dump()`` of the
  SDK's raw stream events (``client.messages.create(stream=True)`` yields
  ``RawMessageStartEvent``, ``RawContentBlockStartEvent``, ``RawContentBlockDeltaEvent``,
  ``RawContentBlockStopEvent``, ``RawMessageDeltaEvent``, ``RawMessageStopEvent``). The SDK
  drops ``ping`` and raises on ``error`` itself; both are handled here for raw SSE readers.

Lossy spots, on purpose: ``response_format`` becomes a system-prompt instruction (or, with
``native_json_schema=True``, ``output_config.format``); ``n > 1``, audio parts and custom
tools raise ``TranslationError``; penalties, seed, logprobs and whitespace-only stop
sequences (Anthropic rejects them) are dropped; temperature is
capped at 1.0 (Anthropic's range); sampling params the target's API version and model
refuse are dropped first (``translate.accepts``: under ``anthropic-version: 2026-10-21``,
the SDK's default, all of them; under 2023-06-01 the per-model rules); thinking blocks are
not surfaced. Tool-call history without ``tools`` in the request gets placeholder tool
definitions and ``tool_choice: none`` (Anthropic rejects tool_use blocks without definitions).

Prompt-cache marks (``cache_control``, carried in the pivot as ``cachemarks`` describes) go
back on the blocks they came from: system text blocks (the system prompt is then a list of
blocks), user, assistant and tool_result blocks, tools, and the top-level field.

The request translator returns the wire body: under 2023-06-01 ``temperature``/``top_p``
are top-level fields, which anthropic 2.x's ``create()`` no longer has as keywords (callers
of ``create()`` pass them in its ``extra_body``: ``sdk_kwargs``). There is never an
``extra_body`` field on the wire.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from modelroute.api.v1alpha1 import Params, Provider
from modelroute.sidecar.translate import chat
from modelroute.sidecar.translate.accepts import ParamFilter, default_filter
from modelroute.sidecar.translate.cachemarks import MARK
from modelroute.sidecar.translate.errors import StreamError, TranslationError
from modelroute.sidecar.translate.params import apply_params

Json = dict[str, Any]

DEFAULT_MAX_TOKENS = 1024

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# ---- request -------------------------------------------------------------------------

_UNSET: Any = object()  # ``accepts`` not given: derive the filter from api_version and model
SAMPLING_FIELDS = ("temperature", "top_p")


def chat_to_anthropic_request(
    request: Json,
    *,
    model: str,
    params: Params | None = None,
    system: str | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    native_json_schema: bool = False,
    api_version: str | None = None,
    accepts: ParamFilter | None = _UNSET,
) -> Json:
    """The Messages API body for the target (``sdk_kwargs`` makes ``create()`` keywords of it).

    ``request`` is the chat request as the app sent it (not mutated); ``params`` the
    target's effective params; ``system`` the route prompt's system text (it comes first).
    ``stream=True`` is included when the app streams. ``default_max_tokens`` is used when
    neither the request nor the params set a limit (Anthropic requires one).
    ``native_json_schema`` sends a ``json_schema`` response_format as
    ``output_config.format`` instead of a prompt instruction (only models with structured
    outputs accept it). ``accepts`` is the target's compiled ``ParamFilter`` (None: no
    rules); unset, it is derived from ``api_version`` (None: the SDK's) and ``model``.
    Raises ``TranslationError`` for what Anthropic cannot express.
    """
    if accepts is _UNSET:
        accepts = default_filter(Provider.ANTHROPIC, api_version, model, params)
    if accepts is not None:
        request, params = accepts.strip(request)
    body = apply_params(request, params, system)
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise TranslationError("n > 1 is not supported by Anthropic targets")

    system_parts: list[str | Json] = []
    messages = _messages(body.get("messages"), system_parts)
    if not messages:
        raise TranslationError("messages must hold at least one user or assistant message")

    limit = chat.max_tokens_of(body)
    kwargs: Json = {"model": model, "messages": messages, "max_tokens": limit if limit is not None else default_max_tokens}

    response_format = body.get("response_format")
    schema = chat.json_schema_of(response_format)
    if native_json_schema and schema is not None:
        kwargs["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    else:
        instruction = chat.response_format_instruction(response_format)
        if instruction:
            system_parts.append(instruction)
    if system_parts:
        kwargs["system"] = _system(system_parts)

    # Top-level fields of the 2023-06-01 API (the filter above removed what the target refuses).
    temperature = body.get("temperature")
    if temperature is not None:
        kwargs["temperature"] = min(float(temperature), 1.0)
    if body.get("top_p") is not None:
        kwargs["top_p"] = body["top_p"]
    # Anthropic rejects whitespace-only stop sequences; they are dropped.
    stops = [s for s in chat.stop_list(body.get("stop")) or () if s.strip()]
    if stops:
        kwargs["stop_sequences"] = stops

    tools = body.get("tools")
    if tools:
        kwargs["tools"] = [_tool(t) for t in tools]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            kwargs["tool_choice"] = choice
    else:
        used = _tool_names(messages)
        if used:
            # Anthropic rejects tool_use history without tool definitions: declare the
            # names used, with an open schema, and forbid new calls.
            kwargs["tools"] = [{"name": name, "input_schema": {"type": "object"}} for name in used]
            kwargs["tool_choice"] = {"type": "none"}
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        kwargs["metadata"] = {"user_id": user}
    if body.get(MARK) is not None:
        kwargs[MARK] = body[MARK]
    if body.get("stream"):
        kwargs["stream"] = True
    return kwargs


def _system(parts: list[str | Json]) -> str | list[Json]:
    """The system prompt: one string, or text blocks when a part carries a cache mark."""
    if all(isinstance(p, str) for p in parts):
        return "\n\n".join(p for p in parts if isinstance(p, str))
    return [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]


def sdk_kwargs(body: Json) -> Json:
    """A wire body as keywords of anthropic 2.x's ``messages.create()`` (sampling fields in ``extra_body``)."""
    extra = {k: body[k] for k in SAMPLING_FIELDS if k in body}
    if not extra:
        return body
    return {**{k: v for k, v in body.items() if k not in extra}, "extra_body": extra}


def _messages(messages: Any, system_parts: list[str | Json]) -> list[Json]:
    """Chat messages -> Anthropic messages; system/developer text is collected into ``system_parts``
    (text blocks, for a message with cache-marked parts)."""
    texts, rest = chat.split_system(messages)
    if any(m.get("role") in ("system", "developer") and _has_marks(m.get("content")) for m in messages):
        for m in messages:
            if m.get("role") in ("system", "developer"):
                content = m.get("content")
                if _has_marks(content):
                    system_parts.extend(_text_block(p) for p in _text_parts(content))
                elif chat.text_of(content):
                    system_parts.append(chat.text_of(content))
    else:
        system_parts.extend(texts)
    out: list[Json] = []
    for m in rest:
        role = m.get("role")
        if role == "user":
            blocks = _user_blocks(m.get("content"))
            _append(out, "user", blocks)
        elif role == "assistant":
            blocks = _assistant_blocks(m)
            if blocks:
                _append(out, "assistant", blocks)
        elif role == "tool":
            _append(out, "user", [_tool_result(m)])
        else:
            raise TranslationError(f"unsupported message role {role!r} for Anthropic targets")
    return out


def _tool_names(messages: list[Json]) -> list[str]:
    names: dict[str, None] = {}
    for m in messages:
        if m["role"] == "assistant":
            for block in m["content"]:
                if block.get("type") == "tool_use":
                    names[block["name"]] = None
    return list(names)


def _append(out: list[Json], role: str, blocks: list[Json] | str) -> None:
    """Append a message, merging it into the previous one when the role repeats (Anthropic alternates)."""
    if out and out[-1]["role"] == role:
        prev = out[-1]
        if isinstance(prev["content"], str):
            prev["content"] = [{"type": "text", "text": prev["content"]}] if prev["content"] else []
        prev["content"].extend([{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks)
        return
    out.append({"role": role, "content": blocks})


def _user_blocks(content: Any) -> list[Json] | str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError("user content must be a string or a list of parts")
    blocks: list[Json] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append(_text_block(part))
            continue
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image or "")
            data = chat.parse_data_url(url)
            if data is not None:
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": data[0], "data": data[1]}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
        elif kind == "file":
            file = part.get("file") or {}
            data = chat.parse_data_url(str(file.get("file_data") or ""))
            if data is None:
                raise TranslationError("file parts need file_data as a base64 data URL for Anthropic targets")
            blocks.append({"type": "document", "source": {"type": "base64", "media_type": data[0], "data": data[1]}})
        else:
            raise TranslationError(f"content part type {kind!r} is not supported by Anthropic targets")
        if MARK in part:
            blocks[-1][MARK] = part[MARK]
    return blocks


def _has_marks(content: Any) -> TypeGuard[list[Json]]:
    return isinstance(content, list) and any(isinstance(p, dict) and MARK in p for p in content)


def _text_parts(content: list[Any]) -> list[Json]:
    """The text parts of a marked content list (each with a string ``text``), in order."""
    return [p for p in content if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)]


def _text_block(part: Json) -> Json:
    block: Json = {"type": "text", "text": part.get("text", "")}
    if MARK in part:
        block[MARK] = part[MARK]
    return block


def _assistant_blocks(m: Json) -> list[Json]:
    blocks: list[Json] = []
    content = m.get("content")
    if _has_marks(content):
        blocks.extend(_text_block(p) for p in _text_parts(content) if p["text"] or MARK in p)
    else:
        text = chat.text_of(content)
        if text:
            blocks.append({"type": "text", "text": text})
    for call in m.get("tool_calls") or ():
        if call.get("type", "function") != "function":
            raise TranslationError(f"tool call type {call.get('type')!r} is not supported by Anthropic targets")
        fn = call.get("function") or {}
        blocks.append({
            "type": "tool_use", "id": call.get("id") or "", "name": fn.get("name") or "",
            "input": chat.parse_arguments(fn.get("arguments")),
        })
        if MARK in call:
            blocks[-1][MARK] = call[MARK]
    return blocks


def _tool_result(m: Json) -> Json:
    """A tool message as a ``tool_result`` block; ``Error: `` text (``chat.tool_error``) sets ``is_error``."""
    content = m.get("content")
    block: Json = {"type": "tool_result", "tool_use_id": m.get("tool_call_id") or ""}
    if _has_marks(content):  # the mark goes on the tool_result block, its text parts as one string
        text = "".join(p["text"] for p in _text_parts(content))
        block[MARK] = next(p[MARK] for p in reversed(content) if MARK in p)
    elif isinstance(content, list):
        block["content"] = [{"type": "text", "text": p.get("text", "")} for p in content if p.get("type") == "text"]
        return block
    else:
        text = "" if content is None else str(content)
    error = chat.tool_error(text)
    block["content"] = text if error is None else error
    if error is not None:
        block["is_error"] = True
    return block


def _tool(tool: Json) -> Json:
    if tool.get("type", "function") != "function":
        raise TranslationError(f"tool type {tool.get('type')!r} is not supported by Anthropic targets")
    fn = tool.get("function") or {}
    out: Json = {"name": fn.get("name") or "", "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    if MARK in tool:
        out[MARK] = tool[MARK]
    return out


def _tool_choice(choice: Any, parallel: Any) -> Json | None:
    out: Json | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise TranslationError("tool_choice function needs a name")
        out = {"type": "tool", "name": name}
    else:
        raise TranslationError(f"unsupported tool_choice {choice!r} for Anthropic targets")
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


# ---- response ------------------------------------------------------------------------

def anthropic_to_chat_response(message: Json, *, created: int, id: str | None = None, model: str | None = None) -> Json:
    """An Anthropic ``Message`` dict -> ``chat.completion`` dict.

    ``id`` defaults to the message id (``msg_...``), ``model`` to the message's model.
    Text blocks are concatenated; ``tool_use`` blocks become ``tool_calls`` (ids kept, so
    the app's tool results map back); thinking and server-tool blocks are dropped.
    """
    texts: list[str] = []
    calls: list[Json] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(chat.tool_call(block.get("id") or "", block.get("name") or "", chat.dumps(block.get("input") or {})))
    content: str | None = "".join(texts)
    if not content and calls:
        content = None
    reason = FINISH_REASONS.get(message.get("stop_reason") or "", "stop")
    if calls and reason == "stop":
        reason = "tool_calls"
    return chat.completion(
        id=id or message.get("id") or "",
        created=created,
        model=model or message.get("model") or "",
        choices=[chat.choice(0, content, calls, reason)],
        usage=usage_to_chat(message.get("usage")),
    )


def usage_to_chat(usage: Json | None) -> Json | None:
    """Anthropic usage -> OpenAI usage; prompt tokens include cache reads and writes."""
    if not usage:
        return None
    cached = usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    prompt = (usage.get("input_tokens") or 0) + (cached or 0) + (written or 0)
    by_ttl = usage.get("cache_creation")
    hour = by_ttl.get("ephemeral_1h_input_tokens") if isinstance(by_ttl, dict) else None
    return chat.usage(prompt, usage.get("output_tokens") or 0, cached=cached, cache_write=written,
                      cache_write_1h=hour if isinstance(hour, int) else None)


# ---- stream --------------------------------------------------------------------------

class AnthropicStreamToChat(chat.StreamToChat):
    """Anthropic stream events -> ``chat.completion.chunk`` dicts, one stream at a time.

    ``feed(event)`` returns the chunks to send (often none); ``finish()`` is called when the
    upstream iterator ends and raises ``StreamError`` if ``message_stop`` never came (a cut
    stream must not look complete). After the stream: ``usage`` (OpenAI usage dict, also
    when the app did not ask for it) and ``finish_reason``.

    ``model`` is used until ``message_start`` names the provider's model; ``id`` and
    ``created`` go into every chunk; ``include_usage`` adds the final usage-only chunk.
    """

    __slots__ = ("_blocks", "_done", "_started", "_stop_reason", "_tools", "_usage_in", "_with_args")

    def __init__(self, *, model: str, id: str, created: int, include_usage: bool) -> None:
        super().__init__(model=model, id=id, created=created, include_usage=include_usage)
        self._usage_in: Json = {}
        self._blocks: dict[int, int] = {}      # content block index -> tool call index
        self._tools = 0
        self._with_args: set[int] = set()      # tool call indexes that got argument text
        self._started = False
        self._done = False
        self._stop_reason: str | None = None

    def _chunk(self, delta: Json, finish_reason: str | None = None) -> Json:
        return chat.chunk(id=self.id, created=self.created, model=self.model, delta=delta, finish_reason=finish_reason)

    def feed(self, event: Json) -> list[Json]:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                text = delta.get("text")
                if text.__class__ is str:
                    return [self.text_chunk(text)] if text else []
                return [self._chunk({"content": text})] if text else []
            if dkind == "input_json_delta":
                partial = delta.get("partial_json")
                tool = self._blocks.get(event.get("index", -1))
                if not partial or tool is None:
                    return []
                self._with_args.add(tool)
                return [self._chunk({"tool_calls": [{"index": tool, "function": {"arguments": partial}}]})]
            return []  # thinking, signature, citations
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_start":
            return self._message_start(event)
        if kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
            self._merge_usage(event.get("usage"))
            return []
        if kind == "message_stop":
            return self._message_stop()
        if kind == "content_block_stop":
            tool = self._blocks.get(event.get("index", -1))
            if tool is None or tool in self._with_args:
                return []
            # A tool without arguments streams no JSON at all; OpenAI would send "{}".
            self._with_args.add(tool)
            return [self._chunk({"tool_calls": [{"index": tool, "function": {"arguments": "{}"}}]})]
        if kind == "ping":
            return []
        if kind == "error":
            err = event.get("error") or {}
            raise StreamError(str(err.get("message") or "upstream stream error"), error_type=str(err.get("type") or "api_error"), body=event)
        return []  # event types newer than this translator

    def _message_start(self, event: Json) -> list[Json]:
        message = event.get("message") or {}
        if message.get("model"):
            self.model = message["model"]
        self._merge_usage(message.get("usage"))
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: Json) -> list[Json]:
        block = event.get("content_block") or {}
        kind = block.get("type")
        out: list[Json] = []
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if kind == "text":
            if block.get("text"):
                out.append(self._chunk({"content": block["text"]}))
        elif kind == "tool_use":
            tool = self._tools
            self._tools += 1
            self._blocks[event.get("index", -1)] = tool
            start = block.get("input")
            if start:
                self._with_args.add(tool)
            out.append(self._chunk({"tool_calls": [{
                "index": tool, "id": block.get("id") or "", "type": "function",
                "function": {"name": block.get("name") or "", "arguments": chat.dumps(start) if start else ""},
            }]}))
        return out

    def _merge_usage(self, usage: Json | None) -> None:
        if usage:
            for key, value in usage.items():
                if value is not None and key in _USAGE_KEYS:
                    self._usage_in[key] = value

    def _message_stop(self) -> list[Json]:
        if self._done:
            return []
        self._done = True
        reason = FINISH_REASONS.get(self._stop_reason or "", "stop")
        if self._tools and reason == "stop":
            reason = "tool_calls"
        self.finish_reason = reason
        usage = usage_to_chat(self._usage_in) or chat.usage(0, 0)
        self.usage = usage
        out = [self._chunk({}, reason)]
        if self.include_usage:
            out.append(self.usage_chunk(usage))
        return out

    def finish(self) -> list[Json]:
        if not self._done:
            raise StreamError("stream ended before message_stop", error_type="incomplete_stream")
        return []


_USAGE_KEYS = frozenset({"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                         "cache_creation"})

"""Builders and readers for the pivot format: OpenAI Chat Completions as plain dicts.

Every provider translator produces its answers through these builders, so a response or
chunk has one shape whatever the provider (the shape the ``openai`` SDK's
``ChatCompletion`` / ``ChatCompletionChunk`` models accept). Readers here pull the common
facts out of a chat request (text of a message, the effective token limit, data URLs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelroute.sidecar.translate.errors import StreamError, TranslationError

Json = dict[str, Any]

COMPLETION = "chat.completion"
CHUNK = "chat.completion.chunk"


class RawChunk(dict[str, Any]):
    """A chunk (or a whole ``chat.completion``) that also holds the JSON text it was parsed from
    (``raw``), so a relay that did not change it can write that text instead of serializing the
    dict again (``server/wire.py``).

    Any change through the dict's own methods drops ``raw`` (None): the dict is then the truth.
    Code that changes a nested value of a chunk must copy the chunk instead (none does: chunks
    are built by the translators and read after).
    """

    __slots__ = ("raw",)

    def __init__(self, chunk: Json, raw: str | None) -> None:
        super().__init__(chunk)
        self.raw = raw

    def __setitem__(self, key: str, value: Any) -> None:
        self.raw = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.raw = None
        super().__delitem__(key)

    def __ior__(self, other: Any) -> RawChunk:  # type: ignore[misc,override]
        self.raw = None
        super().__ior__(other)
        return self

    def pop(self, *args: Any) -> Any:
        self.raw = None
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self.raw = None
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.raw = None
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.raw = None
        super().update(*args, **kwargs)

    def clear(self) -> None:
        self.raw = None
        super().clear()


_new_dict = dict.__new__
_fill = dict.update


def raw_chunk(chunk: Json, raw: str) -> RawChunk:
    """``RawChunk(chunk, raw)``, built without its Python ``__init__`` (once per relayed chunk: a quarter less work)."""
    out: RawChunk = _new_dict(RawChunk)
    _fill(out, chunk)
    out.raw = raw
    return out


def completion(
    *, id: str, created: int, model: str, choices: list[Json], usage: Json | None
) -> Json:
    """A ``chat.completion`` dict."""
    out: Json = {"id": id, "object": COMPLETION, "created": created, "model": model, "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


def choice(index: int, content: str | None, tool_calls: list[Json], finish_reason: str) -> Json:
    """One non-streaming choice. ``tool_calls`` is left out when empty (as OpenAI does)."""
    message: Json = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}


def tool_call(id: str, name: str, arguments: str) -> Json:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chunk(*, id: str, created: int, model: str, delta: Json, index: int = 0, finish_reason: str | None = None) -> Json:
    """A ``chat.completion.chunk`` with one choice."""
    return {
        "id": id, "object": CHUNK, "created": created, "model": model,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def usage_chunk(*, id: str, created: int, model: str, usage: Json) -> Json:
    """The final chunk of ``stream_options.include_usage``: no choices, only usage."""
    return {"id": id, "object": CHUNK, "created": created, "model": model, "choices": [], "usage": usage}


class StreamToChat:
    """What the provider stream translators share: the ids of the chunks they write, and what they
    learn by the end (``usage``, also when the app did not ask for it, and ``finish_reason``)."""

    __slots__ = ("_text_at", "created", "finish_reason", "id", "include_usage", "model", "usage")

    def __init__(self, *, model: str, id: str, created: int, include_usage: bool) -> None:
        self.model = model
        self.id = id
        self.created = created
        self.include_usage = include_usage
        self.usage: Json | None = None
        self.finish_reason: str | None = None
        self._text_at: tuple[str, int, str, str, str] | None = None  # (id, created, model, JSON before the text, after)

    def text_chunk(self, text: str) -> RawChunk:
        """``chunk(delta={"content": text})`` with this stream's ids, and its JSON text: the bulk of a
        stream, written by the OpenAI wire without serializing a dict per chunk (a template per stream)."""
        at = self._text_at
        if at is None or at[0] is not self.id or at[1] is not self.created or at[2] is not self.model:
            at = self._text_at = (self.id, self.created, self.model, *_text_template(self.id, self.created, self.model))
        out: RawChunk = _new_dict(RawChunk)
        _fill(out, id=self.id, object=CHUNK, created=self.created, model=self.model,
              choices=[{"index": 0, "delta": {"content": text}, "finish_reason": None, "logprobs": None}])
        out.raw = at[3] + _encode_text(text) + at[4]
        return out

    def usage_chunk(self, usage: Json) -> Json:
        """The final usage-only chunk (``stream_options.include_usage``)."""
        return usage_chunk(id=self.id, created=self.created, model=self.model, usage=usage)


# A chunk's JSON as the OpenAI wire writes it (``server.wire.dumps``): compact, not ASCII-escaped.
_encode_chunk = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # the same encoder's strings (C)
_EMPTY_TEXT = '"content":""'


def _text_template(id: str, created: int, model: str) -> tuple[str, str]:
    """The JSON of a text chunk with these ids around its text: cut from the encoder's own output."""
    empty = _encode_chunk(chunk(id=id, created=created, model=model, delta={"content": ""}))
    at = empty.index(_EMPTY_TEXT) + len(_EMPTY_TEXT) - 2  # no JSON string can hold it unescaped: it is the delta's
    return empty[:at], empty[at + 2:]


def usage(
    prompt: int, completion_tokens: int, *, cached: int | None = None, cache_write: int | None = None,
    reasoning: int | None = None, cache_write_1h: int | None = None,
) -> Json:
    """An OpenAI ``usage`` object; ``prompt`` already includes cached tokens (as OpenAI counts).

    ``cache_write_1h`` (``prompt_tokens_details.cache_write_1h_tokens``, only when not 0): the part of
    ``cache_write`` written with Anthropic's 1-hour TTL, which costs more (``pipeline.cost``)."""
    out: Json = {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}
    if cached is not None or cache_write is not None:
        details: Json = {"cached_tokens": cached or 0}
        if cache_write is not None:
            details["cache_write_tokens"] = cache_write
        if cache_write_1h:
            details["cache_write_1h_tokens"] = cache_write_1h
        out["prompt_tokens_details"] = details
    if reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


# ---- readers of a chat answer --------------------------------------------------------

def answer_text(completion: Json) -> str | None:
    """The text of choice 0 of a ``chat.completion``: its content, text parts joined (None when it has none).

    The one reading of "the answer"; what a tool-call answer stands for is each caller's
    (rollout evidence compares every call, eval scores the first call's arguments)."""
    message = _message(completion)
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None


def answer_tool_calls(completion: Json) -> list[Json]:
    """The tool calls of choice 0 of a ``chat.completion`` (dicts only; empty when none)."""
    return [c for c in _message(completion).get("tool_calls") or () if isinstance(c, dict)]


def _message(completion: Json) -> Json:
    choices = completion.get("choices") or ()
    first = choices[0] if choices else None
    message = first.get("message") if isinstance(first, dict) else None
    return message if isinstance(message, dict) else {}


def first_choice_deltas(chunk: Json) -> list[tuple[Any, list[Json], str | None]]:
    """(text, tool call deltas, finish_reason) of each choice-0 entry of a ``chat.completion.chunk``."""
    return [((c.get("delta") or {}).get("content"), (c.get("delta") or {}).get("tool_calls") or [], c.get("finish_reason"))
            for c in chunk.get("choices") or () if c.get("index", 0) == 0]


# ---- readers of a chat request -------------------------------------------------------


class ChunksToEvents:
    """The skeleton of a chat-chunk -> inbound-API event translator (Anthropic Messages, OpenAI Responses).

    Subclasses say what starts the stream, what a text or tool-call delta emits, what closes the
    open items at the finish reason and what ends the stream. The order is the same for all: the
    stream ends once the finish reason and the usage chunk have both come (``feed``), or at
    ``finish()``, which raises ``StreamError`` when no finish reason came: a cut stream never
    looks like a clean end.
    """

    __slots__ = ("_done", "_reason", "_started", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._reason: str | None = None
        self._usage: Json | None = None

    def feed(self, chunk: Json) -> list[Json]:
        out: list[Json] = []
        if not self._started:
            self._started = True
            self._start(chunk, out)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for text, calls, finish in first_choice_deltas(chunk):
            if text:
                self._text_delta(text, out)
            for call in calls:
                self._tool_delta(call, out)
            if finish:
                self._reason = finish
                self._close_all(out)
        if self._reason is not None and self._usage is not None and not self._done:
            out.extend(self._end())
        return out

    def finish(self) -> list[Json]:
        if self._done:
            return []
        if self._reason is None:
            raise StreamError("stream ended before a finish_reason", error_type="incomplete_stream")
        return self._end()

    def _start(self, chunk: Json, out: list[Json]) -> None:
        """The events that open the stream (``chunk``: the first one)."""
        raise NotImplementedError

    def _text_delta(self, text: str, out: list[Json]) -> None:
        raise NotImplementedError

    def _tool_delta(self, call: Json, out: list[Json]) -> None:
        raise NotImplementedError

    def _close_all(self, out: list[Json]) -> None:
        """Close what is open at the finish reason."""
        raise NotImplementedError

    def _end(self) -> list[Json]:
        """The events that end the stream; sets ``_done``."""
        raise NotImplementedError

def wants_usage(request: Json) -> bool:
    """True when the app asked for the final usage chunk (``stream_options.include_usage``)."""
    options = request.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def with_usage(request: Json) -> Json:
    """``request`` with ``stream_options.include_usage`` on (token stats), as it is if the app asked already."""
    if wants_usage(request):
        return request
    options = request.get("stream_options")
    return {**request, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}


def text_of(content: Any) -> str:
    """Plain text of a message's ``content``: a string, or the text parts of a list joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise TranslationError(f"message content must be a string or a list of parts, not {type(content).__name__}")


def split_system(messages: Any) -> tuple[list[str], list[Json]]:
    """(the system/developer messages' texts, the other messages in order), for APIs that take the
    system prompt apart; raises ``TranslationError`` unless ``messages`` is a list."""
    if not isinstance(messages, list):
        raise TranslationError("messages must be a list")
    system: list[str] = []
    rest: list[Json] = []
    for m in messages:
        if m.get("role") in ("system", "developer"):
            text = text_of(m.get("content"))
            if text:
                system.append(text)
        else:
            rest.append(m)
    return system, rest


def max_tokens_of(request: Json) -> int | None:
    """The request's token limit: the smaller of ``max_tokens`` / ``max_completion_tokens`` if both set."""
    a = request.get("max_tokens")
    b = request.get("max_completion_tokens")
    limits = [v for v in (a, b) if isinstance(v, int) and not isinstance(v, bool)]
    return min(limits) if limits else None


def stop_list(stop: Any) -> list[str] | None:
    """OpenAI ``stop`` (string or list) as a list, or None."""
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] or None


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` -> (mime, base64 data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise TranslationError("data URLs must be base64 encoded (data:<mime>;base64,...)")
    return head[5:-7] or "application/octet-stream", data


TOOL_ERROR = "Error: "


def tool_error(text: str) -> str | None:
    """The error detail of a tool result marked as failed, or None.

    The pivot (OpenAI Chat Completions) has no error flag on tool messages: a failed tool is
    reported as text, and by convention (docs/tool-conformance.md) text that starts with
    ``"Error: "`` is a failed call. Inbound translators write it for Anthropic ``is_error`` and a
    Gemini ``functionResponse`` ``error``; outbound translators read it back into those forms.
    """
    return text[len(TOOL_ERROR):] if text.startswith(TOOL_ERROR) else None


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """A tool call's ``arguments`` JSON string as an object (providers want objects).

    Small models sometimes emit broken JSON; such history is kept, not rejected:
    anything that is not a JSON object becomes ``{"_raw": <string>}``.
    """
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        return {"_raw": str(arguments)}
    return value if isinstance(value, dict) else {"_raw": str(arguments)}


def dumps(value: Any) -> str:
    """Compact JSON, as OpenAI writes tool-call arguments."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def response_format_instruction(response_format: Any) -> str | None:
    """A system-prompt instruction standing in for ``response_format`` where there is no native mode."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "Respond with one valid JSON object only: no prose, no code fences."
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return (
            "Respond with one valid JSON object only (no prose, no code fences) that conforms to this "
            f"JSON Schema:\n{dumps(schema if schema is not None else {})}"
        )
    return None


def json_schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON Schema of a ``json_schema`` response_format, or None."""
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            schema: dict[str, Any] = spec["schema"]
            return schema
    return None

"""How an answer is written back in the app's own API: OpenAI Chat or Responses, Anthropic Messages or Gemini.

The routing path is the same for every inbound API (canonical chat request in, ``chat.completion``
or chunks out); a ``Wire`` renders the result, the errors and the stream framing for the SDK
the app uses. The OpenAI wire is the identity plus SSE framing, so the common path pays nothing.
Every stream ends either cleanly (``finish``) or with an in-protocol error (``error``) that
the app's SDK raises: never a clean-looking end after a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from modelroute.sidecar.errors import FailureKind
from modelroute.sidecar.translate.anthropic_inbound import (
    ChatStreamToAnthropic,
    anthropic_error_from_openai,
    anthropic_sse,
    chat_to_anthropic_response,
    error_event,
)
from modelroute.sidecar.translate.chat import RawChunk
from modelroute.sidecar.translate.errors import StreamError
from modelroute.sidecar.translate.gemini_inbound import (
    ChatStreamToGemini,
    chat_to_gemini_response,
    error_chunk,
    gemini_error_from_openai,
    gemini_sse,
)
from modelroute.sidecar.translate.responses_inbound import (
    ChatStreamToResponses,
    chat_to_responses_response,
    responses_sse,
)

Json = dict[str, Any]
JSON = "application/json"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(obj: Any) -> bytes:
    return _dumps(obj).encode()


class StreamEncoder(Protocol):
    def feed(self, chunk: Json) -> bytes:
        """SSE bytes for one ``chat.completion.chunk`` (may be empty)."""
        ...

    def feed_all(self, chunks: list[Json]) -> bytes:
        """``feed`` of each chunk of a group that goes out in one write, joined."""
        ...

    def finish(self) -> bytes:
        """The clean end of the stream; raises ``StreamError`` if the answer is incomplete."""
        ...

    def error(self, message: str, kind: str | None) -> bytes:
        """The in-protocol error that ends a failed stream (``kind``: a FailureKind value, None: internal)."""
        ...


class Wire(Protocol):
    name: str

    def error(self, status: int, body: Json) -> web.Response:
        """An error response from the sidecar's OpenAI-style error body."""
        ...

    def response(self, completion: Json) -> bytes:
        """The JSON body for a ``chat.completion``."""
        ...

    def stream(self, first: Json) -> StreamEncoder:
        """An encoder for a stream whose first chunk is ``first``."""
        ...


# ---- OpenAI ---------------------------------------------------------------------------


class _Feeds:
    """``feed_all`` for encoders that have nothing cheaper than ``feed`` per chunk."""

    __slots__ = ()

    def feed(self, chunk: Json) -> bytes:
        raise NotImplementedError

    def feed_all(self, chunks: list[Json]) -> bytes:
        return b"".join(map(self.feed, chunks))


class _OpenAIStream:
    __slots__ = ()

    def feed(self, chunk: Json) -> bytes:
        if chunk.__class__ is RawChunk and chunk.raw is not None:
            return b"data: " + chunk.raw.encode() + b"\n\n"  # as the upstream sent it
        return b"data: " + dumps(chunk) + b"\n\n"

    def feed_all(self, chunks: list[Json]) -> bytes:
        """``feed`` of each, joined: the texts joined and encoded once (the same bytes)."""
        if len(chunks) == 1:
            return self.feed(chunks[0])
        texts = [c.raw if c.__class__ is RawChunk and c.raw is not None else _dumps(c) for c in chunks]  # type: ignore[attr-defined]
        return ("data: " + "\n\ndata: ".join(texts) + "\n\n").encode() if texts else b""

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, message: str, kind: str | None) -> bytes:
        # The OpenAI SDK raises APIError for a data line holding {"error": ...}.
        code = "stream_interrupted" if kind is not None else "internal_error"
        err = {"message": message, "type": "server_error", "param": None, "code": code}
        if kind is not None:
            err["outcome"] = kind
        return b"data: " + dumps({"error": err}) + b"\n\n"


class OpenAIWire:
    name = "openai"
    _stream = _OpenAIStream()

    def error(self, status: int, body: Json) -> web.Response:
        return web.Response(status=status, body=dumps(body), content_type=JSON)

    def response(self, completion: Json) -> bytes:
        if completion.__class__ is RawChunk and completion.raw is not None:  # type: ignore[attr-defined]
            return completion.raw.encode()  # type: ignore[attr-defined]  # as the upstream sent it
        return dumps(completion)

    def stream(self, first: Json) -> StreamEncoder:
        return self._stream


# ---- Anthropic Messages and Gemini: a translator per stream ------------------------------


class _ChatStreamTranslator(Protocol):
    def feed(self, chunk: Json) -> list[Json]: ...

    def finish(self) -> list[Json]: ...


@dataclass(frozen=True, slots=True)
class _Dialect:
    """What a translated wire needs of one inbound API (the same code serves Anthropic and Gemini)."""

    name: str
    translator: Callable[..., _ChatStreamTranslator]  # ChatStreamToX(model=, id=)
    default_id: str  # the stream's id when the first chunk has none
    sse: Callable[[Json], bytes]  # one event as the API's SSE frame
    error_event: Callable[[StreamError], Json]  # the API's in-stream error
    error_types: Mapping[str, str]  # FailureKind value -> the API's error type
    default_error_type: str
    error_body: Callable[[int, Json], Json]  # the API's error body from the sidecar's OpenAI-style one
    response_body: Callable[[Json], Json]  # the API's answer from a chat.completion


class _TranslatedStream(_Feeds):
    __slots__ = ("_d", "_t")

    def __init__(self, d: _Dialect, first: Json) -> None:
        self._d = d
        self._t = d.translator(model=str(first.get("model") or ""), id=str(first.get("id") or d.default_id))

    def feed(self, chunk: Json) -> bytes:
        return b"".join(map(self._d.sse, self._t.feed(chunk)))

    def finish(self) -> bytes:
        return b"".join(map(self._d.sse, self._t.finish()))

    def error(self, message: str, kind: str | None) -> bytes:
        d = self._d
        return d.sse(d.error_event(StreamError(message, error_type=d.error_types.get(kind or "", d.default_error_type))))


class TranslatedWire:
    __slots__ = ("_d", "name")

    def __init__(self, d: _Dialect) -> None:
        self._d, self.name = d, d.name

    def error(self, status: int, body: Json) -> web.Response:
        return web.Response(status=status, body=dumps(self._d.error_body(status, body)), content_type=JSON)

    def response(self, completion: Json) -> bytes:
        return dumps(self._d.response_body(completion))

    def stream(self, first: Json) -> StreamEncoder:
        return _TranslatedStream(self._d, first)


_ANTHROPIC = _Dialect(
    name="anthropic", translator=ChatStreamToAnthropic, default_id="msg", sse=anthropic_sse, error_event=error_event,
    error_types={FailureKind.OVERLOADED.value: "overloaded_error", FailureKind.RATE_LIMITED.value: "rate_limit_error"},
    default_error_type="api_error", error_body=anthropic_error_from_openai, response_body=chat_to_anthropic_response)

_GEMINI = _Dialect(
    name="gemini", translator=ChatStreamToGemini, default_id="", sse=gemini_sse, error_event=error_chunk,
    error_types={FailureKind.OVERLOADED.value: "UNAVAILABLE", FailureKind.RATE_LIMITED.value: "RESOURCE_EXHAUSTED",
                 FailureKind.SERVER.value: "INTERNAL", FailureKind.CONNECTION.value: "UNAVAILABLE",
                 FailureKind.TIMEOUT.value: "DEADLINE_EXCEEDED"},
    default_error_type="bad_event", error_body=gemini_error_from_openai, response_body=chat_to_gemini_response)


# ---- OpenAI Responses --------------------------------------------------------------------

_RESPONSES_CODE = {FailureKind.RATE_LIMITED.value: "rate_limit_exceeded"}


class _ResponsesStream(_Feeds):
    __slots__ = ("_t",)

    def __init__(self, first: Json, echo: Json) -> None:
        self._t = ChatStreamToResponses(model=str(first.get("model") or ""), id=str(first.get("id") or ""), echo=echo)

    def feed(self, chunk: Json) -> bytes:
        return b"".join(responses_sse(e) for e in self._t.feed(chunk))

    def finish(self) -> bytes:
        return b"".join(responses_sse(e) for e in self._t.finish())

    def error(self, message: str, kind: str | None) -> bytes:
        return b"".join(responses_sse(e) for e in self._t.failed(message, _RESPONSES_CODE.get(kind or "", "server_error")))


class ResponsesWire(OpenAIWire):
    """One request's wire: a ``Response`` repeats the request's settings (``echo``, ``response_echo``)."""

    name = "openai-responses"
    __slots__ = ("_echo",)

    def __init__(self, echo: Json) -> None:
        self._echo = echo

    def response(self, completion: Json) -> bytes:
        return dumps(chat_to_responses_response(completion, echo=self._echo))

    def stream(self, first: Json) -> StreamEncoder:
        return _ResponsesStream(first, self._echo)


OPENAI = OpenAIWire()
ANTHROPIC = TranslatedWire(_ANTHROPIC)
GEMINI = TranslatedWire(_GEMINI)

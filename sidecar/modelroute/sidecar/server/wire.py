"""How an answer is written back in the app's own API: OpenAI Chat or Responses, Anthropic Messages or Gemini.

The routing path is the same for every inbound API (canonical chat request in, ``chat.completion``
or chunks out); a ``Wire`` renders the result, the errors and the stream framing for the SDK
the app uses. The OpenAI wire is the identity plus SSE framing, so the common path pays nothing.
Every stream ends either cleanly (``finish``) or with an in-protocol error (``error``) that
the app's SDK raises: never a clean-looking end after a failure.
"""

from __future__ import annotations

import json
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


class _OpenAIStream:
    __slots__ = ()

    def feed(self, chunk: Json) -> bytes:
        return b"data: " + dumps(chunk) + b"\n\n"

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
        return dumps(completion)

    def stream(self, first: Json) -> StreamEncoder:
        return self._stream


# ---- Anthropic Messages ------------------------------------------------------------------

_ANTHROPIC_KIND = {FailureKind.OVERLOADED.value: "overloaded_error", FailureKind.RATE_LIMITED.value: "rate_limit_error"}


class _AnthropicStream:
    __slots__ = ("_t",)

    def __init__(self, first: Json) -> None:
        self._t = ChatStreamToAnthropic(model=str(first.get("model") or ""), id=str(first.get("id") or "msg"))

    def feed(self, chunk: Json) -> bytes:
        return b"".join(anthropic_sse(e) for e in self._t.feed(chunk))

    def finish(self) -> bytes:
        return b"".join(anthropic_sse(e) for e in self._t.finish())

    def error(self, message: str, kind: str | None) -> bytes:
        return anthropic_sse(error_event(StreamError(message, error_type=_ANTHROPIC_KIND.get(kind or "", "api_error"))))


class AnthropicWire:
    name = "anthropic"

    def error(self, status: int, body: Json) -> web.Response:
        return web.Response(status=status, body=dumps(anthropic_error_from_openai(status, body)), content_type=JSON)

    def response(self, completion: Json) -> bytes:
        return dumps(chat_to_anthropic_response(completion))

    def stream(self, first: Json) -> StreamEncoder:
        return _AnthropicStream(first)


# ---- Gemini ---------------------------------------------------------------------------------

_GEMINI_RETRYABLE = {FailureKind.OVERLOADED.value: "UNAVAILABLE", FailureKind.RATE_LIMITED.value: "RESOURCE_EXHAUSTED",
                     FailureKind.SERVER.value: "INTERNAL", FailureKind.CONNECTION.value: "UNAVAILABLE",
                     FailureKind.TIMEOUT.value: "DEADLINE_EXCEEDED"}


class _GeminiStream:
    __slots__ = ("_t",)

    def __init__(self, first: Json) -> None:
        self._t = ChatStreamToGemini(model=str(first.get("model") or ""), id=str(first.get("id") or ""))

    def feed(self, chunk: Json) -> bytes:
        return b"".join(gemini_sse(c) for c in self._t.feed(chunk))

    def finish(self) -> bytes:
        return b"".join(gemini_sse(c) for c in self._t.finish())

    def error(self, message: str, kind: str | None) -> bytes:
        return gemini_sse(error_chunk(StreamError(message, error_type=_GEMINI_RETRYABLE.get(kind or "", "bad_event"))))


class GeminiWire:
    name = "gemini"

    def error(self, status: int, body: Json) -> web.Response:
        return web.Response(status=status, body=dumps(gemini_error_from_openai(status, body)), content_type=JSON)

    def response(self, completion: Json) -> bytes:
        return dumps(chat_to_gemini_response(completion))

    def stream(self, first: Json) -> StreamEncoder:
        return _GeminiStream(first)


# ---- OpenAI Responses --------------------------------------------------------------------

_RESPONSES_CODE = {FailureKind.RATE_LIMITED.value: "rate_limit_exceeded"}


class _ResponsesStream:
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
ANTHROPIC = AnthropicWire()
GEMINI = GeminiWire()

"""What every provider dialect offers the server, and small shared wire helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..model import Answer, Prompt, Provider


class BadRequest(Exception):
    """The request is invalid for the provider; rendered in the provider's error envelope."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse_data(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def sse_event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(obj) + b"\n\n"


class Dialect(Protocol):
    provider: Provider
    tool_id_prefix: str
    request_id_header: str  # response header carrying a request id ("" for none)

    def check_auth(self, headers: Mapping[str, str], query: Mapping[str, str]) -> BadRequest | None:
        """An auth error when credentials/required headers are missing, else None."""
        ...

    def validate(self, body: Any, headers: Mapping[str, str]) -> BadRequest | None:
        """The 400 the real API gives a request its schema refuses (fields the request's API
        version does not have), or None. Runs before ``parse``."""
        ...

    def parse(self, body: Any, model: str | None, stream: bool | None) -> Prompt:
        """The prompt of a request body (raises BadRequest). Gemini passes model/stream
        from the URL; the others read them from the body."""
        ...

    def response(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> dict[str, Any]: ...

    def stream_frames(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> list[bytes]:
        """Every SSE frame of the streamed answer, terminator included."""
        ...

    def error_body(self, status: int, message: str, error_type: str | None, param: str | None) -> bytes: ...

    def stream_error_frame(self, status: int, message: str, error_type: str | None) -> bytes: ...

    def models_body(self, models: list[str]) -> dict[str, Any]: ...


NewId = Callable[[], str]

"""SDK-independent pieces of the failure mapping shared by the adapters.

Each adapter knows its SDK's exception classes; what an HTTP status, a ``retry-after``
header or a provider error body *means* is decided here once, so the three adapters
classify failures identically. Messages are built from status, error type and the
provider's message only; they never contain request headers (where the API key lives).
Every field taken from a provider's error (type, code, param, message) is scrubbed of the
target's keys and of anything key-shaped before it is kept (``client_error``): a provider that
echoes the key back, in whatever field, never gets it shown to the app.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from modelroute.sidecar.errors import FailureKind, UpstreamError

Json = dict[str, Any]

_KEYISH = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|AIza[0-9A-Za-z_\-]{10,}|Bearer\s+\S+)")
MAX_MESSAGE = 300
TARGET_FAULTS = frozenset({401, 403, 404})


def _mask(text: str, secrets: tuple[str | None, ...]) -> str:
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _KEYISH.sub("***", text)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` shortened, with anything that looks like a key (or is one of ``secrets``) masked."""
    text = _mask(text, secrets)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


MAX_BODY_DEPTH = 16


def scrub_tree(value: Any, secrets: tuple[str | None, ...] = (), depth: int = 0) -> Any:
    """A provider's error body with every string (keys included) masked; nesting past ``MAX_BODY_DEPTH`` dropped."""
    if isinstance(value, str):
        return _mask(value, secrets)
    if depth >= MAX_BODY_DEPTH:
        return None
    if isinstance(value, dict):
        return {_mask(str(k), secrets): scrub_tree(v, secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_tree(v, secrets, depth + 1) for v in value]
    return value


def retry_after_seconds(headers: Mapping[str, str] | None, wall: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` (preferred) or ``retry-after`` (seconds or an HTTP date, counted from
    ``wall``, default now); header names lower-case. The one parser: the adapters' errors and the limiters use it."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra is None:
        return None
    try:
        return max(float(ra), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra)
        return max(when.timestamp() - (time.time() if wall is None else wall), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def error_type_of(body: Any) -> str | None:
    """The provider's error type: Anthropic ``error.type``, OpenAI ``error.type``/``code``, Gemini ``error.status``."""
    if not isinstance(body, dict):
        return None
    err = body.get("error", body)
    if isinstance(err, dict):
        for k in ("type", "status", "code"):
            v = err.get(k)
            if isinstance(v, str):
                return v
    t = body.get("type")
    return t if isinstance(t, str) and t != "error" else None


def error_message_of(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    err = body.get("error", body)
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])
    return None


def parse_body(raw: bytes | str | None) -> Json | None:
    """The JSON object in an error body, or None."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def upstream_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(type, code, param) of a provider error body, whatever its provider's shape; unscrubbed."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return None, None, None
    type_, code, param = inner.get("type") or inner.get("status"), inner.get("code"), inner.get("param")
    return (type_ if isinstance(type_, str) else None, code if isinstance(code, str) else None,
            param if isinstance(param, str) else None)


def client_error(status: int, message: str, error_type: str = "invalid_request_error", body: Json | None = None,
                 *, secrets: tuple[str | None, ...] = ()) -> UpstreamError:
    """A CLIENT failure, returned to the app with the provider's status and its error's fields.

    ``body`` is the provider's error body with every string scrubbed (of ``secrets`` and of
    anything key-shaped); without one, an OpenAI error envelope of ``message`` and ``error_type``.
    """
    message = scrub(message, *secrets)
    if body is None:
        clean: Json = {"error": {"message": message, "type": scrub(error_type, *secrets), "param": None, "code": None}}
    else:
        clean = scrub_tree(body, secrets)
    return UpstreamError(FailureKind.CLIENT, message, status=status, body=clean)


def from_status(
    status: int,
    headers: Mapping[str, str] | None,
    body: Any,
    *,
    provider: str,
    secrets: tuple[str | None, ...] = (),
) -> UpstreamError:
    """Classify an HTTP error answer of a provider.

    429 -> RATE_LIMITED (with retry-after); 529 or an ``overloaded_error`` type ->
    OVERLOADED; 408 -> TIMEOUT; other 5xx -> SERVER; 401/403/404 and Gemini's 400
    ``API_KEY_INVALID`` (key or model of the target is wrong) -> SERVER so the route falls back; a 400 saying the
    request exceeds the context window -> CONTEXT_WINDOW (fallback, breaker spared); other 4xx -> CLIENT with the
    provider's body so the app gets it as is.
    """
    etype = error_type_of(body)
    emsg = error_message_of(body)
    detail = scrub(f"{provider} {status}" + (f" {etype}" if etype else "") + (f": {emsg}" if emsg else ""), *secrets)
    retry_after = retry_after_seconds(headers)
    if status == 529 or etype == "overloaded_error":
        return UpstreamError(FailureKind.OVERLOADED, detail, status=status, retry_after=retry_after)
    if status == 429:
        return UpstreamError(FailureKind.RATE_LIMITED, detail, status=status, retry_after=retry_after)
    if status == 408:
        return UpstreamError(FailureKind.TIMEOUT, detail, status=status)
    if status >= 500:
        return UpstreamError(FailureKind.SERVER, detail, status=status, retry_after=retry_after)
    if status == 400 and _too_long(body):
        # the request does not fit this model's window; a longer-context target may take it
        return UpstreamError(FailureKind.CONTEXT_WINDOW, detail, status=status)
    if status in TARGET_FAULTS or (status == 400 and _key_rejected(body)):
        # bad key, no access, unknown model: the target's config is wrong, not the app's
        # request; another target may well work, and the app must not see our 401.
        return UpstreamError(FailureKind.SERVER, detail, status=status)
    if 400 <= status < 500:
        return client_error(status, detail, etype or "invalid_request_error", body if isinstance(body, dict) else None,
                            secrets=secrets)
    return UpstreamError(FailureKind.BAD_RESPONSE, detail, status=status)


def _key_rejected(body: Any) -> bool:
    """Gemini answers a bad API key with 400 INVALID_ARGUMENT, reason ``API_KEY_INVALID``: the target's fault."""
    err = body.get("error") if isinstance(body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    return isinstance(details, list) and any(
        isinstance(d, dict) and d.get("reason") in _KEY_REASONS for d in details
    )


_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})

# How each API says "context too long": OpenAI's code; Anthropic's and Gemini's messages (their 400s carry no code).
_TOO_LONG_CODES = frozenset({"context_length_exceeded"})
_TOO_LONG_TEXT = ("prompt is too long", "exceed context limit", "exceeds the maximum number of tokens",
                  "maximum context length")


def _too_long(body: Any) -> bool:
    """Whether a 400 body says the request exceeds the model's context window (``docs/context-windows.md``)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return False
    if err.get("code") in _TOO_LONG_CODES:
        return True
    message = err.get("message")
    return isinstance(message, str) and any(t in message for t in _TOO_LONG_TEXT)


def bad_response(provider: str, what: str) -> UpstreamError:
    return UpstreamError(FailureKind.BAD_RESPONSE, f"{provider} answered garbage: {what}", status=502)

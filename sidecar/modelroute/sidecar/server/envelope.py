"""OpenAI-style error bodies and the mapping from routing outcomes to HTTP statuses.

Apps use the OpenAI SDK, which reads ``{"error": {"message", "type", "param", "code"}}`` and
raises the matching exception class from the status code; so every error the sidecar returns,
including the ones it makes up itself, has that shape (the Anthropic and Gemini listeners
re-dress it, ``wire.py``). Messages never carry stack traces or keys: every field taken from an
upstream error is scrubbed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from modelroute.sidecar.errors import Attempt, DeadlineExceeded, FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.providers.errors import scrub, upstream_fields

JSON = "application/json"


def error_body(message: str, type_: str, *, param: str | None = None, code: str | None = None, **extra: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "type": type_, "param": param, "code": code}
    err.update(extra)
    return {"error": err}


def error_response(
    status: int,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = json.dumps(error_body(message, type_, param=param, code=code, **extra))
    return web.Response(status=status, text=body, content_type=JSON, headers=headers)


def attempts_json(attempts: list[Attempt]) -> list[dict[str, Any]]:
    return [
        {"target": a.target, "outcome": a.outcome, "status": a.status, "reason": a.reason, "durationMs": round(a.duration_ms, 1)}
        for a in attempts
    ]


def attempts_summary(attempts: list[Attempt]) -> str:
    if not attempts:
        return "no target was attempted"
    return "; ".join(f"{a.target}: {a.status if a.status is not None else '-'} {a.outcome} ({a.reason})" for a in attempts)


_CLIENT_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 409: "conflict_error", 413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


def _upstream_detail(err: UpstreamError) -> tuple[str | None, str | None, str | None]:
    """(type, code, param) from a provider error body, scrubbed again (the adapters scrub with the target's keys)."""
    type_, code, param = upstream_fields(err.body)
    return (scrub(type_) if type_ is not None else None, scrub(code) if code is not None else None,
            scrub(param) if param is not None else None)


_TOO_BIG = frozenset({FailureKind.CONTEXT_WINDOW.value, FailureKind.INPUT_SIZE.value})


def failure_status(exc: RouteFailed | DeadlineExceeded) -> int:
    """HTTP status for a request the router could not serve."""
    if isinstance(exc, DeadlineExceeded):
        return 504
    if exc.client_error is not None:
        status = exc.client_error.status
        return status if status is not None and 400 <= status < 500 else 400
    tried = [a for a in exc.attempts if a.outcome != FailureKind.CIRCUIT_OPEN.value]
    if any(a.outcome == FailureKind.INVALID_OUTPUT.value for a in tried):
        return 422  # some target answered, and no answer met the route's output contract
    if tried and all(a.outcome == FailureKind.BAD_RESPONSE.value for a in tried):
        return 502
    if tried and all(a.outcome == FailureKind.LIMITED.value for a in tried):
        return 429  # every target is at its local rate limit
    if tried and all(a.outcome in _TOO_BIG for a in tried):
        return 400  # no target's window (or when rule) takes a request this long
    return 503


def failure_body(route: str, exc: RouteFailed | DeadlineExceeded) -> tuple[int, dict[str, Any]]:
    status = failure_status(exc)
    attempts = attempts_json(exc.attempts)
    if isinstance(exc, DeadlineExceeded):
        msg = f"route {route!r}: deadline exceeded before any target answered; attempts: {attempts_summary(exc.attempts)}"
        return status, error_body(msg, "timeout_error", code="deadline_exceeded", attempts=attempts)
    if exc.client_error is not None:
        err = exc.client_error
        type_, code, param = _upstream_detail(err)
        target = exc.attempts[-1].target if exc.attempts else None
        msg = f"target {target!r} rejected the request: {err.message}" if target else err.message
        return status, error_body(msg, type_ or _CLIENT_TYPES.get(status, "invalid_request_error"), param=param, code=code, attempts=attempts)
    if status == 422:
        last = [a for a in exc.attempts if a.outcome == FailureKind.INVALID_OUTPUT.value][-1]
        msg = f"route {route!r}: no target produced a valid answer (last: target {last.target!r}: {last.reason}); attempts: {attempts_summary(exc.attempts)}"
        return status, error_body(msg, "invalid_output", code="invalid_output", attempts=attempts)
    if status == 502:
        msg = f"route {route!r}: every target answered with an invalid response; attempts: {attempts_summary(exc.attempts)}"
        return status, error_body(msg, "api_error", code="bad_upstream_response", attempts=attempts)
    if status == 429:
        msg = f"route {route!r}: every target is at its local rate limit; attempts: {attempts_summary(exc.attempts)}"
        return status, error_body(msg, "rate_limit_error", code="rate_limited", attempts=attempts)
    if status == 400:
        msg = f"route {route!r}: the request is too long for every target; attempts: {attempts_summary(exc.attempts)}"
        return status, error_body(msg, "invalid_request_error", code="context_length_exceeded", attempts=attempts)
    msg = f"route {route!r}: every target failed; attempts: {attempts_summary(exc.attempts)}"
    return status, error_body(msg, "service_unavailable_error", code="targets_exhausted", attempts=attempts)


log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_middleware(listener: str, on_http: Callable[[web.Request, web.HTTPException], web.StreamResponse],
                     on_crash: Callable[[web.Request], web.StreamResponse]) -> Middleware:
    """A listener's last line: an HTTP error (4xx/5xx, raised by aiohttp or a handler) is answered by ``on_http``
    and an unexpected exception by ``on_crash``, both in the listener's envelope; the exception is logged, never shown."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return on_http(request, e)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("unexpected error serving %s %s %s", listener, request.method, request.path)
            return on_crash(request)

    return errors

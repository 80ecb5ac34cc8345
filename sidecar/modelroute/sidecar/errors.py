"""Failure vocabulary shared by the provider adapters, the router and the HTTP surface.

Adapters turn every SDK exception into an ``UpstreamError`` with a ``kind``; the router
decides on fallback from the kind alone; the HTTP layer maps router outcomes to statuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FailureKind(StrEnum):
    RATE_LIMITED = "rate_limited"      # 429
    OVERLOADED = "overloaded"          # 529 / Anthropic overloaded_error
    SERVER = "server_error"            # 5xx
    TIMEOUT = "timeout"                # attempt timed out
    CONNECTION = "connection_error"    # refused, reset, DNS
    BAD_RESPONSE = "bad_response"      # upstream answered garbage (unparseable, wrong shape)
    CIRCUIT_OPEN = "circuit_open"      # skipped by the breaker, no call made
    CLIENT = "client_error"            # 4xx caused by the request itself: returned to the app as is
    LIMITED = "local_limit"            # refused by the target's local rate limit: no upstream call, breaker untouched
    INVALID_OUTPUT = "invalid_output"  # every answer (repairs included) broke the route's output contract
    CONTEXT_WINDOW = "context_window"  # the request does not fit the model's window: skipped before the call, or its 400
    INPUT_SIZE = "input_size"          # the target's ``when`` does not take requests of this estimated size: skipped

    @property
    def spares_breaker(self) -> bool:
        """Fall back without blaming the target: it was not called (LIMITED, INPUT_SIZE, a CONTEXT_WINDOW pre-check),
        or it answered (INVALID_OUTPUT, a provider's context-too-long 400): the request was the problem."""
        return self in _SPARING

    @property
    def falls_back(self) -> bool:
        return self is not FailureKind.CLIENT


_SPARING = frozenset({FailureKind.LIMITED, FailureKind.INVALID_OUTPUT, FailureKind.CONTEXT_WINDOW, FailureKind.INPUT_SIZE})


@dataclass
class UpstreamError(Exception):
    """One failed attempt at one target. ``message`` is safe to show (no keys, no stack)."""

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after: float | None = None       # seconds, from retry-after / retry-after-ms
    body: dict[str, Any] | None = None     # provider error body, for CLIENT errors passed back

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


@dataclass(frozen=True)
class Attempt:
    """Summary of one attempt, reported in 503/504 bodies, stats and traces."""

    target: str
    outcome: str              # "ok" or a FailureKind value
    status: int | None
    reason: str
    duration_ms: float


@dataclass
class RouteFailed(Exception):
    """Every target is exhausted (503), or a CLIENT error ended the request (status from upstream)."""

    attempts: list[Attempt] = field(default_factory=list)
    client_error: UpstreamError | None = None


@dataclass
class DeadlineExceeded(Exception):
    """The route's overall deadline passed before any target answered (504)."""

    attempts: list[Attempt] = field(default_factory=list)


def failure_class(exc: RouteFailed | DeadlineExceeded) -> str:
    """The error class of a request the router could not answer (rollout evidence, eval outcomes)."""
    if isinstance(exc, DeadlineExceeded):
        return "deadline"
    if exc.client_error is not None:
        return "client_error"
    return exc.attempts[-1].outcome if exc.attempts else "exhausted"

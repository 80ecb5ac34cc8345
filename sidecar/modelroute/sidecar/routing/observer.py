"""The seam between the routing engine and whatever records what happened.

The router reports every attempt and every finished request to an ``Observer``; the stats
module (``/stats``, ``/metrics``) implements it, and the pipeline wraps it with cost
accounting (``pipeline.counters.CostObserver``). Telemetry gets every attempt as an
``AttemptHook`` (``metrics.telemetry.Telemetry``), given to ``Runtime.build``. Kept as a
protocol so the router never imports the HTTP surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime


class Observer(Protocol):
    def on_attempt(
        self,
        route: str,
        target: str,
        outcome: str,
        status: int | None,
        latency_s: float,
        usage: dict[str, Any] | None,
    ) -> None:
        """One attempt at one target ended. ``outcome`` is "ok" or a FailureKind value."""

    def on_request(self, route: str, target: str | None, outcome: str, latency_s: float, streamed: bool) -> None:
        """One inbound request ended (``target`` is the one that answered, if any)."""


class AttemptHook(Protocol):
    """Telemetry per upstream attempt (``RouteRuntime.tracer``); called only when one is set.

    Called once when an attempt ends (a stream's attempt ends with its last chunk), on the
    task that made it, so the caller's tracing context (the inbound request's span) is
    current; ``seconds`` is the attempt's duration, so the span can start in the past.
    """

    def attempt_ended(self, route: RouteRuntime, target: TargetRuntime, outcome: str, status: int | None, seconds: float,
                      usage: dict[str, Any] | None, response_model: str | None, streamed: bool) -> None: ...


class NullObserver:
    def on_attempt(
        self, route: str, target: str, outcome: str, status: int | None, latency_s: float, usage: dict[str, Any] | None
    ) -> None:
        return None

    def on_request(self, route: str, target: str | None, outcome: str, latency_s: float, streamed: bool) -> None:
        return None


KeySource = Any  # a zero-argument callable returning the current API key (re-read on rotation)

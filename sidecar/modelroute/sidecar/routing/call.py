"""One request's bookkeeping across the stages of a compiled route, and the stage protocols.

A compiled route (``runtime.RouteRuntime``) holds a chain of request stages (``Stage``)
ending in the attempt loop (``router.Attempts``), which tries each target through that
target's chain of attempt steps (``Step``) ending in its adapter. Every stage and step gets
the request's ``Call``: its route, deadline, the output contract it must meet, the attempts
made so far, and where attempts and the request's end are reported (observer, tracer).

Kept apart from ``router`` so that the stages in ``pipeline/`` implement these protocols
without the router knowing them: the router calls down, never back up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from modelroute.sidecar.errors import Attempt

if TYPE_CHECKING:
    from modelroute.sidecar.output import OutputContract
    from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime
    from modelroute.sidecar.routing.stream import StreamingCompletion

Json = dict[str, Any]
log = logging.getLogger(__name__)

OK = "ok"
OUTCOME_CLIENT = "client_error"
OUTCOME_EXHAUSTED = "exhausted"
OUTCOME_DEADLINE = "deadline"
OUTCOME_STREAM_ERROR = "stream_error"
OUTCOME_CANCELLED = "cancelled"


@dataclass
class Completion:
    """A non-streaming answer: the ``chat.completion`` dict, who answered, and every attempt made."""

    response: Json
    target: str
    attempts: list[Attempt]


class Call:
    """Bookkeeping of one inbound request across its stages and attempts."""

    __slots__ = ("attempts", "contract", "deadline", "input_tokens", "route", "started")

    def __init__(self, route: RouteRuntime, contract: OutputContract | None) -> None:
        self.route = route
        self.contract = contract      # what every answer must meet (None: unchecked)
        self.deadline = asyncio.get_running_loop().time() + route.spec.timeout_seconds
        self.started = time.perf_counter()
        self.attempts: list[Attempt] = []
        self.input_tokens: int | None = None  # the window estimate, made once by the first target that needs it

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    def record(
        self, tr: TargetRuntime, outcome: str, status: int | None, reason: str, seconds: float, usage: Json | None,
        response_model: str | None = None, streamed: bool = False,
    ) -> None:
        self.attempts.append(Attempt(tr.name, outcome, status, reason, seconds * 1000.0))
        route = self.route
        try:
            route.observer.on_attempt(route.name, tr.name, outcome, status, seconds, usage)
            if route.tracer is not None:
                route.tracer.attempt_ended(route, tr, outcome, status, seconds, usage, response_model, streamed)
        except Exception:  # a stats bug must not fail the request
            log.exception("observer failed on an attempt of route %s", route.name)

    def finish(self, target: str | None, outcome: str, streamed: bool, seconds: float | None = None) -> None:
        """The request ended (``seconds``: its duration, default since the call started)."""
        try:
            self.route.observer.on_request(
                self.route.name, target, outcome, time.perf_counter() - self.started if seconds is None else seconds,
                streamed,
            )
        except Exception:
            log.exception("observer failed on a request of route %s", self.route.name)


class Stage(Protocol):
    """One request-level stage of a compiled route (cache, checked streams, the attempt loop)."""

    async def complete(self, call: Call, request: Json) -> Completion: ...

    async def open_stream(self, call: Call, request: Json) -> StreamingCompletion: ...


class Step(Protocol):
    """One attempt on one target (its limiter, the output contract, its adapter), inside the attempt's timeout."""

    async def complete(self, call: Call, request: Json, timeout: float) -> Json: ...  # noqa: ASYNC109

    def stream(self, call: Call, request: Json, timeout: float) -> AsyncIterator[Json]: ...

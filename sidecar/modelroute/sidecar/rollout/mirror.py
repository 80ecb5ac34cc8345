"""Shadow traffic: copies of live requests sent to a canary off the request path.

A request answered by stable may be copied to the canary (``Canary.mirrors``). The copy
runs as its own asyncio task, started when the live request starts (so both see the same
upstream conditions), and never awaited by the request: the app's answer never waits on
it. The canary's answer is compared with stable's (``output.answer.answers_agree``: the same
definition as eval and the gate) once both exist.

What a copy sends is prepared for the route it goes to (``Prepare``): a chat request is the
app's body; a task (classify, extract) is written from the canary's own prompt and checked
against its own contract, so the labels or JSON compared are each revision's real answer.

Bounded: at most ``limit`` copies in flight per sidecar; a copy that would exceed it is
dropped at once (counted in the mirror variant's ``dropped``): under load, mirroring is the
first thing to go. Streaming requests are mirrored as non-streaming ones. A copy holds its
runtime (``Runtime.hold``) so a config swap does not close its client under it; shutdown
cancels copies in flight (``aclose``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed, failure_class
from modelroute.sidecar.output import OutputContract
from modelroute.sidecar.output.answer import answer_of, answers_agree, output_valid
from modelroute.sidecar.rollout.evidence import Evidence, VariantEvidence, wants_json
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.canary import Canary
from modelroute.sidecar.routing.runtime import RouteRuntime, Runtime

Json = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_LIMIT = 16
_NOT_MIRRORED = ("stream", "stream_options")


@dataclass(frozen=True)
class Ask:
    """One request as a route answers it: the chat body and, for a task, its contract."""

    request: Json
    contract: OutputContract | None = None


# What a live request becomes on a given route; None: it cannot be asked there (e.g. the
# canary's prompt template does not fit the task's variables), counted as a client error.
Prepare = Callable[[RouteRuntime], Ask | None]


def chat_ask(body: Json) -> Prepare:
    """A chat request: the same body on every route, served non-streaming."""
    return lambda _route: Ask({k: v for k, v in body.items() if k not in _NOT_MIRRORED})


class MirrorPool:
    """Mirror copies in flight, at most ``limit`` at once."""

    def __init__(self, evidence: Evidence, limit: int = DEFAULT_LIMIT) -> None:
        self.evidence = evidence
        self.limit = limit
        self.inflight = 0
        self.sent = 0
        self.dropped = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def launch(self, runtime: Runtime, canary: Canary, prepare: Prepare, record: VariantEvidence | None) -> asyncio.Future[str | None] | None:
        """Start a copy of the request (``prepare``d for the canary's mirror route); returns the future to
        resolve with stable's answer (None: stable gave none), or None when the copy was dropped or not asked."""
        if self._closed or self.inflight >= self.limit:
            self.dropped += 1
            if record is not None:
                record.dropped += 1
            return None
        ask = prepare(canary.mirror_route)
        if ask is None:
            if record is not None:
                record.failed("client_error")
            return None
        self.inflight += 1
        self.sent += 1
        loop = asyncio.get_running_loop()
        stable: asyncio.Future[str | None] = loop.create_future()
        task = loop.create_task(self._run(runtime, canary, ask, record, stable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return stable

    async def _run(self, runtime: Runtime, canary: Canary, ask: Ask, record: VariantEvidence | None,
                   stable: asyncio.Future[str | None]) -> None:
        released = False
        try:
            with runtime.hold():
                t0 = time.perf_counter()
                try:
                    done = await router.complete(canary.mirror_route, ask.request, contract=ask.contract)
                except (RouteFailed, DeadlineExceeded) as e:
                    if record is not None:
                        record.failed(failure_class(e))
                    return
                latency = time.perf_counter() - t0
            self.inflight -= 1
            released = True
            text = answer_of(done.response)
            if record is None:
                return
            usage = done.response.get("usage")
            usage = usage if isinstance(usage, dict) else None
            model = next((t.target.model for t in canary.mirror_route.targets if t.name == done.target), "")
            record.answered(latency, usage, self.evidence.cost(model, usage), output_valid(text, wants_json(ask.request)))
            theirs = await stable
            if theirs is not None:
                record.compare(answers_agree(text, theirs), task=ask.contract is not None)
        except asyncio.CancelledError:
            raise
        except Exception:  # a mirror must never disturb anything else
            log.exception("mirror copy to route %s failed", canary.route.name)
        finally:
            if not released:
                self.inflight -= 1

    async def drained(self) -> None:
        """Return once no copy is in flight, its comparison with stable's answer included."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self) -> None:
        """Cancel copies in flight (shutdown: they must not hold the drain up)."""
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

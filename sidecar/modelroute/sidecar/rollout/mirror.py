"""Shadow traffic: copies of live requests sent to a canary off the request path.

A request answered by stable may be copied to the canary (``Canary.mirrors``). The copy
runs as its own asyncio task, started when the live request starts (so both see the same
upstream conditions), and never awaited by the request: the app's answer never waits on
it. The canary's answer is compared with stable's (``answers_agree``) once both exist.

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
from typing import Any

from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed, failure_class
from modelroute.sidecar.eval.scoring import answers_agree
from modelroute.sidecar.rollout.evidence import (
    Evidence,
    VariantEvidence,
    judged_text,
    output_valid,
    wants_json,
)
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.canary import Canary
from modelroute.sidecar.routing.runtime import Runtime

Json = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_LIMIT = 16
_NOT_MIRRORED = ("stream", "stream_options")


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

    def launch(self, runtime: Runtime, canary: Canary, request: Json, record: VariantEvidence | None) -> asyncio.Future[str | None] | None:
        """Start a copy of ``request`` to ``canary``; returns the future to resolve with stable's answer text
        (None: stable gave none), or None when the copy was dropped."""
        if self._closed or self.inflight >= self.limit:
            self.dropped += 1
            if record is not None:
                record.dropped += 1
            return None
        self.inflight += 1
        self.sent += 1
        loop = asyncio.get_running_loop()
        stable: asyncio.Future[str | None] = loop.create_future()
        body = {k: v for k, v in request.items() if k not in _NOT_MIRRORED}
        task = loop.create_task(self._run(runtime, canary, body, record, stable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return stable

    async def _run(self, runtime: Runtime, canary: Canary, body: Json, record: VariantEvidence | None,
                   stable: asyncio.Future[str | None]) -> None:
        released = False
        try:
            with runtime.hold():
                t0 = time.perf_counter()
                try:
                    done = await router.complete(canary.mirror_route, body)
                except (RouteFailed, DeadlineExceeded) as e:
                    if record is not None:
                        record.failed(failure_class(e))
                    return
                latency = time.perf_counter() - t0
            self.inflight -= 1
            released = True
            text = judged_text(done.response)
            if record is None:
                return
            usage = done.response.get("usage")
            usage = usage if isinstance(usage, dict) else None
            model = next((t.target.model for t in canary.mirror_route.targets if t.name == done.target), "")
            record.answered(latency, usage, self.evidence.cost(model, usage), output_valid(text, wants_json(body)))
            theirs = await stable
            if theirs is not None:
                record.compare(answers_agree(text, theirs))
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

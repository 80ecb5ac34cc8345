"""The operator's golden-dataset gate, run here against a route's canary revision (``POST /eval``).

The request is ``modelroute.api.evalgate.EvalRequest`` (route, revision, cases), signed by the operator
and checked on the HTTP side (``server.evalgate``). The cases run through a private runtime
compiled from the canary's spec (its own clients and breakers, a ``NullObserver``), so the gate
never touches live traffic, live stats, rollout evidence or the live canary's breakers. The
runtime runs the route's chain (``server.state.SidecarState.build_private``): its output
contract, repair, limits and cost apply, and no cache, so a cached answer never counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.runner import run_case
from modelroute.sidecar.eval.scoring import Outcome, labels_of
from modelroute.sidecar.pipeline.counters import CostObserver
from modelroute.sidecar.routing.observer import NullObserver, Observer
from modelroute.sidecar.routing.runtime import Runtime

log = logging.getLogger(__name__)

Build = Callable[[SidecarConfig, Observer], Runtime]   # a config compiled with the sidecar's keys and adapters

CONCURRENCY = 4          # cases in flight at once: a gate must not crowd out live requests
TIME_BOUND_SECONDS = 120.0  # cases still running then count as "deadline" errors


@dataclass(frozen=True)
class GateRun:
    """What a gate run found: one outcome per case, and what its attempts cost."""

    outcomes: list[Outcome]     # in dataset order
    cost_usd: float | None      # what the run's attempts cost (None: no target has a price)


async def run_cases(build: Build, route: ModelRoute, cases: list[Case], *,
                    concurrency: int = CONCURRENCY, time_bound: float = TIME_BOUND_SECONDS) -> GateRun:
    """Every case through a private runtime of ``route``; unfinished cases count as deadline errors."""
    rt = build(SidecarConfig(routes=[route]), NullObserver())
    labels = labels_of(cases)
    gate = asyncio.Semaphore(max(1, concurrency))
    started = time.perf_counter()

    async def one(case: Case) -> Outcome:
        async with gate:
            return await run_case(rt, route.spec.route, case, labels)

    tasks = [asyncio.ensure_future(one(c)) for c in cases]
    try:
        if tasks:
            await asyncio.wait(tasks, timeout=time_bound)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rt.aclose()
    elapsed = time.perf_counter() - started
    observer = rt.routes[route.spec.route].observer
    return GateRun([t.result() if t.done() and not t.cancelled() and t.exception() is None
                    else Outcome(c.id, None, elapsed, error="deadline") for c, t in zip(cases, tasks, strict=True)],
                   observer.spent() if isinstance(observer, CostObserver) else None)


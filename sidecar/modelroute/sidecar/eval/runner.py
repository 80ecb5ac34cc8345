"""Send every case through each target of a route, using the sidecar's own routing engine.

Each target runs as its own single-target route (the route's params, prompt, timeout and
retry settings kept), compiled with ``Runtime.build`` and the route's pipeline (output
contract, repair, limits; no cache, so every case is answered by the target) and called with
``router.complete``, so what is measured is what the sidecar would do. Targets run one after another (their
latencies do not interfere); a target's cases run with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute, Target
from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed, failure_class
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.prices import price_of
from modelroute.sidecar.eval.scoring import Outcome, TargetSummary, judge, labels_of, summarize
from modelroute.sidecar.output.answer import answer_of
from modelroute.sidecar.pipeline import cost
from modelroute.sidecar.pipeline.compiler import Planner
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.runtime import KeyFor, Runtime

Json = dict[str, Any]
ProgressFn = Callable[[str, Outcome], None]


@dataclass(frozen=True)
class TargetRun:
    summary: TargetSummary
    outcomes: tuple[Outcome, ...]


def single_target(route: ModelRoute, target: Target) -> ModelRoute:
    """``route`` with ``target`` as its only target (no fallback: the target is measured alone)."""
    spec = route.spec.model_copy(update={"targets": [target]})
    return route.model_copy(update={"spec": spec})


async def run_case(rt: Runtime, route: str, case: Case, labels: frozenset[str]) -> Outcome:
    return (await answer_case(rt, route, case, labels))[0]


async def answer_case(rt: Runtime, route: str, case: Case, labels: frozenset[str]) -> tuple[Outcome, str | None]:
    """One case through ``route`` of ``rt``: its outcome and the target that answered (None: failed)."""
    t0 = time.perf_counter()
    try:
        done = await router.complete(rt.routes[route], case.request_for(route))
    except (RouteFailed, DeadlineExceeded) as e:
        return Outcome(case.id, None, time.perf_counter() - t0, error=failure_class(e)), None
    latency = time.perf_counter() - t0
    text = answer_of(done.response)
    usage = done.response.get("usage") or {}
    exact, valid = judge(case, text, labels)
    return Outcome(
        case.id, text, latency, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
        exact=exact, valid=valid,
    ), done.target


async def run_target(
    route: ModelRoute, target: Target, cases: Sequence[Case], key_for: KeyFor, *,
    concurrency: int = 4, price: cost.Price | None = None, progress: ProgressFn | None = None,
) -> TargetRun:
    """Every case through ``target`` alone; outcomes in dataset order."""
    config = SidecarConfig(routes=[single_target(route, target)])
    rt = Runtime.build(config, key_for, NullObserver(), pipeline=Planner().compiler(cache=False))
    labels = labels_of(cases)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(case: Case) -> Outcome:
        async with gate:
            o = await run_case(rt, route.spec.route, case, labels)
        if progress is not None:
            progress(target.name, o)
        return o

    try:
        outcomes = await asyncio.gather(*(one(c) for c in cases))
    finally:
        await rt.aclose()
    usd = None
    if price is not None:
        usd = sum(cost.cost_of(price, {"prompt_tokens": o.prompt_tokens, "completion_tokens": o.completion_tokens})
                  for o in outcomes)
    summary = summarize(target.name, target.provider.value, target.model, cases, outcomes, usd)
    return TargetRun(summary, tuple(outcomes))


async def run_route(
    route: ModelRoute, cases: Sequence[Case], key_for: KeyFor, *, targets: Sequence[str] | None = None,
    concurrency: int = 4, prices: dict[str, cost.Price] | None = None, progress: ProgressFn | None = None,
) -> list[TargetRun]:
    """Every case through each target of ``route`` (or the named ones), one target at a time.

    Cost uses ``prices`` (the ``--prices`` table) where it names a target, else the target's
    pricing, else the built-in price table (``prices.price_of``)."""
    chosen = [t for t in route.spec.targets if targets is None or t.name in targets]
    runs = []
    for t in chosen:
        price = price_of(t, prices)
        runs.append(await run_target(route, t, cases, key_for, concurrency=concurrency, price=price, progress=progress))
    return runs

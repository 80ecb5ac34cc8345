"""Run one dataset through two revisions of a route, case by case, interleaved (the I/O half).

Why: "is the proposed ModelRoute at least as good as the current one?" is asked before
``kubectl apply``. Each revision is compiled like the sidecar compiles it (``Runtime.build``
and the pipeline ``Planner``: output contract, repair, limits), with its cache turned off so
no cached answer is counted, and answers through ``router.complete``. Case i goes to both
revisions (baseline first on even cases, candidate first on odd ones) under one bounded
concurrency, so drift in the endpoint's speed hits both alike. ``--max-cost`` reserves each
pair's estimated cost before it is sent and stops when the next pair could cross the budget.
The numbers are made by ``compare`` (pure). The same run serves ``kubectl modelroute eval`` inside a
sidecar (``server.evalgate``), which passes its own ``build`` (its keys, adapters and limiters).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.prices import price_of
from modelroute.sidecar.eval.runner import answer_case
from modelroute.sidecar.eval.scoring import Outcome, labels_of
from modelroute.sidecar.pipeline import cost
from modelroute.sidecar.pipeline.compiler import Planner
from modelroute.sidecar.pipeline.counters import REPAIRED, Ledger
from modelroute.sidecar.pipeline.limits import estimate_tokens
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.runtime import KeyFor, Runtime

ROLES = ("baseline", "candidate")
DEFAULT_OUTPUT_TOKENS = 64     # per answer, when the route sets no maxTokens (cost estimate only)
ProgressFn = Callable[[str, Outcome], None]
EvalBuild = Callable[[SidecarConfig, Ledger], Runtime]
"""Compiles one revision's config for eval: no cache, the given ledger (its repair counts are read back)."""


def local_build(key_for: KeyFor) -> EvalBuild:
    """The command line's build: the keys ``key_for`` resolves, a planner (limiters) of the revision's own."""
    def build(config: SidecarConfig, ledger: Ledger) -> Runtime:
        return Runtime.build(config, key_for, NullObserver(), pipeline=Planner(ledger=ledger).compiler(cache=False))
    return build


@dataclass(frozen=True)
class Revision:
    role: str            # baseline | candidate
    source: str          # file path or cluster:NS/NAME
    route: ModelRoute


@dataclass(frozen=True)
class Answered:
    outcome: Outcome
    target: str | None           # the target that answered (None: failed)
    cost_usd: float | None       # None: that target has no price


@dataclass
class RevisionRun:
    revision: Revision
    answers: dict[str, Answered] = field(default_factory=dict)   # case id -> answer
    repaired: int = 0


def for_evaluation(route: ModelRoute) -> ModelRoute:
    """``route`` as eval runs it: no cache (a cached answer is not this revision's work), no rollout strategy."""
    spec = route.spec.model_copy(update={"cache": None, "strategy": None})
    return route.model_copy(update={"spec": spec})


def prices_of(route: ModelRoute, table: dict[str, cost.Price] | None) -> dict[str, cost.Price | None]:
    return {t.name: price_of(t, table) for t in route.spec.targets}


def estimate_case_cost(route: ModelRoute, case: Case, prices: dict[str, cost.Price | None]) -> float | None:
    """What one case may cost on ``route``: estimated input and output tokens at its dearest target's price.

    Input: the request plus the route's system prompt, about 4 characters a token; output:
    the route's ``maxTokens``, else ``DEFAULT_OUTPUT_TOKENS``; each repair turn of the output
    contract counts as one more call. None when a target has no price.
    """
    if any(p is None for p in prices.values()):
        return None
    system = route.spec.prompt.system if route.spec.prompt is not None and route.spec.prompt.system else ""
    tokens_in = estimate_tokens(case.request) + math.ceil(len(system) / 4)
    tokens_out = route.spec.params.max_tokens or DEFAULT_OUTPUT_TOKENS
    calls = 1 + (route.spec.output.repair_attempts if route.spec.output is not None else 0)
    usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out}
    return calls * max(cost.cost_of(p, usage) for p in prices.values() if p is not None)


def estimate_cost(routes: Sequence[ModelRoute], cases: Sequence[Case], table: dict[str, cost.Price] | None) -> float | None:
    """Estimated cost of every case through every route (None when some target has no price)."""
    total = 0.0
    for r in routes:
        prices = prices_of(r, table)
        for c in cases:
            est = estimate_case_cost(r, c, prices)
            if est is None:
                return None
            total += est
    return total


class CostStop(Exception):
    """Internal: the next pair could cross the budget."""


async def compare_revisions(
    baseline: Revision, candidate: Revision, cases: Sequence[Case], key_for: KeyFor | None, *,
    build: EvalBuild | None = None, concurrency: int = 4, prices: dict[str, cost.Price] | None = None, max_cost: float | None = None,
    progress: ProgressFn | None = None,
) -> tuple[RevisionRun, RevisionRun, str | None]:
    """Every case through both revisions, interleaved; (baseline run, candidate run, why it stopped early or None).

    ``build`` compiles each revision (default: ``local_build(key_for)``)."""
    if build is None:
        if key_for is None:
            raise ValueError("compare_revisions needs key_for or build")
        build = local_build(key_for)
    revisions = (baseline, candidate)
    routes = [for_evaluation(r.route) for r in revisions]
    ledgers = [Ledger() for _ in revisions]
    runtimes: list[Runtime] = []
    try:
        for route, ledger in zip(routes, ledgers, strict=True):
            runtimes.append(build(SidecarConfig(routes=[route]), ledger))
    except BaseException:
        for rt in runtimes:
            await rt.aclose()
        raise
    runs = [RevisionRun(r) for r in revisions]
    price_tables = [prices_of(r, prices) for r in routes]
    target_by_name = [{t.name: t for t in r.spec.targets} for r in routes]
    labels = labels_of(cases)
    gate = asyncio.Semaphore(max(1, concurrency))
    budget = {"spent": 0.0, "reserved": 0.0}

    async def one(side: int, case: Case, reserved: float) -> None:
        try:
            outcome, target = await answer_case(runtimes[side], routes[side].spec.route, case, labels)
            usd: float | None = 0.0
            if target is not None:
                price = price_tables[side].get(target)
                if price is None and target in target_by_name[side]:
                    price = price_of(target_by_name[side][target], prices)
                usd = None if price is None else cost.cost_of(
                    price, {"prompt_tokens": outcome.prompt_tokens, "completion_tokens": outcome.completion_tokens})
            runs[side].answers[case.id] = Answered(outcome, target, usd)
            budget["reserved"] -= reserved
            budget["spent"] += usd or 0.0
            if progress is not None:
                progress(ROLES[side], outcome)
        finally:
            gate.release()

    tasks: list[asyncio.Task[None]] = []
    stopped: str | None = None
    try:
        for i, case in enumerate(cases):
            estimates = [estimate_case_cost(routes[s], case, price_tables[s]) or 0.0 for s in (0, 1)]
            if max_cost is not None and budget["spent"] + budget["reserved"] + sum(estimates) > max_cost:
                pending = [t for t in tasks if not t.done()]
                if pending:   # reservations are estimates: settle them before giving up
                    await asyncio.wait(pending)
                if budget["spent"] + sum(estimates) > max_cost:
                    stopped = (f"--max-cost {max_cost:g} USD: stopped after {i} of {len(cases)} cases "
                               f"(spent {budget['spent']:.6f} USD; the next case was estimated at {sum(estimates):.6f} USD)")
                    break
            for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                await gate.acquire()
                budget["reserved"] += estimates[side]
                tasks.append(asyncio.create_task(one(side, case, estimates[side])))
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rt in runtimes:
            await rt.aclose()
    for run, route, ledger in zip(runs, routes, ledgers, strict=True):
        run.repaired = ledger.route(route.spec.route).output.get(REPAIRED, 0)
    return runs[0], runs[1], stopped

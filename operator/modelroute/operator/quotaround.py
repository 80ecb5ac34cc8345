"""One rebalance round of one ProviderQuota, from plain data to leases, status and Events (pure).

Input: the quota, the pods that use it (a route they serve has a governed target), what each
pod's ``/stats`` said (``QuotaReport``: lease generation held, usage, refusals) and the state
kept between rounds (``QuotaState``: the arithmetic's ledgers per dimension). Output: the
leases to push (``QuotaLease`` per pod), the status, and the Events to post. The I/O (``/stats``,
``PUT /leases``, the status patch) is ``rebalance.py``; the arithmetic is ``leasing.py``.

Demand: a pod's usage in the last minute; a pod that was refused since the last round, or that
used 90% of its cap, asks for more than it got (1.5 x its cap), so shares move towards it.

Daily budgets (``dailyTokens``, ``dailyCostUsd``): what the pods report sending (``tokensTotal``,
``costTotalUsd``) is summed per UTC day. The tokens a round aims to lease per minute never exceed the
day's remaining tokens, and once a budget is used up every pod is aimed at 0 (the leases shrink like
any other: acknowledged, then applied), with the QuotaPressure condition ``BudgetExhausted`` and the
100% Event, until the next UTC day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelroute.api.leases import QuotaLease
from modelroute.api.selection import render_for_pod
from modelroute.api.stats import QuotaReport
from modelroute.api.v1alpha1 import Condition, ConditionStatus, ModelRoute
from modelroute.api.v1alpha1.providerquota import (
    MAX_LEASES_LISTED,
    PodLease,
    ProviderQuota,
    ProviderQuotaStatus,
    QuotaTerms,
    QuotaUsage,
)
from modelroute.operator import leasing
from modelroute.operator.events import Notice
from modelroute.operator.pods import SidecarPod

DIMENSIONS = ("requests", "tokens")
PRESSURE_LEVELS = (0.8, 1.0)
GRACE_SECONDS = 30.0
REASON = "QuotaPressure"


@dataclass
class QuotaState:
    """What the operator keeps about one quota between rounds (in memory; rebuilt after a restart)."""

    ledgers: dict[str, dict[str, leasing.PodLedger]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})
    generation: int = 0
    refused: dict[str, int] = field(default_factory=dict)   # pod -> refusals seen last round
    level: float = 0.0                                       # the pressure level last announced
    bundle_pods: int = 0                                     # the pod count the route bundle carries
    day: str = ""                                            # the UTC day tokens_today counts
    tokens_today: int = 0
    cost_today: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)     # pod -> tokens_total last seen
    costs: dict[str, float] = field(default_factory=dict)    # pod -> cost_total_usd last seen


@dataclass(frozen=True)
class RoundResult:
    leases: dict[str, QuotaLease]
    status: ProviderQuotaStatus
    events: list[Notice]


def uses(quota: ProviderQuota, routes: Iterable[ModelRoute], pod: SidecarPod) -> bool:
    """Whether a route the pod serves has a target the quota governs."""
    spec = quota.spec
    return any(spec.governs(t.provider.value, t.api_key, t.model)
               for r in render_for_pod(routes, pod.labels).config.routes for t in r.spec.targets)


def limit_of(quota: ProviderQuota, dimension: str) -> int | None:
    limits = quota.spec.limits
    return limits.requests_per_minute if dimension == "requests" else limits.tokens_per_minute


def terms_of(quota: ProviderQuota, pods: int) -> QuotaTerms:
    spec = quota.spec
    return QuotaTerms(quota=quota.key, provider=spec.provider, api_key=spec.api_key, models=spec.models,
                      requests_per_minute=spec.limits.requests_per_minute, tokens_per_minute=spec.limits.tokens_per_minute,
                      pod_count=max(pods, 1))


def demand(report: QuotaReport | None, dimension: str, refused_before: int | None) -> float:
    """A pod's demand on one dimension (per minute)."""
    if report is None:
        return 0.0
    used = float(report.window_requests if dimension == "requests" else report.window_tokens)
    cap = report.requests_per_minute if dimension == "requests" else report.tokens_per_minute
    wanting = report.refused > (refused_before if refused_before is not None else report.refused)
    if cap is not None and (wanting or (cap > 0 and used >= 0.9 * cap)):
        return max(used, 1.5 * cap, 1.0)
    return used


def _newcomer(report: QuotaReport | None, limit: float, state: QuotaState, terms: leasing.Terms, pods: int,
              now: float) -> leasing.PodLedger:
    """The ledger of a pod the round has not seen: it holds a lease of an earlier operator, or the bundle's share."""
    if report is not None and report.generation > 0:
        return leasing.unknown(now, terms, pods)
    share = limit / (state.bundle_pods + 1) if state.bundle_pods else limit
    return leasing.PodLedger((leasing.Grant(0, share, share, now, now),))


def plan_round(quota: ProviderQuota, state: QuotaState, pods: list[str], reports: Mapping[str, QuotaReport | None],
               now: float, join_wait: float = 5.0) -> RoundResult:
    """Acknowledge what the pods report, plan new leases, compute the status; updates ``state``."""
    n = len(pods)
    spec = quota.spec
    leases: dict[str, QuotaLease] = {}
    granted: dict[str, dict[str, leasing.Grant]] = {}
    generation = state.generation = max(state.generation + 1, int(now * 1000))
    _count_day(state, reports, now)
    ceilings = budget_ceilings(quota, state)
    for dimension in DIMENSIONS:
        limit = limit_of(quota, dimension)
        if limit is None:
            continue
        terms = leasing.Terms(float(limit), float(spec.lease_seconds), GRACE_SECONDS, spec.idle_share)
        ledgers = state.ledgers[dimension]
        for gone in set(ledgers) - set(pods):
            del ledgers[gone]
        for pod in pods:
            report = reports.get(pod)
            if pod not in ledgers:
                ledgers[pod] = _newcomer(report, float(limit), state, terms, n, now)
            if report is not None:
                ledgers[pod] = leasing.acknowledge(ledgers[pod], report.generation)
            ledgers[pod] = leasing.prune(ledgers[pod], now)
        demands = {p: demand(reports.get(p), dimension, state.refused.get(p)) for p in pods}
        aims = within(leasing.wanted(terms, ledgers, demands, now), ceilings.get(dimension))
        r = leasing.plan(terms, ledgers, aims, now, generation)
        granted[dimension] = r.grants
    dims = [d for d in DIMENSIONS if d in granted]
    for pod in pods:
        if not dims or not all(pod in granted[d] for d in dims):
            continue  # a lease carries every dimension: a pod that cannot get one in each gets none this round
        for d in dims:
            state.ledgers[d] = leasing.commit(state.ledgers[d], {pod: granted[d][pod]})
        first = granted[dims[0]][pod]
        leases[pod] = QuotaLease(
            **terms_of(quota, n).model_dump(), generation=generation,
            share_requests_per_minute=granted["requests"][pod].share if "requests" in granted else None,
            share_tokens_per_minute=granted["tokens"][pod].share if "tokens" in granted else None,
            expires_at=datetime.fromtimestamp(first.expires, UTC), fallback_at=datetime.fromtimestamp(first.fallback_at, UTC),
        )
    state.refused = {p: r.refused for p, r in reports.items() if r is not None}
    status, events = _status(quota, state, pods, reports, leases, now)
    return RoundResult(leases, status, events)


def _count_day(state: QuotaState, reports: Mapping[str, QuotaReport | None], now: float) -> None:
    """Add what each pod sent since the last round to today's tokens and cost (a pod that restarted counts from zero)."""
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    if day != state.day:
        state.day, state.tokens_today, state.cost_today = day, 0, 0.0
    for pod, report in reports.items():
        if report is None:
            continue
        state.tokens_today += int(_since(state.totals.get(pod), report.tokens_total))
        state.cost_today += _since(state.costs.get(pod), report.cost_total_usd)
        state.totals[pod], state.costs[pod] = report.tokens_total, report.cost_total_usd


def _since(before: float | None, total: float) -> float:
    """What a pod's running total added since the last round: nothing on first sight, all of it after a restart."""
    if before is None:
        return 0
    return total - before if total >= before else total


def budget_ceilings(quota: ProviderQuota, state: QuotaState) -> dict[str, float]:
    """Per dimension, the most a round may aim to lease (per minute) because of the daily budgets; absent: no ceiling."""
    limits = quota.spec.limits
    if exhausted(quota, state):
        return dict.fromkeys(DIMENSIONS, 0.0)
    if limits.daily_tokens:
        return {"tokens": float(limits.daily_tokens - state.tokens_today)}
    return {}


def exhausted(quota: ProviderQuota, state: QuotaState) -> bool:
    """Whether a daily budget is used up today."""
    limits = quota.spec.limits
    return bool((limits.daily_tokens and state.tokens_today >= limits.daily_tokens)
                or (limits.daily_cost_usd and state.cost_today >= limits.daily_cost_usd))


def within(aims: dict[str, float], ceiling: float | None) -> dict[str, float]:
    """``aims`` scaled down (whole numbers) so that they sum to at most ``ceiling``."""
    total = sum(aims.values())
    if ceiling is None or total <= ceiling:
        return aims
    factor = max(0.0, ceiling) / total
    return {p: float(math.floor(a * factor)) for p, a in aims.items()}


def acknowledged(state: QuotaState, pod: str, generation: int) -> None:
    """The pod answered a push: it holds ``generation`` now."""
    for ledgers in state.ledgers.values():
        if pod in ledgers:
            ledgers[pod] = leasing.acknowledge(ledgers[pod], generation)


def _status(quota: ProviderQuota, state: QuotaState, pods: list[str], reports: Mapping[str, QuotaReport | None],
            leases: Mapping[str, QuotaLease], now: float) -> tuple[ProviderQuotaStatus, list[Notice]]:
    live = [r for r in reports.values() if r is not None]
    limits = quota.spec.limits
    usage = QuotaUsage(requests_per_minute=sum(r.window_requests for r in live), tokens_per_minute=sum(r.window_tokens for r in live),
                       tokens_today=state.tokens_today if limits.daily_tokens else None,
                       cost_today_usd=round(state.cost_today, 6) if limits.daily_cost_usd else None)
    fractions = {}
    if limits.requests_per_minute:
        fractions["requests"] = usage.requests_per_minute / limits.requests_per_minute
    if limits.tokens_per_minute:
        fractions["tokens"] = usage.tokens_per_minute / limits.tokens_per_minute
    if limits.daily_tokens:
        fractions["tokens today"] = state.tokens_today / limits.daily_tokens
    if limits.daily_cost_usd:
        fractions["cost today"] = state.cost_today / limits.daily_cost_usd
    worst = max(fractions.values(), default=0.0)
    held = []
    for pod in pods:
        report = reports.get(pod)
        lease = leases.get(pod)
        held.append(PodLease(
            pod=pod,
            requests_per_minute=_share(state, "requests", pod, now),
            tokens_per_minute=_share(state, "tokens", pod, now),
            demand_tokens=demand(report, "tokens", None),
            generation=report.generation if report is not None else 0,
            expires_at=lease.expires_at if lease is not None else (report.expires_at if report is not None else None),
        ))
    held.sort(key=lambda p: (-(p.tokens_per_minute or 0.0), -(p.requests_per_minute or 0.0), p.pod))
    level = max((lv for lv in PRESSURE_LEVELS if worst >= lv), default=0.0)
    events = []
    if level > state.level:
        dims = ", ".join(f"{d} at {round(100 * f)}%" for d, f in sorted(fractions.items()))
        stop = " A daily budget is used up: every lease is 0 until the next UTC day." if exhausted(quota, state) else ""
        events.append(Notice("Warning", REASON, f"ProviderQuota {quota.key} at or above {round(100 * level)}% of its limit: {dims} "
                                                f"over {len(pods)} pod(s).{stop}"))
    if (level < state.level - 1e-9 and worst < min(PRESSURE_LEVELS) - 0.1) or level > state.level:
        state.level = level
    condition = Condition(
        type=REASON, status=ConditionStatus.TRUE if worst >= PRESSURE_LEVELS[0] else ConditionStatus.FALSE,
        reason=("BudgetExhausted" if exhausted(quota, state) else "AtLimit" if worst >= 1.0
                else "HighUsage" if worst >= PRESSURE_LEVELS[0] else "WithinLimit"),
        message=", ".join(f"{d} {round(100 * f)}% of the limit" for d, f in sorted(fractions.items())),
        observed_generation=quota.metadata.generation,
    )
    status = ProviderQuotaStatus(
        observed_generation=quota.metadata.generation, usage=usage, pods=len(pods),
        requests=f"{usage.requests_per_minute}/{limits.requests_per_minute}" if limits.requests_per_minute else None,
        tokens=f"{usage.tokens_per_minute}/{limits.tokens_per_minute}" if limits.tokens_per_minute else None,
        leases=held[:MAX_LEASES_LISTED], conditions=[condition],
    )
    return status, events


def _share(state: QuotaState, dimension: str, pod: str, now: float) -> float | None:
    ledger = state.ledgers[dimension].get(pod)
    if ledger is None or not ledger.candidates:
        return None
    claim = ledger.claim(now)
    return None if math.isinf(claim) else claim

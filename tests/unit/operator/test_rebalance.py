"""The rebalance loop against real sidecars: signed leases go out, are acknowledged, follow demand,
never sum above the limit, and the ProviderQuota's status and Events say so."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api.config import PodRef, SidecarConfig
from modelroute.api.signing import verify_key
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.operator.events import Notice
from modelroute.operator.push.client import Pusher
from modelroute.operator.quotaround import QuotaState, demand, plan_round
from modelroute.operator.rebalance import Rebalancer
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.pipeline.limits import RateLimited
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

from .operator_factories import raw_pod, raw_route

KEY = Ed25519PrivateKey.generate()
LIMIT = 12_000
QUOTA = "team/org"


def raw_quota(**limits: Any) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ProviderQuota",
            "metadata": {"name": "org", "namespace": "team", "generation": 1},
            "spec": {"provider": "openai", "apiKey": {"env": "OPENAI_API_KEY"}, "limits": limits or {"tokensPerMinute": LIMIT}}}


class Cluster:
    def __init__(self, pusher: Pusher) -> None:
        self.sidecars: dict[str, Sidecar] = {}
        self.statuses: list[dict[str, Any]] = []
        self.events: list[Notice] = []
        self.bundles: list[str] = []
        self.quotas = [raw_quota()]
        self.rebalancer = Rebalancer(
            pusher, lambda ns: self.quotas, lambda ns: [raw_route("chat")], self.pods, lambda obj, n: self.events.append(n),
            self.write, lambda: ["team"], interval=0, on_bundle_change=self.bundles.append)

    def pods(self, ns: str) -> list[dict[str, Any]]:
        return [raw_pod(name, ip="127.0.0.1", admin_port=sc.admin_url.rsplit(":", 1)[1]) for name, sc in self.sidecars.items()]

    async def write(self, ns: str, name: str, patch: dict[str, Any]) -> None:
        self.statuses.append(patch["status"])

    def caps(self) -> dict[str, float]:
        now = time.time()
        return {n: sc.state.quotas.cap(QUOTA, now)[1] or 0.0 for n, sc in self.sidecars.items()}

    def state(self, pod: str) -> SidecarState:
        return self.sidecars[pod].state


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        c = Cluster(Pusher(KEY, http, attempts=1, timeout=2.0))

        async def add(name: str) -> None:
            state = SidecarState(keys=KeyResolver(environ={"OPENAI_API_KEY": "sk-test"}))
            route = ModelRoute.model_validate({k: v for k, v in raw_route("chat").items() if k != "status"})
            await state.apply(SidecarConfig(routes=[route]), source="file")
            auth = AuthSettings(operator_key=verify_key(KEY), pod=PodRef(namespace="team", name=name, uid=f"uid-{name}"))
            c.sidecars[name] = await stack.enter_async_context(Sidecar(state, auth, grace_seconds=1))

        c.add = add  # type: ignore[attr-defined]
        for i in range(3):
            await add(f"p{i}")
        yield c


async def fill(state: SidecarState) -> None:
    """Use the pod's whole cap and be refused once: demand above the lease."""
    limiter = state.planner.limiters.governing(QUOTA)[0]
    cap = limiter.limit("tokens")
    assert cap is not None
    room = int(cap) - limiter.snapshot().window_tokens - 1
    if room > 0:
        await limiter.acquire(room, max_wait=0)
    with pytest.raises(RateLimited):
        await limiter.acquire(100, max_wait=0)


async def test_leases_follow_demand_and_never_sum_above_the_limit(cluster: Cluster) -> None:
    await cluster.rebalancer.rebalance("team")
    assert sum(cluster.caps().values()) <= LIMIT
    assert all(sc.state.quotas.leases[QUOTA].generation > 0 for sc in cluster.sidecars.values())  # pushed and applied
    assert cluster.bundles == ["team"]  # the bundle now carries the quota's terms
    assert cluster.rebalancer.bundle_terms("team")[0].pod_count == 3
    for _ in range(4):
        await fill(cluster.state("p0"))
        await cluster.rebalancer.rebalance("team")
        assert sum(cluster.caps().values()) <= LIMIT
    caps = cluster.caps()
    assert caps["p0"] >= 0.8 * LIMIT, caps  # the pod with demand gets most of the limit
    assert min(caps["p1"], caps["p2"]) >= 0.1 * LIMIT / 3 - 1  # idle pods keep room to start
    status = cluster.statuses[-1]
    assert status["pods"] == 3 and status["tokens"].endswith(f"/{LIMIT}")
    assert status["leases"][0]["pod"] == "p0"
    assert any(n.reason == "QuotaPressure" for n in cluster.events)


async def test_a_joining_pod_gets_a_lease_within_two_rounds_and_the_sum_holds(cluster: Cluster) -> None:
    await cluster.rebalancer.rebalance("team")
    for _ in range(2):
        await fill(cluster.state("p0"))
        await cluster.rebalancer.rebalance("team")
    await cluster.add("p3")  # type: ignore[attr-defined]
    for _ in range(2):
        await cluster.rebalancer.rebalance("team")
        assert sum(cluster.caps().values()) <= LIMIT
    assert cluster.state("p3").quotas.leases[QUOTA].pod_count == 4
    assert cluster.rebalancer.bundle_terms("team")[0].pod_count == 4


def test_demand_asks_for_more_when_refused_or_near_the_cap() -> None:
    from modelroute.api.stats import QuotaReport
    idle = QuotaReport(state="lease", tokens_per_minute=1000, window_tokens=100, refused=3)
    assert demand(idle, "tokens", 3) == 100
    assert demand(idle, "tokens", 2) == 1500          # refused since the last round
    busy = QuotaReport(state="lease", tokens_per_minute=1000, window_tokens=950)
    assert demand(busy, "tokens", 0) == 1500
    assert demand(None, "tokens", None) == 0


def test_events_at_80_and_100_percent_once_each() -> None:
    from modelroute.api.stats import QuotaReport
    from modelroute.api.v1alpha1.providerquota import ProviderQuota
    quota = ProviderQuota.model_validate(raw_quota())
    state = QuotaState()
    reasons = []
    for used in (5000, 9700, 9800, 12_000, 12_000, 3000, 10_000):
        r = plan_round(quota, state, ["a"], {"a": QuotaReport(state="lease", window_tokens=used)}, time.time())
        reasons.append([e.message.split(" of ")[0].rsplit(" ", 1)[-1] for e in r.events])
    assert reasons == [[], ["80%"], [], ["100%"], [], [], ["80%"]]


def test_tokens_today_sum_what_pods_sent_between_rounds_and_warn_at_80_percent_of_the_daily_budget() -> None:
    from datetime import datetime as dt

    from modelroute.api.stats import QuotaReport
    from modelroute.api.v1alpha1.providerquota import ProviderQuota
    quota = ProviderQuota.model_validate(raw_quota(tokensPerMinute=1_000_000, dailyTokens=10_000))
    state = QuotaState()
    noon = dt(2026, 12, 6, 12, tzinfo=UTC).timestamp()

    def round_(t: float, totals: dict[str, int]) -> list[str]:
        reports = {p: QuotaReport(state="lease", tokens_total=n) for p, n in totals.items()}
        return [e.message for e in plan_round(quota, state, sorted(totals), reports, t).events]

    assert round_(noon, {"a": 5000, "b": 100}) == []          # first sight: what came before is not today's for sure
    assert round_(noon + 2, {"a": 9000, "b": 2100}) == []     # +4000 +2000
    assert state.tokens_today == 6000
    assert round_(noon + 4, {"a": 1000, "b": 3100}) != []     # a restarted: +1000, b +1000 -> 8000: 80% of the budget
    assert state.tokens_today == 8000
    r = plan_round(quota, state, ["a", "b"], {"a": QuotaReport(state="lease", tokens_total=1000),
                                             "b": QuotaReport(state="lease", tokens_total=3100)}, noon + 6)
    assert r.status.usage.tokens_today == 8000
    round_(noon + 86_400, {"a": 1500, "b": 3100})              # the next UTC day starts from zero
    assert state.tokens_today == 500


async def test_a_used_up_daily_token_budget_takes_every_lease_to_zero_until_the_next_day(cluster: Cluster) -> None:
    """Issue 13: dailyTokens is enforced: the leases aim within what is left of the day, then at 0."""
    cluster.quotas = [raw_quota(tokensPerMinute=LIMIT, dailyTokens=6_000)]

    async def send(pod: str, tokens: int) -> None:  # one request whose answer reports ``tokens`` used
        limiter = cluster.state(pod).planner.limiters.governing(QUOTA)[0]
        limiter.settle(await limiter.acquire(10, max_wait=0), {"total_tokens": tokens})

    for _ in range(2):  # leases out, then the pods' first reports: the totals so far are not today's for sure
        await cluster.rebalancer.rebalance("team")
    await send("p0", 5_000)
    for _ in range(2):  # the smaller leases go out, then their acknowledgements lower the claims
        await cluster.rebalancer.rebalance("team")
    state = cluster.rebalancer.states[QUOTA]
    assert state.tokens_today == 5_000
    assert sum(cluster.caps().values()) <= 1_000, "the leases aim within the day's remaining 1,000 tokens"
    await send("p1", 1_500)
    for _ in range(2):
        await cluster.rebalancer.rebalance("team")
    assert state.tokens_today == 6_500
    assert cluster.caps() == {"p0": 0.0, "p1": 0.0, "p2": 0.0}
    with pytest.raises(RateLimited):
        await cluster.state("p2").planner.limiters.governing(QUOTA)[0].acquire(1, max_wait=0)
    condition = cluster.statuses[-1]["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("True", "BudgetExhausted")
    assert cluster.statuses[-1]["usage"]["tokensToday"] == 6_500
    assert any("daily budget is used up" in n.message for n in cluster.events)
    assert cluster.state("p0").planner.limiters.governing(QUOTA)[0].price is not None, "costs are summed where tokens are"


def test_daily_budgets_cap_what_a_round_aims_at() -> None:
    from datetime import datetime as dt

    from modelroute.api.stats import QuotaReport
    from modelroute.api.v1alpha1.providerquota import ProviderQuota
    from modelroute.operator.quotaround import within
    quota = ProviderQuota.model_validate(raw_quota(tokensPerMinute=LIMIT, requestsPerMinute=100, dailyTokens=10_000,
                                                   dailyCostUsd=1.0))
    state = QuotaState()
    noon = dt(2026, 12, 6, 12, tzinfo=UTC).timestamp()
    busy = {"a": QuotaReport(state="lease", tokens_total=0, cost_total_usd=0.0)}
    plan_round(quota, state, ["a"], busy, noon)
    busy = {"a": QuotaReport(state="lease", tokens_total=7_000, cost_total_usd=0.5, window_tokens=7_000, refused=1)}
    r = plan_round(quota, state, ["a"], busy, noon + 2)
    assert state.tokens_today == 7_000 and state.cost_today == 0.5
    assert r.leases["a"].share_tokens_per_minute is not None and r.leases["a"].share_tokens_per_minute <= 3_000
    assert r.status.usage.cost_today_usd == 0.5
    busy = {"a": QuotaReport(state="lease", tokens_total=7_100, cost_total_usd=1.0, refused=2)}
    r = plan_round(quota, state, ["a"], busy, noon + 4)     # the cost budget is used up: both dimensions at 0
    assert (r.leases["a"].share_tokens_per_minute, r.leases["a"].share_requests_per_minute) == (0.0, 0.0)
    assert r.status.conditions[0].reason == "BudgetExhausted"
    r = plan_round(quota, state, ["a"], busy, noon + 86_400)   # a new UTC day
    assert state.cost_today == 0 and r.leases["a"].share_requests_per_minute
    assert within({"a": 10.0, "b": 30.0}, 20.0) == {"a": 5.0, "b": 15.0} and within({"a": 1.0}, None) == {"a": 1.0}


async def test_a_restarted_sidecar_holds_a_lease_again_after_one_round(cluster: Cluster) -> None:
    """Issue 13: a sidecar container that restarts (same pod) loses its lease in memory; until the next round it
    takes nothing (joining), then the bundle's conservative share, never the full limit; the round re-leases it."""
    await cluster.rebalancer.rebalance("team")
    held = cluster.state("p1").quotas.leases[QUOTA].generation
    old = cluster.sidecars.pop("p1")
    await old.__aexit__(None, None, None)
    await cluster.add("p1")  # type: ignore[attr-defined]   # the same pod (name, UID), a new process
    book = cluster.state("p1").quotas
    assert QUOTA not in book.leases
    await cluster.rebalancer.rebalance("team")
    assert book.leases[QUOTA].generation > held, "re-leased in the next round"
    assert sum(cluster.caps().values()) <= LIMIT

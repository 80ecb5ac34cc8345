"""Per-pod push deliveries: bounded concurrency, backoff, a hung pod delaying no other (fake attempt seam, events)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.client import TRANSIENT, PushOutcome
from modelroute.operator.push.dispatch import Backoff, Deliveries, Slots

from .operator_factories import pod as make_pod

ROUTE = ModelRoute.model_validate({"metadata": {"name": "r", "namespace": "team"}, "spec": {
    "route": "chat", "targets": [{"name": "m", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}}]}})


def config(version: str = "v1") -> SidecarConfig:
    raw = ROUTE.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["prompt"] = {"version": version}
    return SidecarConfig(routes=[ModelRoute.model_validate(raw)])


def ok(c: SidecarConfig) -> PushOutcome:
    return PushOutcome(served_hash=c.hash, pushed=True, attempts=1)


class FakeFleet:
    """The attempt seam: per pod, a script of outcomes; a pod in ``hung`` never answers."""

    def __init__(self) -> None:
        self.hung: set[str] = set()
        self.script: dict[str, list[str]] = defaultdict(list)   # pod name -> reasons to fail with, in order
        self.tries: dict[str, list[str]] = defaultdict(list)    # pod name -> config hashes tried
        self.inflight = 0
        self.max_inflight = 0
        self.answered: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.gate: asyncio.Event | None = None   # when set up, healthy tries wait for it
        self.started = asyncio.Event()
        self.full = asyncio.Event()   # set once ``full_at`` tries are in flight together
        self.full_at = 0

    async def attempt(self, pod: SidecarPod, c: SidecarConfig, verify: bool) -> PushOutcome:
        self.tries[pod.name].append(c.hash)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        self.started.set()
        if self.full_at and self.inflight >= self.full_at:
            self.full.set()
        try:
            if pod.name in self.hung:
                await asyncio.Event().wait()  # a black hole: only cancellation ends it
            if self.gate is not None:
                await self.gate.wait()
            if self.script[pod.name]:
                reason = self.script[pod.name].pop(0)
                return PushOutcome(None, False, reason, f"{reason} from {pod.name}", 1)
            return ok(c)
        finally:
            self.inflight -= 1
            self.answered[pod.name].set()


def pods(n: int) -> list[SidecarPod]:
    return [make_pod(f"p{i:02d}") for i in range(n)]


def test_backoff_doubles_from_base_to_cap_and_jitters_in_the_upper_half() -> None:
    b = Backoff(base=0.2, cap=3.0)
    assert [b.ceiling(n) for n in range(1, 7)] == [0.2, 0.4, 0.8, 1.6, 3.0, 3.0]
    rng = random.Random(7)
    for n in range(1, 12):
        for _ in range(50):
            d = b.delay(n, rng)
            assert b.ceiling(n) / 2 <= d <= b.ceiling(n)
    draws = {round(b.delay(3, rng), 6) for _ in range(20)}
    assert len(draws) > 10  # jittered, not a fixed schedule
    assert Backoff().delay(1, random.Random(1)) == Backoff().delay(1, random.Random(1))  # seeded: reproducible


async def test_slots_bound_concurrency() -> None:
    fleet = FakeFleet()
    fleet.gate = asyncio.Event()
    fleet.full_at = 3
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(3), slow_after=3600))
    futures = [d.submit(p, config(), verify=False) for p in pods(10)]
    await asyncio.wait_for(fleet.full.wait(), 10)
    fleet.gate.set()
    outcomes = await asyncio.gather(*futures)
    assert all(o.ok and o.pushed for o in outcomes)
    assert fleet.max_inflight == 3


async def test_a_slow_request_gives_its_slot_back() -> None:
    fleet = FakeFleet()
    fleet.hung = {"p00"}
    slots = Slots(asyncio.Semaphore(1), slow_after=0.01)
    d = Deliveries(fleet.attempt, slots)
    hung = d.submit(make_pod("p00"), config(), verify=False)
    await fleet.started.wait()
    healthy = [d.submit(p, config(), verify=False) for p in pods(5)[1:]]
    assert all(o.ok for o in await asyncio.wait_for(asyncio.gather(*healthy), 10))
    assert not hung.done() and slots.released == 1 and slots.slow == 1
    await d.close()
    assert slots.slow == 0


async def test_black_holed_pods_delay_no_other_and_the_reconcile_waits_briefly() -> None:
    fleet = FakeFleet()
    everyone = pods(40)
    fleet.hung = {p.name for p in everyone[::20]}  # 5 %
    settled: list[str] = []
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(1), slow_after=0.01), wait=0.2,
                   on_settled=settled.append)
    subs = {p.uid: d.submit(p, config(), verify=False) for p in everyone}
    out = await asyncio.wait_for(d.gather(subs), 10)
    healthy = [p for p in everyone if p.name not in fleet.hung]
    assert all(out[p.uid] is not None and out[p.uid].ok for p in healthy)  # type: ignore[union-attr]
    assert all(out[p.uid] is None for p in everyone if p.name in fleet.hung)  # left behind, nothing known yet
    assert all(d.failing(p.uid) for p in everyone if p.name in fleet.hung)
    # The next reconcile does not wait for them at all: a new config reaches the healthy pods.
    subs = {p.uid: d.submit(p, config("v2"), verify=False) for p in everyone}
    out = await asyncio.wait_for(d.gather(subs), 10)
    assert all(out[p.uid] is not None and out[p.uid].served_hash == config("v2").hash for p in healthy)  # type: ignore[union-attr]
    await d.close()


async def test_transient_failures_are_retried_per_pod_with_backoff() -> None:
    fleet = FakeFleet()
    fleet.script["p00"] = ["Timeout", "Unreachable", "SidecarError"]
    delays: list[int] = []

    class Recording(Backoff):
        def delay(self, failures: int, rng: random.Random) -> float:
            delays.append(failures)
            return 0.0

    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(4)), backoff=Recording())
    p0, p1 = pods(2)
    f0, f1 = d.submit(p0, config(), verify=False), d.submit(p1, config(), verify=False)
    assert (await asyncio.wait_for(f0, 10)).ok and (await f1).ok
    assert len(fleet.tries["p00"]) == 4 and len(fleet.tries["p01"]) == 1  # only the failing pod was retried
    assert delays == [1, 2, 3]
    assert not d.failing(p0.uid) and d.last_failure(p0.uid) is None  # reset after the success


async def test_a_refusal_is_not_retried() -> None:
    fleet = FakeFleet()
    fleet.script["p00"] = ["Rejected"]
    assert "Rejected" not in TRANSIENT
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(1)))
    outcome = await asyncio.wait_for(d.submit(make_pod("p00"), config(), verify=False), 10)
    assert outcome.reason == "Rejected" and len(fleet.tries["p00"]) == 1


async def test_a_left_behind_delivery_reports_back_when_it_first_fails_and_when_it_ends() -> None:
    fleet = FakeFleet()
    fleet.gate = asyncio.Event()
    fleet.script["p00"] = ["Timeout"]
    settled: list[str] = []
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(1)), backoff=Backoff(base=0.001, cap=0.001), wait=0.0,
                   on_settled=settled.append)
    p = make_pod("p00")
    f = d.submit(p, config(), verify=False)
    assert await d.gather({p.uid: f}) == {p.uid: None}  # nothing known yet: left behind
    fleet.gate.set()
    assert (await asyncio.wait_for(f, 10)).ok
    assert settled == ["team", "team"]  # the first failure (status can say why), then the delivery


async def test_a_newer_config_replaces_a_queued_one() -> None:
    fleet = FakeFleet()
    fleet.gate = asyncio.Event()
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(1)))
    p = make_pod("p00")
    first = d.submit(p, config("v1"), verify=False)
    await fleet.started.wait()
    assert d.submit(p, config("v1"), verify=False) is first  # the same config: the same delivery
    second = d.submit(p, config("v2"), verify=False)
    assert (await first).reason == "Superseded"
    fleet.gate.set()
    assert (await asyncio.wait_for(second, 10)).served_hash == config("v2").hash
    assert fleet.tries["p00"] == [config("v1").hash, config("v2").hash]


async def test_reset_ends_a_backoff_at_once() -> None:
    fleet = FakeFleet()
    fleet.script["p00"] = ["Unreachable"]
    heard = asyncio.Event()
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(1)), backoff=Backoff(base=3600, cap=3600),
                   on_outcome=lambda pod, outcome: heard.set())
    p = make_pod("p00")
    f = d.submit(p, config(), verify=False)
    await asyncio.wait_for(heard.wait(), 10)
    assert d.failing(p.uid) and not f.done()
    d.reset(p.uid)  # the sidecar became ready again
    assert (await asyncio.wait_for(f, 10)).ok


@pytest.mark.parametrize("reason", sorted(TRANSIENT))
async def test_a_failing_pod_is_not_waited_for_and_reports_its_last_failure(reason: str) -> None:
    fleet = FakeFleet()
    fleet.script["p00"] = [reason] * 3
    d = Deliveries(fleet.attempt, Slots(asyncio.Semaphore(1)), backoff=Backoff(base=3600, cap=3600), wait=10)
    p = make_pod("p00")
    first = await asyncio.wait_for(d.gather({p.uid: d.submit(p, config(), verify=False)}), 10)
    assert first[p.uid] is not None and first[p.uid].reason == reason  # type: ignore[union-attr]
    again = await asyncio.wait_for(d.gather({p.uid: d.submit(p, config(), verify=False)}), 1)  # backing off: no wait
    assert again[p.uid] is not None and again[p.uid].reason == reason  # type: ignore[union-attr]
    await d.close()

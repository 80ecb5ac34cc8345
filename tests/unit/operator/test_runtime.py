"""What the thin handlers record: change times, readiness transitions, dirty namespaces."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from modelroute.operator.runtime import Runtime

from .operator_factories import raw_pod, raw_route


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, ns: str) -> bool:
        self.calls.append(ns)
        return True


def runtime() -> tuple[Runtime, Recorder]:
    rt = Runtime.__new__(Runtime)  # only the event bookkeeping, no cluster
    from modelroute.operator.convergence import ChangeClock
    from modelroute.operator.reconciler import Hints
    from modelroute.operator.scheduler import Scheduler

    rec = Recorder()
    rt.changes, rt.hints, rt._ready, rt._seen = ChangeClock(), Hints(), {}, {}
    rt.scheduler = Scheduler(rec, debounce=0.001)
    from modelroute.operator.push.dispatch import Deliveries, Slots

    rt.deliveries = Deliveries(cast(Any, None), Slots(asyncio.Semaphore(1)))  # nothing is pushed here
    from modelroute.operator.quotawatch import QuotaWatch

    rt.quota = QuotaWatch(cast(Any, None), lambda ns: [], lambda ns: [], lambda obj, n: None, lambda: [], interval=0)  # off
    return rt, rec


async def test_ready_transition_asks_for_verification_but_first_sight_does_not() -> None:
    rt, rec = runtime()
    pod: dict[str, Any] = raw_pod("p1", ready=True)
    rt.pod_event(None, pod)  # seen for the first time after a restart: trust the annotation
    assert rt.hints.verify == set()
    rt.pod_event("MODIFIED", raw_pod("p1", ready=False))
    rt.pod_event("MODIFIED", raw_pod("p1", ready=True))  # the sidecar came back: check what it serves
    assert rt.hints.verify == {"uid-p1"}
    rt.hints.acked["uid-p1"] = "sha256:x"
    rt.pod_event("DELETED", pod)
    assert rt.hints.verify == set() and rt.hints.acked == {}
    await rt.scheduler.settled()
    assert rec.calls and set(rec.calls) == {"team"}
    await rt.scheduler.close()


async def test_route_events_start_the_convergence_clock_except_on_listing() -> None:
    rt, _ = runtime()
    rt.route_event(None, raw_route("a"))
    assert rt.changes.pending("team") == []
    rt.route_event("MODIFIED", raw_route("a", generation=2))
    assert rt.changes.pending("team") == ["team/a"]
    await rt.scheduler.close()


async def test_the_echo_of_our_own_annotation_does_not_reconcile_but_a_real_change_does() -> None:
    rt, rec = runtime()
    rt.pod_event(None, raw_pod("p1", {"app": "web"}))
    await rt.scheduler.settled()
    calls = len(rec.calls)
    rt.hints.annotated["uid-p1"] = "sha256:a"
    rt.pod_event("MODIFIED", raw_pod("p1", {"app": "web"}, served="sha256:a"))  # the watch echoes our write
    assert rt.scheduler.idle.is_set()
    rt.pod_event("MODIFIED", raw_pod("p1", {"app": "web"}, served="sha256:b"))  # someone else's hash: look
    await rt.scheduler.settled()
    rt.pod_event("MODIFIED", raw_pod("p1", {"app": "db"}, served="sha256:b"))  # labels changed: look
    await rt.scheduler.settled()
    assert len(rec.calls) == calls + 2
    await rt.scheduler.close()

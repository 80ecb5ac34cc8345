"""The reconciler against an in-memory apiserver and real HTTP fake sidecars (signature-checking)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from modelroute.api import signing
from modelroute.api.config import ConfigPush
from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE, lifecycle_today
from modelroute.api.signing import verify_key
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.operator import bundle as bundles
from modelroute.operator.convergence import ChangeClock
from modelroute.operator.events import Notice
from modelroute.operator.metrics import Metrics
from modelroute.operator.pods import HASH_ANNOTATION
from modelroute.operator.push.client import Pusher
from modelroute.operator.push.dispatch import Slots
from modelroute.operator.reconciler import Hints, Reconciler
from modelroute.testing import fakekube
from modelroute.testing.webapps import serving

from .operator_factories import raw_pod, raw_route

KEY = signing.load_private_key(signing.generate_private_key_pem())
NS = "team"


class FakeKube(fakekube.FakeKube):
    """The shared fake apiserver, with this test's routes and pods."""

    def routes(self, ns: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for p, o in self.objects.items() if "/modelroutes/" in p and o["metadata"]["namespace"] == ns]

    def pods(self, ns: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for p, o in self.objects.items() if "/pods/" in p and o["metadata"]["namespace"] == ns]

    def add_route(self, raw: dict[str, Any]) -> None:
        self.objects[f"/apis/modelroute.dev/v1alpha1/namespaces/{NS}/modelroutes/{raw['metadata']['name']}"] = raw

    def add_pod(self, raw: dict[str, Any]) -> None:
        self.objects[f"/api/v1/namespaces/{NS}/pods/{raw['metadata']['name']}"] = raw

    def route(self, name: str) -> dict[str, Any]:
        return self.objects[f"/apis/modelroute.dev/v1alpha1/namespaces/{NS}/modelroutes/{name}"]

    def pod(self, name: str) -> dict[str, Any]:
        return self.objects[f"/api/v1/namespaces/{NS}/pods/{name}"]


class FakeSidecar:
    """An admin endpoint that verifies the operator's signature and audience like the real one."""

    def __init__(self, pod: str) -> None:
        self.pod = pod
        self.version: str | None = None
        self.routes: list[str] = []
        self.registry: ModelRegistry | None = None
        self.puts = 0
        self.fail_with: int | None = None
        self.hold: asyncio.Event | None = None  # when given, answers wait for it

    async def put(self, request: web.Request) -> web.Response:
        self.puts += 1
        if self.hold is not None:
            await self.hold.wait()
        body = await request.read()
        if not signing.verify(verify_key(KEY), body, request.headers.get(signing.SIGNATURE_HEADER)):
            return web.json_response({"error": {"message": "bad signature"}}, status=403)
        if self.fail_with:
            return web.json_response({"error": {"message": "nope", "problems": ["env OPENAI_API_KEY is not set"]}},
                                     status=self.fail_with)
        push = ConfigPush.model_validate_json(body)
        assert push.audience.name == self.pod and push.audience.namespace == NS
        self.version = push.config.hash
        self.routes = sorted(r.spec.route + "@" + r.metadata.name for r in push.config.routes)
        self.registry = push.config.model_registry
        return web.json_response({"version": self.version, "changed": True})

    async def get(self, _: web.Request) -> web.Response:
        return web.json_response({"version": self.version, "routes": []})


@pytest.fixture
async def sidecars() -> AsyncIterator[dict[str, tuple[FakeSidecar, int]]]:
    out: dict[str, tuple[FakeSidecar, int]] = {}
    async with AsyncExitStack() as stack:
        for name in ("p1", "p2", "p3"):
            fake = FakeSidecar(name)
            app = web.Application()
            app.router.add_put("/config", fake.put)
            app.router.add_get("/config", fake.get)
            out[name] = (fake, await stack.enter_async_context(serving(app)))
        yield out


@pytest.fixture
async def world(sidecars: dict[str, tuple[FakeSidecar, int]]) -> AsyncIterator[tuple[FakeKube, Reconciler, list[Notice]]]:
    kube = FakeKube()
    labels = {"p1": {"app": "web"}, "p2": {"app": "web"}, "p3": {"app": "db"}}
    for name, (_, port) in sidecars.items():
        kube.add_pod(raw_pod(name, labels[name], ip="127.0.0.1", admin_port=str(port)))
    posted: list[Notice] = []
    async with aiohttp.ClientSession() as session:
        rec = Reconciler(
            kube, KEY, Pusher(KEY, session, attempts=2, backoff=0.01), Metrics(),  # type: ignore[arg-type]
            routes=kube.routes, pods=kube.pods, post=lambda _obj, n: posted.append(n),
            changes=ChangeClock(), hints=Hints(),
        )
        yield kube, rec, posted


World = tuple[FakeKube, Reconciler, list[Notice]]
Sidecars = dict[str, tuple[FakeSidecar, int]]


def cond(raw: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] | None = next((c for c in raw["status"]["conditions"] if c["type"] == type_), None)
    assert found is not None, f"no {type_} condition in {raw['status']}"
    return found


async def test_route_reaches_selected_pods_and_status_says_so(world: World, sidecars: Sidecars) -> None:
    kube, rec, posted = world
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}, model="gpt-5.4-mini"))
    assert await rec(NS)
    assert sidecars["p1"][0].routes == ["chat@r1"] and sidecars["p2"][0].routes == ["chat@r1"]
    assert sidecars["p3"][0].routes == []  # served an empty config: ready, no routes
    st = kube.route("r1")["status"]
    assert st["pods"] == {"selected": 2, "synced": 2, "failed": 0}
    assert st["phase"] == "Ready" and cond(kube.route("r1"), "Synced")["status"] == "True"
    await rec.records.flush()  # the config-hash annotations are written off the reconcile's path
    assert kube.pod("p1")["metadata"]["annotations"][HASH_ANNOTATION] == sidecars["p1"][0].version
    assert [n.reason for n in posted] == ["ConfigPushed", "Ready"]
    # The bundle holds the accepted route, signed.
    cm = kube.objects[f"/api/v1/namespaces/{NS}/configmaps/{bundles.CONFIGMAP_NAME}"]
    assert [r.metadata.name for r in bundles.decode(cm["data"], verify_key(KEY)).routes] == ["r1"]

    # A second round with nothing changed pushes nothing and writes nothing.
    writes, puts = len(kube.writes), sum(s.puts for s, _ in sidecars.values())
    assert await rec(NS)
    assert len(kube.writes) == writes and sum(s.puts for s, _ in sidecars.values()) == puts


async def test_the_operators_registry_validates_routes_and_rides_in_pushes_and_the_bundle(world: World,
                                                                                         sidecars: Sidecars) -> None:
    kube, rec, _ = world
    def registry(context: int) -> ModelRegistry:
        return ModelRegistry.model_validate({
            "models": [{"provider": "openai", "models": ["ft:gpt-4o-mini:acme"]}],
            "windows": [{"provider": "openai", "model": "ft:gpt-4o-mini:acme", "contextWindow": context, "maxOutputTokens": 16}]})
    rec.registry = registry(1000)
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}, model="ft:gpt-4o-mini:acme"))
    assert await rec(NS)
    assert kube.route("r1")["status"]["phase"] == "Ready"  # accepted: the registry allows the model
    assert sidecars["p1"][0].registry == registry(1000) and sidecars["p3"][0].registry == registry(1000)
    cm = kube.objects[f"/api/v1/namespaces/{NS}/configmaps/{bundles.CONFIGMAP_NAME}"]
    assert bundles.decode(cm["data"], verify_key(KEY)).model_registry == registry(1000)
    # The operator restarts with other windows: the bundle is rewritten and every pod gets a push.
    before = sidecars["p1"][0].version
    rec.registry = registry(500)
    assert await rec(NS)
    cm = kube.objects[f"/api/v1/namespaces/{NS}/configmaps/{bundles.CONFIGMAP_NAME}"]
    assert bundles.decode(cm["data"], verify_key(KEY)).model_registry == registry(500)
    assert sidecars["p1"][0].registry == registry(500) and sidecars["p1"][0].version != before


async def test_invalid_update_keeps_last_accepted_version(world: World, sidecars: Sidecars) -> None:
    kube, rec, posted = world
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert await rec(NS)
    served = sidecars["p1"][0].version
    bad = raw_route("r1", generation=2, selector={"matchLabels": {"app": "web"}},
                    api_key={"secretKeyRef": {"name": "nope", "key": "k"}})
    bad["status"] = kube.route("r1")["status"]
    kube.add_route(bad)
    assert await rec(NS)
    assert sidecars["p1"][0].version == served  # nothing half-applied
    st = kube.route("r1")["status"]
    assert st["phase"] == "Invalid" and st["observedGeneration"] == 2
    assert "Secret 'nope' does not exist" in cond(kube.route("r1"), "Ready")["message"]
    assert posted[-1].reason == "InvalidSpec"
    # The Secret appears: the new version is accepted and pushed.
    kube.objects[f"/api/v1/namespaces/{NS}/secrets/nope"] = {"metadata": {"name": "nope", "resourceVersion": "1"}, "data": {"k": "eA=="}}
    assert await rec(NS)
    assert sidecars["p1"][0].version != served and kube.route("r1")["status"]["phase"] == "Ready"


async def test_each_round_asks_its_clock_which_models_are_retired(world: World, sidecars: Sidecars) -> None:
    kube, rec, posted = world
    rec.today = lambda: date(2027, 1, 13)  # gpt-4o-mini shuts down on 2027-01-14
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert await rec(NS)
    served = sidecars["p1"][0].version
    assert kube.route("r1")["status"]["phase"] == "Ready"
    assert "shuts down on 2027-01-14" in cond(kube.route("r1"), "ModelDeprecated")["message"]
    rec.today = lambda: date(2027, 1, 14)  # the same spec, the next day
    assert await rec(NS)
    assert kube.route("r1")["status"]["phase"] == "Invalid" and posted[-1].reason == "InvalidSpec"
    assert "model 'gpt-4o-mini' was retired by openai on 2027-01-14" in cond(kube.route("r1"), "Ready")["message"]
    assert sidecars["p1"][0].version == served  # the pods keep the version accepted before


async def test_the_default_clock_is_the_pinned_day(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    kube, rec, _ = world
    assert rec.today is lifecycle_today  # the edge: MODELROUTE_LIFECYCLE_DATE, else the real UTC date
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2027-02-01")
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert await rec(NS)
    assert "retired by openai on 2027-01-14" in cond(kube.route("r1"), "Ready")["message"]
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2027-01-13")
    assert await rec(NS)
    assert kube.route("r1")["status"]["phase"] == "Ready"


async def test_conflicting_route_changes_nothing(world: World, sidecars: Sidecars) -> None:
    kube, rec, _ = world
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}, created="2026-01-01T00:00:00Z"))
    assert await rec(NS)
    before = {n: s.version for n, (s, _) in sidecars.items()}
    kube.add_route(raw_route("r2", selector={"matchLabels": {"app": "web"}}, created="2026-02-01T00:00:00Z", model="gpt-4.1-mini"))
    assert await rec(NS)
    assert {n: s.version for n, (s, _) in sidecars.items()} == before
    st = kube.route("r2")["status"]
    assert st["phase"] == "Conflict"
    assert "already served by ModelRoute team/r1" in cond(kube.route("r2"), "Conflict")["message"]
    assert kube.route("r1")["status"]["phase"] == "Ready"


async def test_push_failure_is_degraded_and_asks_for_retry(world: World, sidecars: Sidecars) -> None:
    kube, rec, posted = world
    sidecars["p2"][0].fail_with = 422
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert not await rec(NS)
    st = kube.route("r1")["status"]
    assert st["phase"] == "Degraded" and st["pods"] == {"selected": 2, "synced": 1, "failed": 1}
    assert st["failures"][0]["pod"] == "p2" and st["failures"][0]["reason"] == "Rejected"
    assert "env OPENAI_API_KEY is not set" in st["failures"][0]["message"]
    assert "PushFailed" in [n.reason for n in posted]
    sidecars["p2"][0].fail_with = None
    assert await rec(NS)
    assert kube.route("r1")["status"]["phase"] == "Ready"


async def test_unreachable_sidecar_is_reported(world: World, sidecars: Sidecars) -> None:
    kube, rec, _ = world
    kube.pod("p1")["metadata"]["annotations"]["modelroute.dev/admin-port"] = "1"  # nothing listens there
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert not await rec(NS)
    st = kube.route("r1")["status"]
    assert st["failures"][0]["reason"] == "Unreachable"


async def test_restart_reads_bundle_and_annotations_no_push_storm(world: World, sidecars: Sidecars) -> None:
    kube, rec, _ = world
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert await rec(NS)
    puts = sum(s.puts for s, _ in sidecars.values())
    # A new operator (fresh hints) sees the annotations and pushes nothing.
    fresh = Reconciler(kube, KEY, rec.pusher, Metrics(), routes=kube.routes, pods=kube.pods,  # type: ignore[arg-type]
                       post=lambda *_: None, changes=ChangeClock(), hints=Hints())
    assert await fresh(NS)
    assert sum(s.puts for s, _ in sidecars.values()) == puts


async def test_deleting_the_route_empties_the_sidecars(world: World, sidecars: Sidecars) -> None:
    kube, rec, _ = world
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert await rec(NS)
    del kube.objects[f"/apis/modelroute.dev/v1alpha1/namespaces/{NS}/modelroutes/r1"]
    assert await rec(NS)
    assert sidecars["p1"][0].routes == [] and sidecars["p2"][0].routes == []
    cm = kube.objects[f"/api/v1/namespaces/{NS}/configmaps/{bundles.CONFIGMAP_NAME}"]
    assert json.loads(cm["data"]["bundle.json"])["routes"] == []


async def test_concurrent_marks_are_debounced_into_one_reconcile() -> None:
    from modelroute.operator.scheduler import Scheduler

    calls: list[str] = []

    async def reconcile(ns: str) -> bool:
        calls.append(ns)
        return True

    s = Scheduler(reconcile, debounce=0.02)
    for _ in range(10):
        s.mark("a")
    s.mark("b")
    await s.settled()
    assert sorted(calls) == ["a", "b"]
    await s.close()


class _Silent(asyncio.Protocol):
    """Accepts the connection and never answers (a hung node)."""


async def test_a_black_holed_sidecar_holds_up_neither_the_others_nor_the_status(world: World, sidecars: Sidecars) -> None:
    kube, rec, _ = world
    server = await asyncio.get_running_loop().create_server(_Silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        kube.add_pod(raw_pod("p4", {"app": "web"}, ip="127.0.0.1", admin_port=str(port)))
        rec.pusher.timeout = aiohttp.ClientTimeout(total=3600)  # the hung pod would hold a waiting reconcile for an hour
        rec.deliveries.wait = 0.2
        rec.deliveries.slots = Slots(asyncio.Semaphore(1), slow_after=0.05)  # one slot: the hung push must give it back
        kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
        assert not await asyncio.wait_for(rec(NS), 30)  # returns although p4 never answers
        assert sidecars["p1"][0].routes == ["chat@r1"] and sidecars["p2"][0].routes == ["chat@r1"]
        st = kube.route("r1")["status"]
        assert st["pods"]["selected"] == 3 and st["pods"]["synced"] == 2
        # A change while p4's push still hangs reaches the others at once, and the reconcile does not wait for p4.
        kube.route("r1")["spec"]["prompt"] = {"version": "v2"}
        kube.route("r1")["metadata"]["generation"] = 2
        before = sidecars["p1"][0].version
        assert not await asyncio.wait_for(rec(NS), 30)
        assert sidecars["p1"][0].version != before and sidecars["p2"][0].version == sidecars["p1"][0].version
        assert rec.deliveries.failing("uid-p4")
    finally:
        await rec.deliveries.close()
        server.close()


async def test_an_ack_that_arrives_after_the_reconcile_stopped_waiting_is_annotated(world: World, sidecars: Sidecars) -> None:
    kube, rec, _ = world
    gate, marked = asyncio.Event(), asyncio.Event()
    slow = sidecars["p1"][0]
    slow.hold = gate
    rec.requeue = lambda ns, delay: marked.set() if "uid-p1" in rec.hints.acked else None
    rec.deliveries.wait = 0.2
    kube.add_route(raw_route("r1", selector={"matchLabels": {"app": "web"}}))
    assert not await rec(NS)  # p1 has not answered: left behind
    assert HASH_ANNOTATION not in kube.pod("p1")["metadata"]["annotations"]
    gate.set()
    await asyncio.wait_for(marked.wait(), 10)  # its delivery ended and marked the namespace
    assert await rec(NS)
    await rec.records.flush()
    assert kube.pod("p1")["metadata"]["annotations"][HASH_ANNOTATION] == slow.version
    writes = len(kube.writes)
    assert await rec(NS)
    await rec.records.flush()
    assert len(kube.writes) == writes  # written once

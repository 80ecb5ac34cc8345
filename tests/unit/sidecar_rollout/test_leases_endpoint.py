"""``PUT /leases``: signed like every operator request; a lease caps the governed target, whose
requests beyond it fall back to the route's next target; /stats and the answer report the lease."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api import signing
from modelroute.api.config import PodRef, SidecarConfig
from modelroute.api.signing import verify_key
from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

from .conftest import ENV, FakeAdapters

KEY = Ed25519PrivateKey.generate()
POD = PodRef(namespace="ns", name="web-1")


def two_targets() -> SidecarConfig:
    route = ModelRoute.model_validate({
        "metadata": {"name": "chat"},
        "spec": {"route": "chat", "timeoutSeconds": 5, "targets": [
            {"name": "a", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "KEY_A"}},
            {"name": "b", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "KEY_B"}},
        ]}})
    return SidecarConfig(routes=[route])


def push(generation: int = 1, rpm: float = 2, **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    lease = {"quota": "ns/org", "provider": "openai", "apiKey": {"env": "KEY_A"}, "requestsPerMinute": 100, "podCount": 4,
             "generation": generation, "shareRequestsPerMinute": rpm,
             "expiresAt": (now + timedelta(seconds=30)).isoformat(), "fallbackAt": (now + timedelta(seconds=60)).isoformat()}
    return {"audience": POD.wire(), "issuedAt": now.isoformat(), "leases": [lease], **over}


class Admin:
    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        self.sidecar, self.http = sidecar, http

    async def put(self, doc: dict[str, Any], *, sign: bool = True, key: Ed25519PrivateKey = KEY) -> tuple[int, dict[str, Any]]:
        body = json.dumps(doc).encode()
        headers = {signing.SIGNATURE_HEADER: signing.sign(key, body)} if sign else {}
        async with self.http.put(self.sidecar.admin_url + "/leases", data=body, headers=headers) as r:
            return r.status, await r.json()

    async def chat(self) -> dict[str, Any]:
        payload = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        async with self.http.post(self.sidecar.inbound_url + "/v1/chat/completions", json=payload) as r:
            assert r.status == 200, await r.text()
            doc: dict[str, Any] = await r.json()
            return doc

    async def stats(self) -> SidecarStats:
        async with self.http.get(self.sidecar.admin_url + "/stats") as r:
            return SidecarStats.model_validate_json(await r.read())


@pytest.fixture
async def admin(adapters: FakeAdapters) -> AsyncIterator[Admin]:
    state = SidecarState(keys=KeyResolver(environ=ENV), adapters=adapters)
    await state.apply(two_targets(), source="file")
    auth = AuthSettings(operator_key=verify_key(KEY), pod=POD)
    async with Sidecar(state, auth, grace_seconds=2) as sc, aiohttp.ClientSession() as http:
        yield Admin(sc, http)


async def test_an_exhausted_lease_falls_back_to_the_next_target(admin: Admin, adapters: FakeAdapters) -> None:
    status, doc = await admin.put(push(rpm=2))
    assert status == 200 and doc == {"generations": {"ns/org": 1}}
    for _ in range(4):
        await admin.chat()
    assert len(adapters["a"].calls) == 2 and len(adapters["b"].calls) == 2  # target a had no limits: the lease alone caps it
    stats = await admin.stats()
    report = stats.quotas["ns/org"]
    assert report.generation == 1 and report.state == "lease" and report.requests_per_minute == 2
    assert report.window_requests == 2 and report.refused == 2


async def test_a_replayed_or_older_lease_changes_nothing(admin: Admin) -> None:
    assert (await admin.put(push(generation=7, rpm=3)))[0] == 200
    status, doc = await admin.put(push(generation=6, rpm=90))
    assert status == 200 and doc == {"generations": {"ns/org": 7}}
    assert (await admin.stats()).quotas["ns/org"].requests_per_minute == 3


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"sign": False}, 401, "missing_signature"),
    ({"key": Ed25519PrivateKey.generate()}, 403, "invalid_signature"),
    ({"doc": {"audience": {"namespace": "ns", "name": "other"}}}, 403, "wrong_audience"),
    ({"doc": {"issuedAt": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}}, 403, "stale_request"),
    ({"doc": {"leases": [{"quota": "ns/org"}]}}, 422, "invalid_leases"),
])
async def test_bad_lease_pushes_are_refused_and_the_lease_held_stays(admin: Admin, change: dict[str, Any], status: int,
                                                                     code: str) -> None:
    assert (await admin.put(push(rpm=5)))[0] == 200
    doc = {**push(generation=2, rpm=50), **change.get("doc", {})}
    got, answer = await admin.put(doc, **{k: v for k, v in change.items() if k != "doc"})
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert (await admin.stats()).quotas["ns/org"].requests_per_minute == 5


async def test_a_timer_resets_the_caps_when_the_lease_expires_and_when_it_falls_back(admin: Admin) -> None:
    state = admin.sidecar.state
    assert (await admin.put(push(rpm=40)))[0] == 200
    timer = state._quota_timer
    assert timer is not None
    lease = state.quotas.leases["ns/org"]
    loop_offset = timer.when() - asyncio.get_running_loop().time()  # the timer is due at the lease's expiry
    assert abs((state.quotas.wall() + loop_offset) - lease.expires_at.timestamp()) < 0.5
    limiter = state.planner.limiters.governing("ns/org")[0]
    assert limiter.limit("requests") == 40
    state.quotas.wall = lambda: lease.expires_at.timestamp() + 1   # what the timer would see when it fires
    timer._run()
    assert limiter.limit("requests") == 25                          # min(share, limit / podCount)
    assert state.quotas.report()["ns/org"].state == "shrunk"
    nxt = state._quota_timer
    assert nxt is not None and nxt is not timer                     # re-armed for the fallback instant
    state.quotas.wall = lambda: lease.fallback_at.timestamp() + 1
    nxt._run()
    assert limiter.limit("requests") == 25 and state._quota_timer is None  # limit / podCount; nothing left to time
    assert state.quotas.report()["ns/org"].state == "fallback"

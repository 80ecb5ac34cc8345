"""The fleet benchmark's admin-API stand-ins answer the operator's Pusher as the sidecar does (they are its admin app)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from modelroute.api import signing
from modelroute.api.selection import render_for_pod
from modelroute.api.signing import verify_key
from modelroute.operator.push.client import Pusher
from modelroute.operator.validation import validate
from modelroute.testing.cluster.loopback import LoopbackAddresses
from modelroute.testing.standin import StandinFleet, StandinPod

from .operator_factories import pod as make_pod
from .operator_factories import raw_route

KEY = signing.load_private_key(signing.generate_private_key_pem())
OTHER = signing.load_private_key(signing.generate_private_key_pem())


@pytest.fixture
async def fleet(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[StandinFleet, list[StandinPod]]]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the route's key reference, as a pod's env would hold it
    addresses = LoopbackAddresses()
    pods = [StandinPod("team", f"web-{i}", f"uid-{i}", addresses.allocate(), 8788, blackhole=i == 2) for i in range(3)]
    f = StandinFleet(pods, verify_key(KEY))
    await f.start()
    yield f, pods
    await f.close()
    addresses.close()


async def test_standins_verify_and_ack_like_the_sidecar(fleet: tuple[StandinFleet, list[StandinPod]]) -> None:
    f, pods = fleet
    cfg = render_for_pod([validate(raw_route("a"), {}).route], {}).config  # type: ignore[list-item]
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(KEY, session, timeout=0.5)
        target = replace(make_pod("web-0", ip=pods[0].ip), uid="uid-0")
        outcome = await pusher.attempt(target, cfg, True)
        assert outcome.ok and outcome.pushed and outcome.served_hash == cfg.hash
        assert f.report()["team/web-0"]["version"] == cfg.hash
        assert f.report()["team/web-0"]["requests"] == {"GET /config": 1, "PUT /config": 1}
        assert (await pusher.attempt(target, cfg, True)).pushed is False  # verified: it serves it, no push

        wrong_uid = replace(make_pod("web-1", ip=pods[1].ip), uid="uid-9")
        refused = await pusher.attempt(wrong_uid, cfg, False)
        assert refused.reason == "Unauthorized" and "pod UID" in refused.message
        forged = await Pusher(OTHER, session, timeout=0.5).attempt(replace(make_pod("web-1", ip=pods[1].ip), uid="uid-1"), cfg, False)
        assert forged.reason == "Unauthorized" and "signature" in forged.message
        assert f.report()["team/web-1"]["version"] is None

        hung = await asyncio.wait_for(pusher.attempt(replace(make_pod("web-2", ip=pods[2].ip), uid="uid-2"), cfg, False), 10)
        assert hung.reason == "Timeout"

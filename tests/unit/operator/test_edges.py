"""Push client retries and refusals, the change clock, Lease expiry, CLI options."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from modelroute.api import signing
from modelroute.api.config import SidecarConfig
from modelroute.operator import cli
from modelroute.operator.convergence import ChangeClock
from modelroute.operator.leader import expired
from modelroute.operator.push.client import Pusher
from modelroute.testing.webapps import serving

from .operator_factories import pod

KEY = signing.load_private_key(signing.generate_private_key_pem())


@pytest.fixture
async def sidecar() -> AsyncIterator[tuple[list[int], int]]:
    """Answers with the queued statuses in order, then 200."""
    statuses: list[int] = []

    async def put(request: web.Request) -> web.Response:
        await request.read()
        status = statuses.pop(0) if statuses else 200
        if status == 200:
            return web.json_response({"version": SidecarConfig().hash})
        return web.json_response({"error": {"message": f"status {status}"}}, status=status)

    app = web.Application()
    app.router.add_put("/config", put)
    async with serving(app) as port:
        yield statuses, port


async def test_push_retries_transient_errors_then_succeeds(sidecar: tuple[list[int], int]) -> None:
    statuses, port = sidecar
    statuses.extend([503, 500])
    async with aiohttp.ClientSession() as s:
        out = await Pusher(KEY, s, attempts=3, backoff=0.001).push(pod("p", ip="127.0.0.1", admin_port=str(port)), SidecarConfig())
    assert out.ok and out.pushed and out.attempts == 3 and out.served_hash == SidecarConfig().hash


async def test_push_refusal_is_final_and_explained(sidecar: tuple[list[int], int]) -> None:
    statuses, port = sidecar
    statuses.extend([403, 200])
    async with aiohttp.ClientSession() as s:
        out = await Pusher(KEY, s, attempts=3, backoff=0.001).push(pod("p", ip="127.0.0.1", admin_port=str(port)), SidecarConfig())
    assert out.reason == "Unauthorized" and out.attempts == 1
    assert "--operator-public-key" in out.message and statuses == [200]


def test_change_clock_times_real_changes_only() -> None:
    now = [0.0]
    clock = ChangeClock(lambda: now[0])
    clock.observe("ns/a", "u", 1, deleted=False, initial=True)  # listing after a restart: not a change
    assert clock.pending("ns") == []
    clock.observe("ns/a", "u", 1, deleted=False, initial=False)  # same generation (status patch): not a change
    assert clock.pending("ns") == []
    clock.observe("ns/a", "u", 2, deleted=False, initial=False)
    now[0] = 0.25
    clock.observe("ns/a", "u", 3, deleted=False, initial=False)  # still timed from the first unsettled change
    now[0] = 0.5
    assert clock.settle("ns") == [0.5] and clock.settle("ns") == []
    clock.observe("ns/a", "u", 3, deleted=True, initial=False)
    assert clock.pending("ns") == ["ns/a"]


def test_lease_expiry() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    fresh = {"holderIdentity": "x", "leaseDurationSeconds": 15, "renewTime": (now - timedelta(seconds=5)).isoformat()}
    stale = {**fresh, "renewTime": (now - timedelta(seconds=20)).isoformat()}
    assert not expired(fresh, now) and expired(stale, now) and expired({**fresh, "holderIdentity": None}, now)


def test_cli_options() -> None:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["-n", "a", "-n", "b", "--signing-key", "k.pem", "--metrics-listen", "127.0.0.1:0"])
    opts = cli.options_from(args)
    assert opts.namespaces == ["a", "b"] and (opts.metrics_host, opts.metrics_port) == ("127.0.0.1", 0)
    assert cli.run(parser.parse_args(["--signing-key", "/nonexistent"])) == 2

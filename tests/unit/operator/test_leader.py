"""Lease timing (issue 14, item 9): every bound derives from the lease duration, a stalled renewal
ends leadership before the lease can expire, and ``Kube`` calls carry a timeout of their own.
The e2e twin (tests/e2e/test_operator_lease.py) runs the same against a real apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from modelroute.operator.kube.client import Kube
from modelroute.operator.kube.connection import KubeConnection
from modelroute.operator.leader import LeaseLock, LeaseTiming, LostLease


class StallingKube:
    """Answers lease reads and writes until ``stall`` is set, then never answers."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.stall = asyncio.Event()
        self.never = asyncio.Event()

    async def _gate(self) -> None:
        if self.stall.is_set():
            await self.never.wait()

    async def get(self, path: str) -> Any:
        await self._gate()
        return self.lease

    async def create(self, path: str, body: Any) -> Any:
        await self._gate()
        self.lease = body
        return body

    async def replace(self, path: str, body: Any) -> Any:
        await self._gate()
        self.lease = body
        return body


def test_timing_keeps_a_margin_before_expiry() -> None:
    t = LeaseTiming(15)
    assert (t.renew_deadline, t.attempt_timeout, t.renew_period, t.retry_period) == (10, 3, 5, 1)
    assert t.attempt_timeout < t.renew_deadline < t.duration
    assert t.api_timeout().total == 10
    assert LeaseTiming(3).api_timeout().total == 5  # a floor for the short leases of tests


async def test_a_stalled_renewal_ends_leadership_within_the_renew_deadline() -> None:
    kube = StallingKube()
    lock = LeaseLock(kube, "ns", "lease", "me", duration=1.5)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    await lock.acquire()
    hold = asyncio.create_task(lock.hold())
    await asyncio.wait_for(lock.renewed.wait(), 5)
    kube.stall.set()
    with pytest.raises(LostLease, match="could not renew"):
        await asyncio.wait_for(hold, 5)
    assert lock.renewed_at is not None and not lock.held
    assert loop.time() - lock.renewed_at <= lock.timing.renew_deadline + 0.2


async def test_kube_calls_time_out_on_a_silent_apiserver() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the request, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = KubeConnection(server=f"http://127.0.0.1:{port}", config=_Config())  # type: ignore[arg-type]
    try:
        async with aiohttp.ClientSession() as session:  # aiohttp's default would wait 300 s
            kube = Kube(conn, session, aiohttp.ClientTimeout(total=0.3))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(kube.get("/api/v1/namespaces/x/configmaps/y"), 5)
    finally:
        server.close()


class _Config:
    """The part of kubernetes.client.Configuration that an http:// KubeConnection reads."""

    def get_api_key_with_prefix(self, name: str) -> str | None:
        return None

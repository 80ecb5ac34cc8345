"""Leader election against a stalling apiserver (issue 14, item 9): the real kube-apiserver behind
an in-test TCP proxy that stops forwarding. The holder must give up leadership within its renew
deadline, before the Lease can expire, so the next operator never overlaps it."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import aiohttp
import pytest

from modelroute.operator.kube import connection as kubeconn
from modelroute.operator.kube.client import Kube
from modelroute.operator.kube.connection import KubeConnection
from modelroute.operator.leader import LeaseLock, LostLease
from modelroute.testing.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


class StallingProxy:
    """Forwards TCP to ``upstream`` until ``stall()``; then holds every byte (connections stay open, nothing answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def stall(self) -> None:
        self.flowing.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            dst.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_stalled_renewal_ends_leadership_before_another_operator_takes_over(cluster: ControlPlane,
                                                                                   namespace: str) -> None:
    loop = asyncio.get_running_loop()
    direct = kubeconn.load(str(cluster.kubeconfig))
    url = urlsplit(direct.server)
    assert url.hostname and url.port
    proxy = StallingProxy(url.hostname, url.port)
    await proxy.start()
    via_proxy = KubeConnection(server=f"{url.scheme}://{url.hostname}:{proxy.port}", config=direct.config)
    # Sessions and clients without any timeout of their own: the bound has to come from the lease.
    no_timeout = aiohttp.ClientTimeout()
    async with aiohttp.ClientSession(timeout=no_timeout) as sa, aiohttp.ClientSession(timeout=no_timeout) as sb:
        a = LeaseLock(Kube(via_proxy, sa, no_timeout), namespace, "stall", "operator-a", duration=3)
        b = LeaseLock(Kube(direct, sb, no_timeout), namespace, "stall", "operator-b", duration=3)
        try:
            await asyncio.wait_for(a.acquire(), 10)
            hold = asyncio.create_task(a.hold())
            await asyncio.wait_for(a.renewed.wait(), 10)  # renewals do pass through the proxy
            proxy.stall()
            b_acquired: list[float] = []
            b_task = asyncio.create_task(b.acquire())
            b_task.add_done_callback(lambda _: b_acquired.append(loop.time()))
            with pytest.raises(LostLease, match="could not renew"):
                await asyncio.wait_for(hold, 10)  # the old code waited for aiohttp's 300 s here
            lost_at = loop.time()
            assert not a.held
            assert a.renewed_at is not None
            assert lost_at - a.renewed_at <= a.timing.renew_deadline + 0.5
            await asyncio.wait_for(a.release(), 1)  # a lost lease is not touched (the apiserver is stalled)
            await asyncio.wait_for(b_task, 15)
            assert b.held and b_acquired[0] > lost_at  # the new leader started after the old one stopped
            assert b.renewed_at is not None and b.renewed_at >= a.renewed_at + a.timing.renew_deadline
            lease = cluster.rest().get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/stall")
            assert lease["spec"]["holderIdentity"] == "operator-b"
        finally:
            with contextlib.suppress(Exception):
                await b.release()
            await proxy.close()

"""Run the operator: load the key and the cluster connection, take the Lease, run kopf.

``serve`` is the async entry (tests embed it); ``modelroute operator`` calls it through
``cli.run``. kopf runs standalone (no KopfPeering CRDs): the Lease in ``leader`` is what
keeps a single operator active.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kopf

from modelroute.api import signing
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.operator import handlers
from modelroute.operator.kube import connection as kubeconn
from modelroute.operator.kube.client import Kube
from modelroute.operator.leader import LeaseLock, LeaseTiming
from modelroute.operator.metrics import Metrics, MetricsServer
from modelroute.operator.pods import SIDECAR_SELECTOR
from modelroute.operator.push.client import Pusher
from modelroute.operator.runtime import Runtime

log = logging.getLogger(__name__)

ENV_SIGNING_KEY = "MODELROUTE_SIGNING_KEY_FILE"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_lease_namespace() -> str:
    env = os.environ.get("MODELROUTE_OPERATOR_NAMESPACE") or os.environ.get("POD_NAMESPACE")
    if env:
        return env
    if SA_NAMESPACE_FILE.exists():
        return SA_NAMESPACE_FILE.read_text().strip()
    return "default"


@dataclass
class Options:
    signing_key_file: Path
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    kubeconfig: str | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    lease_namespace: str = field(default_factory=default_lease_namespace)
    lease_name: str = "modelroute-operator"
    lease_duration: float = 15.0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    debounce: float = 0.03
    push_concurrency: int = 32
    push_attempts: int = 3
    push_timeout: float = 3.0
    quota_poll_seconds: float = 30.0  # how often the sidecars' /stats are read for quota pressure (0: never)
    rebalance_seconds: float = 2.0    # how often ProviderQuotas are split into per-pod leases (0: never)
    model_registry: ModelRegistry | None = None  # --model-registry: validates routes, rides in every config and bundle


@dataclass
class Running:
    """What an embedding test can look at while the operator runs."""

    runtime: Runtime | None = None
    metrics: Metrics = field(default_factory=Metrics)
    metrics_port: int | None = None
    leader: asyncio.Event = field(default_factory=asyncio.Event)


def settings(options: Options) -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    # The CRD schema is structural: a `status.kopf` field would be pruned, so keep kopf's own
    # bookkeeping (unused by event/index handlers, but set for any future change handler) in annotations.
    s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="modelroute.dev")
    s.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="modelroute.dev", key="last-handled-configuration")
    s.persistence.finalizer = "modelroute.dev/finalizer"
    s.posting.enabled = True
    s.posting.reporting_component = "modelroute-operator"
    s.posting.reporting_instance = options.identity
    s.posting.event_name_prefix = "modelroute-"
    s.peering.standalone = True
    s.watching.server_timeout = 270  # the apiserver ends the watch; kopf reconnects
    s.watching.client_timeout = 300
    s.watching.connect_timeout = 10
    # kopf's own API calls (patches, events) end within the renew deadline too, as the operator's do.
    timing = LeaseTiming(options.lease_duration)
    s.networking.request_timeout = timing.api_timeout().total
    s.networking.connect_timeout = timing.api_timeout().connect
    s.watching.label_selectors["v1", "pods"] = SIDECAR_SELECTOR  # server-side: never watch every pod
    return s


async def serve(
    options: Options,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    running: Running | None = None,
) -> int:
    """Run until ``stop_flag`` (or SIGINT/SIGTERM in the main thread). 0 on a clean stop, 1 when the Lease is lost."""
    running = running or Running()
    key = signing.load_private_key(options.signing_key_file.read_bytes())
    connection = kubeconn.load(options.kubeconfig)
    server = MetricsServer(running.metrics.registry, options.metrics_host, options.metrics_port)
    await server.start()
    running.metrics_port = server.port
    log.info("metrics on http://%s:%d/metrics", options.metrics_host, server.port)
    stop = stop_flag or asyncio.Event()
    try:
        timing = LeaseTiming(options.lease_duration)  # no apiserver call may outlast leadership
        # Waiting for a pooled connection is not connecting: in a fleet's write burst the wait alone passed `connect`.
        api_timeout = aiohttp.ClientTimeout(total=timing.api_timeout().total, sock_connect=timing.api_timeout().connect)
        # The Lease has its own connection: renewals never queue behind a fleet's annotation and status writes
        # (1,000 pods: the shared pool's wait for a free connection outlasted the renew deadline, bench/fleet.py).
        async with aiohttp.ClientSession(timeout=api_timeout) as api_session, aiohttp.ClientSession(
            timeout=timing.api_timeout(), connector=aiohttp.TCPConnector(limit=2)
        ) as lease_session, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=4)
        ) as push_session:
            kube = Kube(connection, api_session, api_timeout)
            lock = LeaseLock(Kube(connection, lease_session, timing.api_timeout()), options.lease_namespace, options.lease_name,
                             options.identity, options.lease_duration)
            if not await _first(lock.acquire(), stop):
                return 0
            running.leader.set()
            running.metrics.leader.set(1)
            pusher = Pusher(key, push_session, concurrency=options.push_concurrency,
                            attempts=options.push_attempts, timeout=options.push_timeout)
            runtime = running.runtime = Runtime(connection, kube, key, pusher, running.metrics, debounce=options.debounce,
                                                quota_interval=options.quota_poll_seconds,
                                                rebalance_interval=options.rebalance_seconds, registry=options.model_registry)
            try:
                return await _run_kopf(options, runtime, lock, stop, ready_flag)
            finally:
                await runtime.quota.close()
                await runtime.rebalancer.close()
                await runtime.scheduler.close()
                await runtime.deliveries.close()
                await runtime.reconciler.records.close()
                await lock.release()
                running.metrics.leader.set(0)
    finally:
        await server.stop()


async def _first(coro: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Await ``coro`` unless ``stop`` is set first; True when ``coro`` finished."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, stopper):
        if t not in done:
            t.cancel()
    return task in done


async def _run_kopf(
    options: Options, runtime: Runtime, lock: LeaseLock, stop: asyncio.Event, ready_flag: asyncio.Event | None
) -> int:
    hold = asyncio.create_task(lock.hold(), name="lease renewal")
    op = asyncio.create_task(kopf.operator(
        registry=handlers.registry,
        settings=settings(options),
        memo=kopf.Memo(runtime=runtime),
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        stop_flag=stop,
        ready_flag=ready_flag,
    ), name="kopf")
    done, _ = await asyncio.wait({hold, op}, return_when=asyncio.FIRST_COMPLETED)
    if hold in done:
        log.error("stopping: %s", hold.exception())
        stop.set()
        await asyncio.gather(op, return_exceptions=True)
        return 1
    hold.cancel()
    await asyncio.gather(hold, return_exceptions=True)
    op.result()
    return 0

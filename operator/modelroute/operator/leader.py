"""One active operator: a coordination.k8s.io Lease held while the operator runs.

Chosen over kopf peering because it needs no extra CRDs (KopfPeering) and is the standard
Kubernetes mechanism. The operator waits for the Lease before it starts kopf and exits when
it loses it (its pod restarts and queues up again); a graceful stop releases it at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from modelroute.operator.kube import client as paths
from modelroute.operator.kube.client import ApiError, Kube

log = logging.getLogger(__name__)


class LostLease(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def expired(spec: dict[str, Any], now: datetime) -> bool:
    """Whether nobody holds the lease (empty holder or not renewed within its duration)."""
    if not spec.get("holderIdentity"):
        return True
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or 15
    return renewed is None or renewed + timedelta(seconds=duration) < now


class LeaseLock:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, duration: float = 15.0) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration = max(1, round(duration))
        self.held = False

    def _spec(self, current: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        transitions = (current or {}).get("leaseTransitions") or 0
        same = (current or {}).get("holderIdentity") == self.identity
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": (current or {}).get("acquireTime") if same else _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions if same else transitions + (1 if current else 0),
        }

    async def try_acquire(self) -> bool:
        now = _now()
        path = paths.leases(self.namespace, self.name)
        lease = await self.kube.get(path)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None, now)}
            try:
                await self.kube.create(paths.leases(self.namespace), body)
            except ApiError as e:
                if e.status == 409:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity and not expired(spec, now):
            return False
        lease["spec"] = self._spec(spec, now)
        try:
            await self.kube.replace(path, lease)  # resourceVersion makes this a compare-and-swap
        except ApiError as e:
            if e.status == 409:
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait until this operator holds the lease."""
        announced = False
        while not await self.try_acquire():
            if not announced:
                log.info("waiting for lease %s/%s (held by another operator)", self.namespace, self.name)
                announced = True
            await asyncio.sleep(min(2.0, self.duration / 3))
        self.held = True
        log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)

    async def hold(self) -> None:
        """Renew until cancelled; raise LostLease when another operator took over or renewals kept failing."""
        last_ok = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.duration / 3)
            try:
                if await self.try_acquire():
                    last_ok = asyncio.get_running_loop().time()
                    continue
                self.held = False
                raise LostLease(f"lease {self.namespace}/{self.name} was taken by another operator")
            except ApiError as e:
                log.warning("lease renewal failed: %s", e)
            except OSError as e:
                log.warning("lease renewal failed: %s", e)
            if asyncio.get_running_loop().time() - last_ok > self.duration:
                self.held = False
                raise LostLease(f"could not renew lease {self.namespace}/{self.name} for {self.duration}s")

    async def release(self) -> None:
        if not self.held:
            return
        path = paths.leases(self.namespace, self.name)
        try:
            lease = await self.kube.get(path)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                await self.kube.replace(path, lease)
        except (ApiError, OSError) as e:
            log.warning("could not release lease: %s", e)
        self.held = False

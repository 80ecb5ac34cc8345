"""One active operator: a coordination.k8s.io Lease held while the operator runs.

Chosen over kopf peering because it needs no extra CRDs (KopfPeering) and is the standard
Kubernetes mechanism. The operator waits for the Lease before it starts kopf and exits when
it loses it (its pod restarts and queues up again); a graceful stop releases it at once.

Two leaders must never overlap, so every timing derives from the lease duration (``LeaseTiming``,
client-go's scheme): each apiserver attempt is cut off after ``attempt_timeout``, and the holder
gives up leadership ``renew_deadline`` after the start of its last successful renewal, while
another operator may take the Lease only ``duration`` after that renewal's ``renewTime``. The gap
(a third of the duration) absorbs clock skew and the time kopf takes to stop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

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


@dataclass(frozen=True)
class LeaseTiming:
    """Every bound of lease handling, derived from the lease duration (15 s: renew every 5 s, give up after 10 s)."""

    duration: float

    @property
    def renew_deadline(self) -> float:
        """Leadership ends this long after the start of the last successful renewal."""
        return self.duration * 2 / 3

    @property
    def attempt_timeout(self) -> float:
        """One renewal or acquisition attempt (a GET and a PUT) is abandoned after this."""
        return self.duration / 5

    @property
    def renew_period(self) -> float:
        return self.duration / 3

    @property
    def retry_period(self) -> float:
        """After a failed renewal, try again this soon."""
        return self.duration / 15

    def api_timeout(self) -> aiohttp.ClientTimeout:
        """For every other apiserver call (the operator's and kopf's): none outlasts the renew deadline.

        At least 5 s (2 s to connect), so the short leases of tests do not starve ordinary writes.
        """
        return aiohttp.ClientTimeout(total=max(5.0, self.renew_deadline), connect=max(2.0, self.attempt_timeout))


RENEWAL_ERRORS = (ApiError, OSError, aiohttp.ClientError, TimeoutError)


class LeaseLock:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, duration: float = 15.0) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration = max(1, round(duration))
        self.timing = LeaseTiming(self.duration)
        self.held = False
        self.renewed_at: float | None = None   # loop time at the start of the last successful acquisition or renewal
        self.renewed = asyncio.Event()          # set on every successful renewal (tests wait on it)

    async def _attempt(self, bound: float) -> bool:
        """``try_acquire`` cut off after ``bound`` seconds; True only when this operator holds the lease."""
        async with asyncio.timeout(max(0.0, bound)):
            return await self.try_acquire()

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
        """Wait until this operator holds the lease (apiserver errors and stalls are retried)."""
        loop = asyncio.get_running_loop()
        announced = False
        while True:
            started = loop.time()
            try:
                if await self._attempt(self.timing.attempt_timeout):
                    break
                if not announced:
                    log.info("waiting for lease %s/%s (held by another operator)", self.namespace, self.name)
                    announced = True
            except RENEWAL_ERRORS as e:
                log.warning("lease %s/%s: acquisition attempt failed: %s", self.namespace, self.name, type(e).__name__)
            await asyncio.sleep(min(2.0, self.timing.renew_period))
        self.held = True
        self.renewed_at = started
        log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)

    async def hold(self) -> None:
        """Renew until cancelled; raise LostLease when another operator took over, or before the lease can
        expire when renewals keep failing or stalling (never later than ``renew_deadline`` after the last renewal)."""
        loop = asyncio.get_running_loop()
        last_ok = self.renewed_at if self.renewed_at is not None else loop.time()
        wait = self.timing.renew_period
        while True:
            deadline = last_ok + self.timing.renew_deadline
            await asyncio.sleep(max(0.0, min(wait, deadline - loop.time())))
            started = loop.time()
            try:
                if started < deadline and await self._attempt(min(self.timing.attempt_timeout, deadline - started)):
                    last_ok = self.renewed_at = started
                    wait = self.timing.renew_period
                    self.renewed.set()
                    continue
                if started < deadline:
                    self.held = False
                    raise LostLease(f"lease {self.namespace}/{self.name} was taken by another operator")
            except RENEWAL_ERRORS as e:
                log.warning("lease renewal failed: %s", f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
                wait = self.timing.retry_period
            if loop.time() >= deadline:
                self.held = False
                raise LostLease(f"could not renew lease {self.namespace}/{self.name} within "
                                f"{self.timing.renew_deadline:g}s (lease duration {self.duration}s)")

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

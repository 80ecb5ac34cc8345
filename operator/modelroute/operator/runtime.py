"""The operator's shared state, reached by every kopf handler through ``memo.runtime``.

Handlers call ``route_event`` / ``pod_event``; both only record a hint and mark the
namespace dirty. Everything here is rebuilt from the watch after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import kopf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.operator.convergence import ChangeClock
from modelroute.operator.evalrun import EvalRuns
from modelroute.operator.events import Notice
from modelroute.operator.kube import client as kube_paths
from modelroute.operator.kube.client import Kube
from modelroute.operator.kube.connection import KubeConnection
from modelroute.operator.metrics import Metrics
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.client import Pusher
from modelroute.operator.quotawatch import QuotaWatch
from modelroute.operator.rebalance import Rebalancer
from modelroute.operator.reconciler import Hints, Reconciler
from modelroute.operator.scheduler import Scheduler

log = logging.getLogger(__name__)

MAX_EVENT_MESSAGE = 1000


def post_event(obj: Mapping[str, Any], notice: Notice) -> None:
    """A Kubernetes Event on ``obj`` through kopf's poster (batched, retried)."""
    message = notice.message if len(notice.message) <= MAX_EVENT_MESSAGE else notice.message[: MAX_EVENT_MESSAGE - 3] + "..."
    try:
        kopf.event(kopf.Body(cast(kopf.RawBody, dict(obj))), type=notice.type, reason=notice.reason, message=message)
    except LookupError:  # outside kopf's context (unit tests): log only
        log.info("event %s %s: %s", notice.type, notice.reason, message)


class Runtime:
    def __init__(
        self, connection: KubeConnection, kube: Kube, key: Ed25519PrivateKey, pusher: Pusher, metrics: Metrics,
        *, debounce: float = 0.03, quota_interval: float = 0.0, rebalance_interval: float = 0.0,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.connection, self.kube, self.metrics = connection, kube, metrics
        self.route_index: Mapping[str, Any] = {}
        self.pod_index: Mapping[str, Any] = {}
        self.quota_index: Mapping[str, Any] = {}
        self.changes = ChangeClock()
        self.hints = Hints()
        self._ready: dict[str, bool] = {}
        self._seen: dict[str, SidecarPod] = {}  # each pod as last seen, to tell our own annotation's echo from a change
        self.reconciler = Reconciler(
            kube, key, pusher, metrics, routes=self._routes, pods=self._pods, post=post_event,
            changes=self.changes, hints=self.hints, registry=registry,
        )
        self.deliveries = self.reconciler.deliveries  # pushes per pod: pod events reset or forget their backoff
        self.scheduler = Scheduler(self.reconciler, debounce=debounce)
        self.reconciler.requeue = self.scheduler.later  # rollouts ask to be looked at again later
        # Quota pressure in the sidecars' /stats -> Events (0: off; the app sets the interval).
        self.quota = QuotaWatch(pusher, self._routes, self._pods, post_event, lambda: list(self.pod_index),
                                interval=quota_interval)
        # ProviderQuotas -> per-pod leases every few seconds; the bundle carries their terms (0: off).
        self.rebalancer = Rebalancer(pusher, self._quotas, self._routes, self._pods, post_event, self._write_quota_status,
                                     lambda: [ns for ns in self.quota_index if ns in self.pod_index], interval=rebalance_interval,
                                     on_bundle_change=self.scheduler.mark)
        self.reconciler.quota_terms = self.rebalancer.bundle_terms
        # ModelRouteEvals (`kubectl modelroute eval`): signed comparisons through one sidecar each.
        self.evals = EvalRuns(kube, key, lambda: pusher.session, self._routes, self._pods)

    def attach(self, route_index: Mapping[str, Any], pod_index: Mapping[str, Any], quota_index: Mapping[str, Any] | None = None) -> None:
        self.route_index, self.pod_index = route_index, pod_index
        self.quota_index = quota_index if quota_index is not None else {}

    def _quotas(self, ns: str) -> list[dict[str, Any]]:
        return list(self.quota_index.get(ns, ()))

    async def _write_quota_status(self, ns: str, name: str, patch: dict[str, Any]) -> None:
        await self.kube.merge_patch(kube_paths.providerquota_status(ns, name), patch)

    def quota_event(self) -> None:
        self.rebalancer.start()  # from a handler: its Events go through kopf's poster

    def eval_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        self.evals.event(type_, body)

    def _routes(self, ns: str) -> list[dict[str, Any]]:
        return list(self.route_index.get(ns, ()))

    def _pods(self, ns: str) -> list[dict[str, Any]]:
        return list(self.pod_index.get(ns, ()))

    def route_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        ns = meta.get("namespace") or ""
        self.changes.observe(
            f"{ns}/{meta.get('name')}", meta.get("uid"), meta.get("generation"),
            deleted=type_ == "DELETED", initial=type_ is None,
        )
        self.quota.start()  # from a handler: its Events go through kopf's poster
        self.scheduler.mark(ns)

    def pod_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        pod = SidecarPod.from_raw(body)
        if type_ == "DELETED":
            self._ready.pop(pod.uid, None)
            self.hints.acked.pop(pod.uid, None)
            self.hints.annotated.pop(pod.uid, None)
            self.hints.verify.discard(pod.uid)
            self.deliveries.forget(pod.uid)
            self._seen.pop(pod.uid, None)
        else:
            was_ready = self._ready.get(pod.uid)
            self._ready[pod.uid] = pod.ready
            if was_ready is False and pod.ready:
                # The sidecar (re)became ready: it may have restarted; check what it serves, without waiting out a backoff.
                self.hints.verify.add(pod.uid)
                self.deliveries.reset(pod.uid)
            before, self._seen[pod.uid] = self._seen.get(pod.uid), pod
            if echo_of_own_record(before, pod, (self.hints.annotated.get(pod.uid), self.hints.acked.get(pod.uid))):
                return  # only our config-hash annotation changed: nothing to reconcile (1,000 of these follow a fleet's change)
        self.scheduler.mark(pod.namespace)


def echo_of_own_record(before: SidecarPod | None, now: SidecarPod, ours: tuple[str | None, ...]) -> bool:
    """Whether ``now`` differs from ``before`` only by a config-hash annotation the operator wrote or is writing (pure)."""
    return (before is not None and now.served_hash is not None and now.served_hash in ours
            and replace(before, served_hash=now.served_hash) == now)

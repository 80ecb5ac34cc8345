"""The quota rebalance loop: every few seconds, per ProviderQuota, read demand, push leases, write status.

Runs beside the reconciler like ``quotawatch`` (started from a kopf handler, so its Events go through
kopf's poster), never inside a reconcile round. Per namespace with ProviderQuotas: the reachable
sidecar pods that serve a governed target are asked for ``/stats`` (bounded by the push client's
semaphore), ``quotaround.plan_round`` decides, leases go out as signed ``PUT /leases`` (their answers
are the acknowledgements), and the status is patched. A pod that does not answer keeps its claim in
the arithmetic: it may still hold an earlier lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from modelroute.api.config import PodRef
from modelroute.api.leases import LeasePush, QuotaLease
from modelroute.api.stats import QuotaReport, SidecarStats
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.providerquota import ProviderQuota, QuotaTerms
from modelroute.operator import quotaround
from modelroute.operator.events import Notice
from modelroute.operator.periodic import Periodic
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.client import Pusher

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0

Snapshots = Callable[[str], list[dict[str, Any]]]
Poster = Callable[[Mapping[str, Any], Notice], None]
StatusWriter = Callable[[str, str, dict[str, Any]], Awaitable[None]]


def _valid(raws: Iterable[Mapping[str, Any]], model: type[ModelRoute] | type[ProviderQuota]) -> list[Any]:
    out = []
    for raw in raws:
        try:
            out.append(model.model_validate({k: v for k, v in raw.items() if k != "status"}))
        except ValidationError:
            continue  # an invalid object: the apiserver's schema or the reconciler reports it
    return out


class Rebalancer:
    def __init__(
        self, pusher: Pusher, quotas: Snapshots, routes: Snapshots, pods: Snapshots, post: Poster,
        write_status: StatusWriter, namespaces: Callable[[], Iterable[str]], *, interval: float = DEFAULT_INTERVAL,
        on_bundle_change: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.pusher, self.quotas, self.routes, self.pods, self.post = pusher, quotas, routes, pods, post
        self.write_status, self.namespaces, self.interval = write_status, namespaces, interval
        self.on_bundle_change = on_bundle_change
        self.clock = clock
        self.states: dict[str, quotaround.QuotaState] = {}       # quota key -> state between rounds
        self.terms: dict[str, list[QuotaTerms]] = {}              # namespace -> what the bundle should carry
        self.rounds = 0
        self.loop = Periodic("quota rebalance", self.rebalance, namespaces, interval)

    def start(self) -> None:
        """Start the loop (idempotent; interval <= 0: never). Call from a kopf handler."""
        self.loop.start()

    def bundle_terms(self, ns: str) -> list[QuotaTerms]:
        """The quotas the namespace's route bundle carries: a pod without a lease takes limit / (podCount + 1)."""
        return list(self.terms.get(ns, ()))

    async def rebalance(self, ns: str) -> None:
        """One round for every ProviderQuota of the namespace."""
        quotas: list[ProviderQuota] = _valid(self.quotas(ns), ProviderQuota)
        if not quotas:
            self.terms.pop(ns, None)
            return
        routes: list[ModelRoute] = _valid(self.routes(ns), ModelRoute)
        pods = [SidecarPod.from_raw(raw) for raw in self.pods(ns)]
        # Every pod that may send keeps its claim (a terminating one too); only reachable ones are asked and pushed to.
        users = {q.key: [p for p in pods if quotaround.uses(q, routes, p)] for q in quotas}
        wanted = {p.name: p for ps in users.values() for p in ps if p.reachable}
        docs = await asyncio.gather(*(self.pusher.stats(p) for p in wanted.values()))
        stats: dict[str, SidecarStats | None] = dict(zip(wanted, docs, strict=True))
        now = self.clock()
        by_pod: dict[str, list[QuotaLease]] = {}
        results: dict[str, tuple[ProviderQuota, quotaround.RoundResult]] = {}
        for quota in quotas:
            state = self.states.setdefault(quota.key, quotaround.QuotaState())
            names = sorted(p.name for p in users[quota.key])
            reports: dict[str, QuotaReport | None] = {
                n: (s.quotas.get(quota.key) if (s := stats.get(n)) is not None else None) for n in names}
            result = quotaround.plan_round(quota, state, names, reports, now)
            results[quota.key] = (quota, result)
            for pod, lease in result.leases.items():
                if pod in wanted:
                    by_pod.setdefault(pod, []).append(lease)
        await asyncio.gather(*(self._push(wanted[pod], leases) for pod, leases in by_pod.items()))
        for quota, result in results.values():
            for notice in result.events:
                log.warning("ProviderQuota %s: %s", quota.key, notice.message)
                self.post(self._raw(ns, quota), notice)
            try:
                await self.write_status(ns, quota.metadata.name, {"status": result.status.wire()})
            except Exception as e:  # the next round writes it again
                log.info("ProviderQuota %s: status not written: %s", quota.key, e)
        self._bundle(ns, quotas, users)
        self.rounds += 1

    async def _push(self, pod: SidecarPod, leases: list[QuotaLease]) -> None:
        push = LeasePush(audience=PodRef(namespace=pod.namespace, name=pod.name, uid=pod.uid or None),
                         issued_at=datetime.now(UTC), leases=leases)
        held = await self.pusher.put_leases(pod, push)
        for quota, generation in (held or {}).items():
            state = self.states.get(quota)
            if state is not None:
                quotaround.acknowledged(state, pod.name, generation)

    def _bundle(self, ns: str, quotas: list[ProviderQuota], users: Mapping[str, list[SidecarPod]]) -> None:
        terms = [quotaround.terms_of(q, len(users[q.key])) for q in quotas]
        for q in quotas:
            self.states[q.key].bundle_pods = len(users[q.key])
        if terms != self.terms.get(ns):
            self.terms[ns] = terms
            if self.on_bundle_change is not None:
                self.on_bundle_change(ns)  # the reconciler rewrites the route bundle with them

    def _raw(self, ns: str, quota: ProviderQuota) -> dict[str, Any]:
        for raw in self.quotas(ns):
            if (raw.get("metadata") or {}).get("name") == quota.metadata.name:
                return dict(raw)
        return {"apiVersion": quota.api_version, "kind": quota.kind, "metadata": quota.metadata.wire()}

    async def close(self) -> None:
        await self.loop.close()

"""Poll the sidecars' ``/stats`` for quota pressure, and post what ``quota.decide`` says.

Every ``interval`` seconds, for each namespace with sidecar pods and at least one ModelRoute
whose targets declare ``limits``, the reachable pods those routes select are asked for
``/stats`` (bounded by the push client's semaphore); pressures become ``QuotaPressure``
Events. Runs beside the reconciler, never inside a reconcile round, and only reads.
Started from a kopf handler (``start``), so the Events go through kopf's poster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from modelroute.api.selection import matches
from modelroute.api.v1alpha1 import LabelSelector
from modelroute.operator import quota
from modelroute.operator.events import Notice
from modelroute.operator.periodic import Periodic
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.client import Pusher

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0

Snapshots = Callable[[str], list[dict[str, Any]]]
Poster = Callable[[Mapping[str, Any], Notice], None]


def _selector(raw: Mapping[str, Any]) -> LabelSelector | None:
    sel = (raw.get("spec") or {}).get("selector")
    return LabelSelector.model_validate(sel) if sel else None


class QuotaWatch:
    def __init__(
        self, pusher: Pusher, routes: Snapshots, pods: Snapshots, post: Poster,
        namespaces: Callable[[], Iterable[str]], *, interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.pusher, self.routes, self.pods, self.post = pusher, routes, pods, post
        self.namespaces, self.interval = namespaces, interval
        self.reported: dict[str, frozenset[quota.Key]] = {}  # namespace -> what was announced
        self.loop = Periodic("quota watch", self.poll, namespaces, interval)

    def start(self) -> None:
        """Start polling (idempotent; interval <= 0: never). Call from a kopf handler."""
        self.loop.start()

    async def poll(self, ns: str) -> None:
        """One look at the namespace's sidecars; posts an Event per ModelRoute with a new crossing."""
        pods = [SidecarPod.from_raw(p) for p in self.pods(ns)]
        limited: list[tuple[dict[str, Any], str, str, LabelSelector | None]] = []
        for raw in self.routes(ns):
            if not quota.has_limits(raw):
                continue
            meta = raw.get("metadata") or {}
            try:
                selector = _selector(raw)
            except ValidationError:
                continue  # an invalid route: the reconciler reports it
            route = str((raw.get("spec") or {}).get("route") or "")
            limited.append((raw, f"{meta.get('namespace')}/{meta.get('name')}", route, selector))
        if not limited or not pods:
            self.reported.pop(ns, None)
            return
        wanted = [p for p in pods if p.reachable and any(matches(sel, p.labels) for *_, sel in limited)]
        docs = await asyncio.gather(*(self.pusher.stats(p) for p in wanted))
        observed: list[quota.Pressure] = []
        answered = []
        for pod, doc in zip(wanted, docs, strict=True):
            if doc is None:
                continue
            answered.append(pod.name)
            for _, key, route, sel in limited:
                if matches(sel, pod.labels):
                    observed.extend(quota.pressures(key, route, pod.name, doc))
        events, self.reported[ns] = quota.decide(
            observed, self.reported.get(ns, frozenset()), answered=answered, present=[p.name for p in pods])
        by_key = {key: raw for raw, key, _, _ in limited}
        for key, notice in events.items():
            log.warning("ModelRoute %s: %s", key, notice.message)
            self.post(by_key[key], notice)

    async def close(self) -> None:
        await self.loop.close()

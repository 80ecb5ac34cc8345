"""Reconcile one namespace: validate, persist the bundle, push to sidecars, write status.

The order matters: the signed bundle is written before any push, so a sidecar that restarts
mid-way reads the same routes it is being pushed. All decisions are made by the pure
modules; this module only gathers inputs (indexes, ConfigMap, Secrets) and performs outputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api import signing
from modelroute.api.lifecycledate import lifecycle_today
from modelroute.api.selection import matches, with_canary
from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.providerquota import QuotaTerms
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.api.v1alpha1.strategy import GateStatus, RolloutStatus
from modelroute.operator import bundle as bundles
from modelroute.operator.acceptance import accept, by_key
from modelroute.operator.convergence import ChangeClock
from modelroute.operator.events import Notice, notices
from modelroute.operator.kube import client as paths
from modelroute.operator.kube.client import ApiError, Kube
from modelroute.operator.metrics import Metrics
from modelroute.operator.pods import HASH_ANNOTATION, SidecarPod
from modelroute.operator.push.client import Pusher, PushOutcome
from modelroute.operator.push.dispatch import Deliveries, Slots
from modelroute.operator.push.plan import PodPlan, plan
from modelroute.operator.rollout import driver
from modelroute.operator.rollout.driver import RouteRollout
from modelroute.operator.rollout.gate_runner import GateRunner
from modelroute.operator.status import PodResult, changed, compute, parse_previous
from modelroute.operator.validation import BUILT_IN, Validation, referenced_secrets, validate

log = logging.getLogger(__name__)

NOT_LISTENING = ("Unreachable", "Timeout")
FOLLOW_UP_SECONDS = 0.2

Snapshots = Callable[[str], list[dict[str, Any]]]
Poster = Callable[[Mapping[str, Any], Notice], None]


@dataclass
class Hints:
    """In-memory shortcuts, never the truth: fresh acks not yet visible in the pod index, and pods to verify."""

    acked: dict[str, str] = field(default_factory=dict)  # pod uid -> hash acknowledged by its sidecar
    verify: set[str] = field(default_factory=set)  # pod uids whose sidecar may have restarted
    rollouts: dict[str, tuple[str | None, RolloutStatus]] = field(default_factory=dict)  # route key -> (uid, last written status.rollout)
    gates: dict[str, GateStatus] = field(default_factory=dict)  # route key -> result of a gate the engine asked for
    annotated: dict[str, str] = field(default_factory=dict)  # pod uid -> hash annotated, until the pod index shows it


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        key: Ed25519PrivateKey,
        pusher: Pusher,
        metrics: Metrics,
        routes: Snapshots,
        pods: Snapshots,
        post: Poster,
        changes: ChangeClock,
        hints: Hints,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.kube, self.key, self.pusher, self.metrics = kube, key, pusher, metrics
        self.registry = registry  # the operator's --model-registry: validates routes, rides in every config and bundle
        self.routes, self.pods, self.post, self.changes, self.hints = routes, pods, post, changes, hints
        self.public = signing.verify_key(key)
        self.gates = GateRunner(kube, key, lambda: self.pusher.session, hints.gates)
        self.deliveries = Deliveries(pusher.attempt, Slots(pusher.semaphore), on_outcome=self._heard)
        self.records = HashRecords(kube, hints)
        self._requeue: Callable[[str, float], None] | None = None
        self._unreadable_logged: set[str] = set()
        self.quota_terms: Callable[[str], list[QuotaTerms]] = lambda ns: []  # the rebalancer's: what the bundle carries
        self._bundle_quotas: dict[str, list[QuotaTerms]] = {}
        self._bundle_registry: dict[str, ModelRegistry | None] = {}  # the registry each namespace's bundle carries
        self.today: Callable[[], date] = lifecycle_today  # the day the model retirement checks use (a test's seam)

    @property
    def requeue(self) -> Callable[[str, float], None] | None:
        return self._requeue

    @requeue.setter
    def requeue(self, later: Callable[[str, float], None] | None) -> None:
        self._requeue = self.gates.requeue = later
        self.deliveries.on_settled = (lambda ns: later(ns, 0.0)) if later is not None else (lambda ns: None)

    async def __call__(self, namespace: str) -> bool:
        started = time.perf_counter()
        try:
            converged = await self.reconcile(namespace)
        except Exception:
            self.metrics.reconciles.labels("error").inc()
            raise
        finally:
            self.metrics.reconcile.observe(time.perf_counter() - started)
        self.metrics.reconciles.labels("converged" if converged else "retry").inc()
        return converged

    async def reconcile(self, ns: str) -> bool:
        t0 = time.perf_counter()
        now = datetime.now(UTC).replace(microsecond=0)
        raw_routes = sorted(self.routes(ns), key=lambda r: r["metadata"]["name"])
        pods = [SidecarPod.from_raw(p) for p in self.pods(ns)]
        self._drop_caught_up_acks(pods)

        # 1. Validate; an invalid route keeps its last accepted version from the bundle.
        cm = await self.kube.get(paths.configmaps(ns, bundles.CONFIGMAP_NAME))
        previous = self._read_bundle(ns, cm)
        secrets = await self._secret_keys(ns, referenced_secrets(raw_routes))
        validations = [validate(r, secrets, self.registry or BUILT_IN, today=self.today()) for r in raw_routes]
        accepted = accept(validations, by_key(previous or []))

        # 1b. Routes with a strategy: one rollout step each; the sidecars serve the stable spec plus the canary.
        rolls = await self._rollouts(ns, raw_routes, accepted, previous, pods)
        served = {k: rolls[k].served if k in rolls else with_canary(r, None) for k, r in accepted.items()}

        # 2. Persist the served routes before anything is pushed.
        if raw_routes or pods or cm is not None:
            await self._write_bundle(ns, cm, previous, served.values(), now)

        # 3. Push where the sidecar does not serve what it should.
        t1 = time.perf_counter()
        plans = plan(served.values(), pods, served=self.hints.acked, verify=self.hints.verify, registry=self.registry)
        t2 = time.perf_counter()
        outcomes = await self._push(plans)
        t3 = time.perf_counter()
        results = [self._result(p, outcomes.get(p.pod.uid)) for p in plans]

        # Convergence: every reachable pod serves its config (timed at the last ack).
        settled = all(r.synced for r in results if r.plan.pod.reachable)
        for v in validations:
            if not v.valid:
                self.changes.forget(v.key)
        if settled:
            for elapsed in self.changes.settle(ns):
                self.metrics.convergence.observe(elapsed)

        # 4. Record what the pods serve, then status and events for every ModelRoute.
        self._annotate_all(pods, outcomes)
        await self._statuses(raw_routes, validations, served, results, outcomes, now, rolls)
        self._rollout_followups(ns, raw_routes, rolls, outcomes)
        self.metrics.pods.labels(ns).set(len(pods))
        if outcomes:
            pushed = sum(1 for o in outcomes.values() if o.pushed)
            log.info("namespace %s: pushed to %d of %d pods (%d failed) in %.0f ms "
                     "[read+bundle %.0f, plan %.0f, pushes %.0f, annotations+status %.0f]",
                     ns, pushed, len(pods), sum(1 for o in outcomes.values() if o.reason),
                     1000 * (time.perf_counter() - t0), 1000 * (t1 - t0), 1000 * (t2 - t1), 1000 * (t3 - t2),
                     1000 * (time.perf_counter() - t3))
        return settled and not any(o.reason for o in outcomes.values())

    async def _rollouts(
        self, ns: str, raw_routes: list[dict[str, Any]], accepted: Mapping[str, ModelRoute],
        previous: list[ModelRoute] | None, pods: list[SidecarPod],
    ) -> dict[str, RouteRollout]:
        """Step every rollout once, with fresh acks and (when analysis reads them) the sidecars' evidence."""
        now = datetime.now(UTC)
        prev_by_key = by_key(previous or [])
        todo: list[tuple[dict[str, Any], ModelRoute, RolloutStatus | None]] = []
        for raw in raw_routes:
            meta = raw["metadata"]
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            route = accepted.get(key)
            if route is None:
                continue
            cached = self.hints.rollouts.get(key)
            # Our own last write is newer than a watch event that has not arrived yet.
            state = cached[1] if cached is not None and cached[0] == meta.get("uid") else driver.state_of(raw)
            if driver.takes_part(route, state):
                todo.append((raw, route, state))
        present = {f"{r['metadata'].get('namespace')}/{r['metadata'].get('name')}" for r in raw_routes}
        for hint in (self.hints.rollouts, self.hints.gates):
            for gone in [k for k in hint if k.startswith(f"{ns}/") and k not in present]:
                del hint[gone]
        if not todo:
            return {}
        wanted = [p for p in pods if p.reachable and any(
            driver.needs_evidence(st, r) and matches(r.spec.selector, p.labels) for _, r, st in todo)]
        stats = await self._stats(wanted)
        out = {}
        for raw, route, state in todo:
            acked = driver.all_acked(route, previous, pods, self.hints.acked, self.registry)
            picked = {uid: doc for uid, doc in stats.items()
                      if any(p.uid == uid and matches(route.spec.selector, p.labels) for p in pods)}
            r = driver.decide(raw, route, state, prev_by_key.get(route.key), acked, picked, now,
                                gate=self.hints.gates.pop(route.key, None))
            if r.decision.run_gate and r.decision.serving.canary_revision is not None:
                self.gates.ask(ns, route, r.decision.serving.canary_revision, pods)  # the verdict arrives in hints.gates
            self.hints.rollouts[route.key] = (raw["metadata"].get("uid"), r.decision.status)
            out[route.key] = r
        return out

    async def _stats(self, pods: list[SidecarPod]) -> dict[str, SidecarStats]:
        docs = await asyncio.gather(*(self.pusher.stats(p) for p in pods))
        return {p.uid: d for p, d in zip(pods, docs, strict=True) if d is not None}

    def _rollout_followups(
        self, ns: str, raw_routes: list[dict[str, Any]], rolls: Mapping[str, RouteRollout], outcomes: Mapping[str, PushOutcome],
    ) -> None:
        """Events for every rollout step, and the next look (the engine's requeue, or soon after a push)."""
        delays: list[float] = []
        for raw in raw_routes:
            meta = raw["metadata"]
            r = rolls.get(f"{meta.get('namespace')}/{meta.get('name')}")
            if r is None:
                continue
            for e in r.decision.events:
                log.info("rollout %s: %s %s", r.key, e.reason, e.message)
                self.post(raw, Notice(type=e.type, reason=e.reason, message=e.message))
            if r.decision.requeue_after is not None:
                delays.append(r.decision.requeue_after)
        if rolls and any(o.pushed for o in outcomes.values()):
            delays.append(FOLLOW_UP_SECONDS)  # acks of new weights let the engine move on
        if delays and self.requeue is not None:
            self.requeue(ns, max(FOLLOW_UP_SECONDS, min(delays)))

    def _drop_caught_up_acks(self, pods: Iterable[SidecarPod]) -> None:
        for pod in pods:
            if self.hints.acked.get(pod.uid) == pod.served_hash:
                self.hints.acked.pop(pod.uid, None)  # the annotation caught up
            if self.hints.annotated.get(pod.uid) == pod.served_hash:
                self.hints.annotated.pop(pod.uid, None)

    def _read_bundle(self, ns: str, cm: Mapping[str, Any] | None) -> list[ModelRoute] | None:
        if cm is None:
            return None
        try:
            bundle = bundles.decode(cm.get("data") or {}, self.public)
            self._bundle_quotas[ns] = bundle.quotas
            self._bundle_registry[ns] = bundle.model_registry
            return bundle.routes
        except bundles.BundleError as e:
            log.warning("ignoring ConfigMap %s/%s: %s (it will be rewritten)", ns, bundles.CONFIGMAP_NAME, e)
            return None

    async def _secret_keys(self, ns: str, names: Iterable[str]) -> dict[str, set[str] | None]:
        """Key names per referenced Secret (None: absent). Secrets the operator may not read
        (least-privilege RBAC grants Secret reads per namespace) are left out: unverifiable,
        not invalid; the sidecar still refuses a push whose key file is missing."""
        async def keys(name: str) -> tuple[bool, set[str] | None]:
            try:
                secret = await self.kube.get(paths.secret(ns, name))
            except ApiError as e:
                if e.status != 403:
                    raise
                return False, None
            if secret is None:
                return True, None
            return True, set(secret.get("data") or {}) | set(secret.get("stringData") or {})

        names = sorted(names)
        found = await asyncio.gather(*(keys(n) for n in names))
        if not all(readable for readable, _ in found) and ns not in self._unreadable_logged:
            self._unreadable_logged.add(ns)
            log.info("no RBAC to read Secrets in namespace %s: secretKeyRef existence is not checked there", ns)
        return {n: k for n, (readable, k) in zip(names, found, strict=True) if readable}

    async def _write_bundle(
        self, ns: str, cm: Mapping[str, Any] | None, previous: list[ModelRoute] | None,
        accepted: Iterable[ModelRoute], now: datetime,
    ) -> None:
        accepted = list(accepted)
        quotas = self.quota_terms(ns)
        if (cm is not None and previous is not None and bundles.same_routes(previous, accepted)
                and self._bundle_quotas.get(ns, []) == quotas and self._bundle_registry.get(ns) == self.registry):
            return
        data = bundles.encode(bundles.make_bundle(ns, accepted, now, quotas, self.registry), self.key)
        meta = {"name": bundles.CONFIGMAP_NAME, "namespace": ns,
                "labels": {"app.kubernetes.io/managed-by": "modelroute-operator"}}
        if cm is None:
            await self.kube.create(paths.configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
        else:
            meta["resourceVersion"] = cm["metadata"]["resourceVersion"]
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**cm["metadata"], **meta}, "data": data}
            await self.kube.replace(paths.configmaps(ns, bundles.CONFIGMAP_NAME), body)
        log.info("namespace %s: route bundle updated (%d routes)", ns, len(accepted))

    async def _push(self, plans: list[PodPlan]) -> dict[str, PushOutcome]:
        """Hand the pushes to ``deliveries`` and wait for their first try, briefly (``Deliveries.gather``): a slow or
        failing pod never holds this namespace up; its delivery goes on and marks the namespace when it ends."""
        subs = {}
        for p in plans:
            if p.needs_push:
                # Unknown state (never annotated, or maybe restarted): ask first, push only if needed.
                subs[p.pod.uid] = self.deliveries.submit(p.pod, p.rendering.config,
                                                         verify=p.verify or p.pod.served_hash is None)
                self.hints.verify.discard(p.pod.uid)
        return {uid: o for uid, o in (await self.deliveries.gather(subs)).items() if o is not None}

    def _heard(self, pod: SidecarPod, outcome: PushOutcome) -> None:
        """Every try's outcome, waited for or not: the metric, and the ack the next plan trusts."""
        self.metrics.pushes.labels(outcome.outcome).inc()
        if outcome.served_hash is not None:
            self.hints.acked[pod.uid] = outcome.served_hash
        else:
            level = logging.WARNING if pod.ready else logging.DEBUG  # a starting sidecar is not listening yet
            log.log(level, "push to %s/%s failed: %s: %s", pod.namespace, pod.name, outcome.reason, outcome.message)

    def _annotate_all(self, pods: list[SidecarPod], outcomes: Mapping[str, PushOutcome]) -> None:
        """The config-hash annotation is how a restarted operator knows what each pod serves: recorded from this
        round's outcomes and from the acks of deliveries that ended after an earlier round stopped waiting."""
        for pod in pods:
            o = outcomes.get(pod.uid)
            served = (o.served_hash if o is not None else None) or self.hints.acked.get(pod.uid)
            if served and served != pod.served_hash:
                self.records.record(pod, served)

    @staticmethod
    def _result(p: PodPlan, outcome: PushOutcome | None) -> PodResult:
        if outcome is None:
            return PodResult(plan=p, served_hash=p.pod.served_hash)
        failure = (outcome.reason, outcome.message) if outcome.reason else None
        if outcome.reason in NOT_LISTENING and not p.pod.ready:
            failure = None  # a starting sidecar: it reads the bundle, and its Ready transition triggers a check
        return PodResult(plan=p, served_hash=outcome.served_hash or p.pod.served_hash, failure=failure)

    async def _statuses(
        self, raw_routes: list[dict[str, Any]], validations: list[Validation], accepted: Mapping[str, ModelRoute],
        results: list[PodResult], outcomes: Mapping[str, PushOutcome], now: datetime,
        rolls: Mapping[str, RouteRollout],
    ) -> None:
        phases: dict[str, int] = {}
        patches = []
        for raw, v in zip(raw_routes, validations, strict=True):
            prev = parse_previous(raw.get("status"))
            new = compute(v, accepted.get(v.key), results, prev, now)
            roll = rolls.get(v.key)
            new = new.model_copy(update={"rollout": roll.decision.status if roll is not None else (prev.rollout if prev is not None else None)})
            phases[new.phase.value if new.phase else "Unknown"] = phases.get(new.phase.value if new.phase else "Unknown", 0) + 1
            route = accepted.get(v.key)
            pushed = [
                r.name for r in results
                if route is not None and (o := outcomes.get(r.plan.pod.uid)) is not None and o.pushed
                and any(x.key == v.key for x in r.plan.rendering.config.routes)
            ]
            for notice in notices(prev, new, pushed):
                self.post(raw, notice)
            if changed(prev, new):
                patches.append(self._patch_status(raw, new.model_dump(mode="json", by_alias=True)))
        await asyncio.gather(*patches)
        if raw_routes:
            ns = raw_routes[0]["metadata"]["namespace"]
            for phase in ("Pending", "Ready", "Progressing", "Degraded", "Conflict", "Invalid"):
                self.metrics.routes.labels(ns, phase).set(phases.get(phase, 0))

    async def _patch_status(self, raw: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = raw["metadata"]
        try:
            await self.kube.merge_patch(paths.modelroute_status(meta["namespace"], meta["name"]), {"status": status})
        except ApiError as e:
            if e.status != 404:
                log.warning("could not patch status of %s/%s: %s", meta["namespace"], meta["name"], e)


class HashRecords:
    """Writes pods' config-hash annotations off the reconcile's path, at most ``limit`` at once, the newest hash per pod.

    A fleet's change is one annotation per pod (1,000 in a burst): awaited in each reconcile they queued ahead of
    the next namespace's bundle write and pushes (bench/fleet.py). A record lost to a restart costs one push
    later (the sidecar answers it unchanged), never a wrong config.
    """

    def __init__(self, kube: Kube, hints: Hints, limit: int = 8) -> None:
        self.kube, self.hints, self.limit = kube, hints, limit
        self._want: dict[str, tuple[SidecarPod, str]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._active = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def record(self, pod: SidecarPod, served: str) -> None:
        if self.hints.annotated.get(pod.uid) == served:
            return
        self._want[pod.uid] = (pod, served)
        self.idle.clear()
        while self._active < min(self.limit, len(self._want)):
            self._active += 1  # counted from creation: a finished worker's task may linger in the set
            task = asyncio.create_task(self._work(), name="config-hash annotations")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def flush(self) -> None:
        """Return once every recorded hash is written (tests, shutdown)."""
        await self.idle.wait()

    async def close(self) -> None:
        for task in list(self._workers):
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self) -> None:
        try:
            while self._want:
                uid = next(iter(self._want))
                pod, served = self._want.pop(uid)
                await self._annotate(pod, served)
        finally:
            self._active -= 1
            if not self._want and not self._active:
                self.idle.set()

    async def _annotate(self, pod: SidecarPod, served: str) -> None:
        try:
            await self.kube.merge_patch(paths.pod(pod.namespace, pod.name),
                                        {"metadata": {"annotations": {HASH_ANNOTATION: served}}})
            self.hints.annotated[pod.uid] = served
        except ApiError as e:
            if e.status != 404:
                log.warning("could not annotate pod %s/%s: %s", pod.namespace, pod.name, e)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("could not annotate pod %s/%s: %s: %s (the next reconcile records it again)",
                        pod.namespace, pod.name, type(e).__name__, e)

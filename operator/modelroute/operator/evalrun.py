"""ModelRouteEval: run a ``kubectl modelroute eval`` request through one sidecar with the signed ``POST /eval``.

Why the operator: the comparison must run where the provider keys are (a sidecar of the route), and
the sidecar only obeys requests signed with the operator's key, which the person running the
command must not hold. So the command writes a ModelRouteEval (``modelroute.api.v1alpha1.modelrouteeval``)
and this module acts on it once: read the live ModelRoute, pick a ready sidecar it selects, sign an
``EvalRequest`` with the candidate spec and the cases, and write what came back (the same document
as the local ``modelroute eval --json``) or why it failed into the object's status. Runs go in
background tasks, one per object; a run already finished (Succeeded or Failed) is never repeated.
A finished object is deleted ``spec.ttlSecondsAfterFinished`` after ``status.finishedAt`` (one timer
per finished object, set again from the watch's initial listing after a restart), so objects nobody
deleted do not pile up in etcd. The pure parts (reading the request, picking the pod, the body, the
status from the answer, when a finished object is due for deletion) are module functions; the
bodies are ``modelroute.api.evalgate``'s models, which the sidecar parses too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from modelroute.api.admin import error_summary
from modelroute.api.config import PodRef
from modelroute.api.evalgate import CompareOptions, EvalRequest, EvalResult
from modelroute.api.problems import validation_problems
from modelroute.api.selection import matches
from modelroute.api.v1alpha1 import GROUP, VERSION, ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.modelrouteeval import (
    DEFAULT_EVAL_TTL_SECONDS,
    EVAL_PLURAL,
    MAX_EVAL_BYTES,
    MAX_EVAL_TTL_SECONDS,
    EvalPhase,
    ModelRouteEvalSpec,
    ModelRouteEvalStatus,
)
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.operator.kube.client import ApiError, Kube
from modelroute.operator.pods import SidecarPod
from modelroute.operator.rollout.gate_runner import post_eval

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 600.0   # the sidecar bounds a comparison at 540 s
MAX_MESSAGE = 4096
DELETE_RETRY_SECONDS = (5.0, 30.0, 300.0)   # a deletion that failed is tried again after these pauses, then every 300 s


class EvalProblem(Exception):
    """A request that cannot run: the ModelRouteEval fails with this message."""


def finished(obj: Mapping[str, Any]) -> bool:
    phase = (obj.get("status") or {}).get("phase")
    return phase in (EvalPhase.SUCCEEDED.value, EvalPhase.FAILED.value)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def due_for_deletion(obj: Mapping[str, Any]) -> datetime | None:
    """When a finished ModelRouteEval is to be deleted: ``status.finishedAt`` (else its creation time) plus
    ``spec.ttlSecondsAfterFinished``; None while it has not finished, or when it carries neither time.

    Read from the raw object, so a request that failed because its spec is invalid still expires; a TTL
    that is not a whole number in range (an object from an older CRD) counts as the default."""
    if not finished(obj):
        return None
    ttl = (obj.get("spec") or {}).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_EVAL_TTL_SECONDS:
        ttl = DEFAULT_EVAL_TTL_SECONDS
    ended = _timestamp((obj.get("status") or {}).get("finishedAt")) or _timestamp((obj.get("metadata") or {}).get("creationTimestamp"))
    return None if ended is None else ended + timedelta(seconds=ttl)


def failed(message: str) -> ModelRouteEvalStatus:
    return ModelRouteEvalStatus(phase=EvalPhase.FAILED, message=message[:MAX_MESSAGE], finished_at=datetime.now(UTC))


def request_of(obj: Mapping[str, Any]) -> tuple[ModelRouteEvalSpec, ModelRouteSpec]:
    """The request and its candidate spec; ``EvalProblem`` naming each bad field (``spec.candidate.targets[0].model``)."""
    try:
        spec = ModelRouteEvalSpec.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        raise EvalProblem("; ".join(f"spec.{p}" for p in validation_problems(e))) from None
    size = len(json.dumps(spec.cases, separators=(",", ":")))
    if size > MAX_EVAL_BYTES:
        raise EvalProblem(f"spec.cases: {size} bytes of JSON; at most {MAX_EVAL_BYTES} (use fewer or shorter cases)")
    try:
        candidate = ModelRouteSpec.model_validate(spec.candidate)
    except ValidationError as e:
        raise EvalProblem("; ".join(f"spec.candidate.{p}" for p in validation_problems(e))) from None
    return spec, candidate


def live_route(obj: Mapping[str, Any] | None, ns: str, name: str) -> ModelRoute:
    """The live ModelRoute as a model; ``EvalProblem`` when it does not exist or is not valid now."""
    if obj is None:
        raise EvalProblem(f"modelroute {ns}/{name} not found")
    try:
        return ModelRoute.model_validate({"metadata": {"name": name, "namespace": ns}, "spec": obj.get("spec") or {}})
    except ValidationError as e:
        raise EvalProblem(f"modelroute {ns}/{name} is not valid now: {validation_problems(e)[0]}") from None


def pick_ready_pod(route: ModelRoute, pods: Iterable[SidecarPod]) -> SidecarPod:
    """A ready, reachable sidecar the route selects (first by name); ``EvalProblem`` when there is none."""
    selected = [p for p in pods if matches(route.spec.selector, p.labels)]
    ready = sorted((p for p in selected if p.reachable and p.ready), key=lambda p: p.name)
    if not ready:
        why = "; ".join(f"{p.name}: {p.waiting_reason}" for p in selected[:5]) or "the route selects no sidecar pod"
        raise EvalProblem(f"no ready sidecar pod serves modelroute {route.metadata.name} ({why})")
    return ready[0]


def key_destinations(routes: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(key reference, base URL) pairs the namespace's ModelRoutes already send keys to (invalid routes skipped)."""
    found: set[tuple[str, str]] = set()
    for obj in routes:
        try:
            spec = ModelRouteSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            continue
        found |= {(json.dumps(t.api_key.wire(), sort_keys=True), t.base_url) for t in spec.targets
                  if t.api_key is not None and t.base_url is not None}
    return found


def check_key_destinations(candidate: ModelRouteSpec, allowed: set[tuple[str, str]]) -> None:
    """A candidate may send a key only to the provider's own endpoint or where a ModelRoute here already sends it.

    Who may create a ModelRouteEval need not be who may edit ModelRoutes: without this, a candidate
    with ``baseUrl`` at any host would make the sidecar hand that host the pod's key."""
    for i, t in enumerate(candidate.targets):
        if t.api_key is None or t.base_url is None:
            continue
        if (json.dumps(t.api_key.wire(), sort_keys=True), t.base_url) not in allowed:
            raise EvalProblem(f"spec.candidate.targets[{i}]: baseUrl {t.base_url} with this apiKey is not used by any "
                              "ModelRoute in the namespace; an eval sends a key only where a route already sends it "
                              "(or to the provider's own endpoint, without baseUrl)")


def eval_body(pod: SidecarPod, route: ModelRoute, ask: ModelRouteEvalSpec, candidate: ModelRouteSpec, where: str,
              issued_at: datetime) -> bytes:
    """The signed body of ``POST /eval`` asking for a comparison (``modelroute.api.evalgate.EvalRequest``)."""
    opts = CompareOptions(dataset=ask.dataset, candidate_source=ask.candidate_source, baseline_source=where,
                          confidence=ask.confidence, min_cases=ask.min_cases)
    try:
        req = EvalRequest(audience=PodRef(namespace=pod.namespace, name=pod.name, uid=pod.uid or None), issued_at=issued_at,
                          route=route.spec.route, revision=revision_of(candidate), cases=list(ask.cases),
                          baseline=True, candidate=candidate, compare=opts)
    except ValidationError as e:
        raise EvalProblem("; ".join(validation_problems(e))) from None
    body = req.model_dump_json(by_alias=True, exclude_none=True).encode()
    if len(body) > 2 * MAX_EVAL_BYTES:
        raise EvalProblem(f"the request is {len(body)} bytes; at most {2 * MAX_EVAL_BYTES} can be sent to a sidecar")
    return body


def status_of(pod: SidecarPod, http_status: int, text: str) -> ModelRouteEvalStatus:
    """The ModelRouteEval's status from the sidecar's answer."""
    if http_status != 200:
        return failed(f"sidecar {pod.name} refused the eval (HTTP {http_status}): {error_summary(text, 2000)}")
    try:
        result = EvalResult.model_validate_json(text)
    except ValidationError as e:
        return failed(f"unreadable answer from sidecar {pod.name} ({validation_problems(e)[0]})")
    doc = result.comparison
    if doc is None:
        return failed(f"sidecar {pod.name} answered without a comparison (an older sidecar?)")
    return ModelRouteEvalStatus(
        phase=EvalPhase.SUCCEEDED, message=doc.comparison.message, pod=pod.name, baseline_revision=result.baseline_revision,
        candidate_revision=result.revision, verdict=doc.comparison.verdict.value, finished_at=datetime.now(UTC), result=doc)


def eval_path(ns: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{EVAL_PLURAL}/{name}"


def eval_status_path(ns: str, name: str) -> str:
    return eval_path(ns, name) + "/status"


class EvalRuns:
    """Background runs of ModelRouteEvals, one per object (by uid), and the deletion of finished ones."""

    def __init__(self, kube: Kube, key: Ed25519PrivateKey, session: Callable[[], aiohttp.ClientSession],
                 routes: Callable[[str], list[dict[str, Any]]], pods: Callable[[str], list[dict[str, Any]]],
                 *, delete_retry: Sequence[float] = DELETE_RETRY_SECONDS) -> None:
        self.kube, self.key, self.session, self.routes, self.pods = kube, key, session, routes, pods
        self.delete_retry = delete_retry
        self.running: dict[str, asyncio.Task[None]] = {}
        self.ran: set[str] = set()   # uids whose run ended: a late event still showing "Running" must not start another
        self.expiring: dict[str, tuple[datetime, asyncio.Task[None]]] = {}   # finished objects: uid -> (due, deletion)

    def event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        """A ModelRouteEval changed: start its run unless it is finished, running, or deleted; a finished
        one gets its deletion timer (``due_for_deletion``)."""
        meta = body.get("metadata") or {}
        uid, ns, name = str(meta.get("uid") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if type_ == "DELETED":
            self.ran.discard(uid)
            for task in (self.running.pop(uid, None), self.expiring.pop(uid, (None, None))[1]):
                if task is not None:
                    task.cancel()
            return
        due = due_for_deletion(body)
        if due is not None and uid:
            self._expire(uid, ns, name, due)
        if finished(body) or not uid or uid in self.running or uid in self.ran:
            return
        task = asyncio.create_task(self._run(ns, name, dict(body)), name=f"eval {ns}/{name}")
        self.running[uid] = task
        task.add_done_callback(lambda t: self._ended(uid, t))

    def _expire(self, uid: str, ns: str, name: str, due: datetime) -> None:
        held = self.expiring.get(uid)
        if held is not None and held[0] == due:
            return
        if held is not None:
            held[1].cancel()   # its TTL was edited
        task = asyncio.create_task(self._delete_at(uid, ns, name, due), name=f"eval expiry {ns}/{name}")
        self.expiring[uid] = (due, task)
        task.add_done_callback(lambda t: self._expired(uid, t))

    def _expired(self, uid: str, task: asyncio.Task[None]) -> None:
        if self.expiring.get(uid, (None, None))[1] is task:
            del self.expiring[uid]

    async def _delete_at(self, uid: str, ns: str, name: str, due: datetime) -> None:
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        for pause in itertools.chain(self.delete_retry, itertools.repeat(self.delete_retry[-1])):
            try:
                await self.kube.delete(eval_path(ns, name), {"preconditions": {"uid": uid}})
            except ApiError as e:
                if e.status in (404, 409):   # gone already; or another object by that name now
                    return
                why = str(e)
            except (aiohttp.ClientError, TimeoutError) as e:
                why = f"{type(e).__name__}: {e}"
            else:
                log.info("eval %s/%s deleted: finished, its ttlSecondsAfterFinished passed", ns, name)
                return
            log.warning("eval %s/%s: could not delete it after its TTL (%s); again in %g s", ns, name, why, pause)
            await asyncio.sleep(pause)

    def _ended(self, uid: str, task: asyncio.Task[None]) -> None:
        if self.running.get(uid) is task:
            del self.running[uid]
            if not task.cancelled():
                self.ran.add(uid)

    async def _run(self, ns: str, name: str, obj: dict[str, Any]) -> None:
        try:
            status = await self._once(ns, name, obj)
        except asyncio.CancelledError:
            raise
        except Exception as e:   # never leave the person waiting: fail with the reason
            log.exception("eval %s/%s failed", ns, name)
            status = failed(f"the operator could not run it ({type(e).__name__}: {e})")
        log.info("eval %s/%s: %s %s", ns, name, status.phase, status.message)
        await self._write(ns, name, status)

    async def _once(self, ns: str, name: str, obj: dict[str, Any]) -> ModelRouteEvalStatus:
        try:
            ask, candidate = request_of(obj)
            routes = self.routes(ns)
            found = next((r for r in routes if (r.get("metadata") or {}).get("name") == ask.model_route), None)
            route = live_route(found, ns, ask.model_route)
            check_key_destinations(candidate, key_destinations(routes))
            pod = pick_ready_pod(route, (SidecarPod.from_raw(p) for p in self.pods(ns)))
            body = eval_body(pod, route, ask, candidate, f"cluster:{ns}/{ask.model_route}", datetime.now(UTC))
        except EvalProblem as e:
            return failed(str(e))
        await self._write(ns, name, ModelRouteEvalStatus(
            phase=EvalPhase.RUNNING, pod=pod.name, candidate_revision=revision_of(candidate),
            message=f"{len(ask.cases)} cases through both revisions on sidecar {pod.name}"))
        try:
            http_status, text = await post_eval(self.session(), self.key, pod, body, REQUEST_TIMEOUT_SECONDS)
        except (aiohttp.ClientError, TimeoutError) as e:
            return failed(f"sidecar {pod.name} did not answer the eval ({type(e).__name__}: {e})")
        return status_of(pod, http_status, text)

    async def _write(self, ns: str, name: str, status: ModelRouteEvalStatus) -> None:
        try:
            await self.kube.merge_patch(eval_status_path(ns, name), {"status": status.wire()})
        except ApiError as e:
            if e.status != 404:   # deleted meanwhile: nobody waits for it
                raise

    async def close(self) -> None:
        tasks = [*self.running.values(), *(task for _, task in self.expiring.values())]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

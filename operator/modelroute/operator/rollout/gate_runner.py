"""Run a rollout's golden-dataset gate: dataset from a ConfigMap, one signed ``POST /eval`` to one sidecar.

The engine asks for a gate run (``Decision.run_gate``) once the new revision is on every
selected sidecar, and keeps asking until it gets an answer (``Observations.gate``). A run
takes as long as the dataset does, so it goes in a background task per route; its verdict
is left in ``Hints.gates`` and the namespace is requeued, so the next step consumes it.
Permanent problems (no dataset, a refused request, bad numbers) are a failing gate with the
reason; transient ones (sidecar busy, restarting, not yet serving the revision) are retried
on the engine's next ask, up to ``MAX_ATTEMPTS`` times.
The pure parts (dataset parsing, request body, verdict from an answer) are module functions; the
bodies are ``modelroute.api.evalgate``'s models, which the sidecar parses and writes too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from modelroute.api import signing
from modelroute.api.admin import error_summary
from modelroute.api.config import PodRef
from modelroute.api.evalgate import EvalRequest, EvalResult
from modelroute.api.problems import validation_problems
from modelroute.api.selection import matches
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.strategy import Gate, GateStatus, Verdict
from modelroute.operator.kube import client as paths
from modelroute.operator.kube.client import ApiError, Kube
from modelroute.operator.pods import SidecarPod
from modelroute.operator.rollout import GateResults, gate_status

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
REQUEST_TIMEOUT_SECONDS = 150.0   # the sidecar bounds a run at 120 s
RETRY_AFTER_SECONDS = 1.0


class GateProblem(Exception):
    """A gate that cannot run as configured: it fails with this message."""


def failed(message: str) -> GateStatus:
    return GateStatus(verdict=Verdict.FAIL, message=message[:1024])


def parse_dataset(text: str, where: str) -> list[dict[str, Any]]:
    """JSONL cases (blank lines and ``#`` comments skipped); the sidecar checks each case's fields."""
    cases: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            raise GateProblem(f"{where}:{n}: not JSON ({e.msg})") from None
        if not isinstance(doc, dict):
            raise GateProblem(f"{where}:{n}: expected an object with input and expected")
        cases.append(doc)
    if not cases:
        raise GateProblem(f"{where}: the dataset has no cases")
    return cases


def dataset_of(configmap: dict[str, Any] | None, ns: str, gate: Gate) -> list[dict[str, Any]]:
    where = f"ConfigMap {ns}/{gate.config_map}"
    if configmap is None:
        raise GateProblem(f"{where} (the golden dataset) not found")
    data = configmap.get("data") or {}
    if gate.key not in data:
        raise GateProblem(f"{where} has no key {gate.key!r} (keys: {', '.join(sorted(data)) or 'none'})")
    return parse_dataset(str(data[gate.key]), f"{where}[{gate.key}]")


def pick_pod(route: ModelRoute, pods: Iterable[SidecarPod]) -> SidecarPod | None:
    """One selected, reachable sidecar: a ready one first, then the first by name (retries go to the same one)."""
    found = sorted((p for p in pods if p.reachable and matches(route.spec.selector, p.labels)),
                   key=lambda p: (not p.ready, p.name))
    return found[0] if found else None


def eval_body(pod: SidecarPod, route: str, revision: str, cases: list[dict[str, Any]], issued_at: datetime,
              *, baseline: bool = False) -> bytes:
    """The signed body of ``POST /eval`` (``modelroute.api.evalgate.EvalRequest``); raises ``GateProblem``
    when the dataset cannot be sent (too many cases), as the sidecar would refuse it."""
    try:
        ask = EvalRequest(audience=PodRef(namespace=pod.namespace, name=pod.name, uid=pod.uid or None),
                          issued_at=issued_at, route=route, revision=revision, cases=cases,
                          baseline=baseline)
    except ValidationError as e:
        raise GateProblem("; ".join(validation_problems(e))) from None
    return ask.model_dump_json(by_alias=True, exclude_none=True).encode()


def verdict_of(gate: Gate, status: int, text: str) -> GateStatus | None:
    """The gate's verdict from the sidecar's answer; None when the run should be tried again."""
    if status == 200:
        try:
            result = EvalResult.model_validate_json(text)
        except ValidationError as e:
            return failed(f"golden dataset: unreadable answer from the sidecar ({validation_problems(e)[0]})")
        if gate.thresholds.max_accuracy_drop is not None and result.baseline is None:
            return failed("golden dataset: maxAccuracyDrop is set but the sidecar did not run the stable revision")
        baseline = GateResults.from_summary(result.baseline) if result.baseline is not None else None
        return gate_status(gate.thresholds, GateResults.from_summary(result.targets[0]), baseline=baseline,
                           revision=result.revision, baseline_revision=result.baseline_revision or "")
    if status in (409, 429) or status >= 500:
        return None
    message = error_summary(text)
    return failed(f"golden dataset {gate.config_map}/{gate.key} refused by the sidecar (HTTP {status}): {message}")


async def post_eval(session: aiohttp.ClientSession, key: Ed25519PrivateKey, pod: SidecarPod, body: bytes,
                    seconds: float) -> tuple[int, str]:
    """One signed ``POST /eval`` to ``pod``'s sidecar: (HTTP status, body text); raises aiohttp's errors and TimeoutError."""
    headers = {signing.SIGNATURE_HEADER: signing.sign(key, body), "Content-Type": "application/json"}
    async with session.post(pod.admin_url + "/eval", data=body, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=seconds)) as resp:
        return resp.status, await resp.text()


class GateRunner:
    """Background gate runs, at most one per route; verdicts go to ``results`` (the reconciler's hints)."""

    def __init__(self, kube: Kube, key: Ed25519PrivateKey, session: Callable[[], aiohttp.ClientSession],
                 results: MutableMapping[str, GateStatus]) -> None:
        self.kube, self.key, self.session, self.results = kube, key, session, results
        self.requeue: Callable[[str, float], None] | None = None
        self.running: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.attempts: dict[tuple[str, str], int] = {}

    def ask(self, ns: str, route: ModelRoute, revision: str, pods: list[SidecarPod]) -> None:
        """Start a run of ``route``'s gate against ``revision`` unless one runs or waits to be read."""
        current = self.running.get(route.key)
        if current is not None and not current[1].done():
            if current[0] == revision:
                return
            current[1].cancel()   # a newer revision: the old run's verdict would be about the wrong spec
        if route.key in self.results:
            return
        task = asyncio.create_task(self._run(ns, route, revision, pods), name=f"gate {route.key}")
        self.running[route.key] = (revision, task)

    async def _run(self, ns: str, route: ModelRoute, revision: str, pods: list[SidecarPod]) -> None:
        try:
            result = await self._once(ns, route, revision, pods)
        except asyncio.CancelledError:
            raise
        except Exception as e:   # never lose the verdict to a bug: fail the gate with the reason
            log.exception("gate run of %s failed", route.key)
            result = failed(f"golden dataset: the operator could not run it ({type(e).__name__}: {e})")
        attempt = (route.key, revision)
        if result is None:
            self.attempts[attempt] = self.attempts.get(attempt, 0) + 1
            if self.attempts[attempt] >= MAX_ATTEMPTS:
                result = failed(f"golden dataset: no selected sidecar could run it after {MAX_ATTEMPTS} attempts")
        if result is not None:
            self.attempts.pop(attempt, None)
            current = self.running.get(route.key)
            if current is not None and current[0] == revision:
                self.results[route.key] = result
                log.info("gate of %s revision %s: %s %s", route.key, revision, result.verdict.value, result.message)
        if self.requeue is not None:
            self.requeue(ns, 0.1 if result is not None else RETRY_AFTER_SECONDS)

    async def _once(self, ns: str, route: ModelRoute, revision: str, pods: list[SidecarPod]) -> GateStatus | None:
        strategy = route.spec.strategy
        gate = strategy.canary.gate if strategy is not None and strategy.canary is not None else None
        if gate is None:
            return None
        try:
            cases = dataset_of(await self.kube.get(paths.configmaps(ns, gate.config_map)), ns, gate)
        except GateProblem as e:
            return failed(f"golden dataset: {e}")
        except ApiError as e:
            if e.status != 403:
                raise
            return failed(f"golden dataset: the operator may not read ConfigMap {ns}/{gate.config_map} "
                          "(list its name in the chart's rbac.gateConfigMaps)")
        pod = pick_pod(route, pods)
        if pod is None:
            log.info("gate of %s: no selected sidecar is reachable yet; will retry", route.key)
            return None
        try:
            body = eval_body(pod, route.spec.route, revision, cases, datetime.now(UTC),
                             baseline=gate.thresholds.max_accuracy_drop is not None)
        except GateProblem as e:
            return failed(f"golden dataset {gate.config_map}/{gate.key}: {e}")
        try:
            status, text = await post_eval(self.session(), self.key, pod, body, REQUEST_TIMEOUT_SECONDS)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("gate of %s: POST %s/eval: %s", route.key, pod.admin_url, e)
            return None
        verdict = verdict_of(gate, status, text)
        if verdict is None:
            log.info("gate of %s: sidecar %s answered HTTP %d; will retry", route.key, pod.name, status)
        return verdict

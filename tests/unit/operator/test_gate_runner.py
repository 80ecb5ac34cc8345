"""The gate run: dataset from a ConfigMap, one signed POST /eval, the verdict left for the engine."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api import signing
from modelroute.api.config import PodRef
from modelroute.api.evalgate import EvalRequest
from modelroute.api.signing import verify_key
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.strategy import Gate, GateStatus, Verdict
from modelroute.operator.kube.client import ApiError
from modelroute.operator.rollout import gate_runner
from modelroute.operator.rollout.gate_runner import GateProblem, GateRunner
from modelroute.operator.validation import parse
from modelroute.sidecar.server.auth import AuthSettings, verify_request
from modelroute.testing.webapps import serving

from .operator_factories import pod, raw_route

KEY = Ed25519PrivateKey.generate()
GATE = Gate.model_validate({"configMap": "golden", "key": "cases.jsonl", "thresholds": {"minExactMatch": 0.9}})
DATASET = '# comment\n{"input": "a", "expected": "x"}\n\n{"input": "b", "expected": "y"}\n'


def route() -> ModelRoute:
    raw = raw_route("chat", selector={"matchLabels": {"app": "web"}}, strategy={"canary": {
        "steps": [{"weight": 50}], "gate": GATE.model_dump(mode="json", by_alias=True, exclude_none=True)}})
    r = parse(raw)
    assert isinstance(r, ModelRoute), r
    return r


def test_dataset_from_the_configmap() -> None:
    cases = gate_runner.dataset_of({"data": {"cases.jsonl": DATASET}}, "team", GATE)
    assert [c["input"] for c in cases] == ["a", "b"]
    with pytest.raises(GateProblem, match=r"ConfigMap team/golden .* not found"):
        gate_runner.dataset_of(None, "team", GATE)
    with pytest.raises(GateProblem, match=r"no key 'cases.jsonl' \(keys: other\)"):
        gate_runner.dataset_of({"data": {"other": DATASET}}, "team", GATE)
    with pytest.raises(GateProblem, match=r"\[cases.jsonl\]:2: not JSON"):
        gate_runner.dataset_of({"data": {"cases.jsonl": "{}\n{nope"}}, "team", GATE)
    with pytest.raises(GateProblem, match="no cases"):
        gate_runner.dataset_of({"data": {"cases.jsonl": "# only a comment\n"}}, "team", GATE)


def test_picks_one_ready_selected_sidecar() -> None:
    pods = [pod("web-b", {"app": "web"}), pod("web-a", {"app": "web"}, ready=False), pod("db", {"app": "db"}),
            pod("web-c", {"app": "web"})]
    picked = gate_runner.pick_pod(route(), pods)
    assert picked is not None and picked.name == "web-b"
    starting = gate_runner.pick_pod(route(), [pod("web-a", {"app": "web"}, ready=False)])
    assert starting is not None and starting.name == "web-a", "acked but not Ready yet: still asked"
    assert gate_runner.pick_pod(route(), [pod("web-a", {"app": "web"}, ip=None)]) is None
    assert gate_runner.pick_pod(route(), [pod("db", {"app": "db"})]) is None


def test_the_signed_body_is_what_the_sidecar_verifies() -> None:
    from datetime import UTC, datetime
    p = pod("web-1", {"app": "web"})
    body = gate_runner.eval_body(p, "chat", "sha256:abc", [{"input": "a"}], datetime.now(UTC))
    auth = AuthSettings(operator_key=verify_key(KEY), pod=PodRef(namespace=p.namespace, name=p.name))
    doc = verify_request(auth, body, signing.sign(KEY, body), EvalRequest)
    assert doc.route == "chat" and doc.revision == "sha256:abc" and doc.cases == [{"input": "a"}]


def test_verdicts_from_answers() -> None:
    entry = {"target": "revision r", "provider": "openai", "model": "m", "cases": 10, "errors": 0, "exactMatch": 0.5, "validOutputRate": 1.0, "latencyMs": {"p95": 20}}
    v = gate_runner.verdict_of(GATE, 200, json.dumps({"route": "chat", "revision": "r", "targets": [entry]}))
    assert v is not None and v.verdict is Verdict.FAIL and v.metrics[0].value == 0.5 and "10 cases" in v.message
    ok = gate_runner.verdict_of(GATE, 200, json.dumps({"route": "chat", "revision": "r", "targets": [{**entry, "exactMatch": 0.95}]}))
    assert ok is not None and ok.verdict is Verdict.PASS
    assert gate_runner.verdict_of(GATE, 409, "{}") is None, "not serving the revision yet: try again"
    assert gate_runner.verdict_of(GATE, 503, "busy") is None
    refused = gate_runner.verdict_of(GATE, 422, json.dumps({"error": {"message": "dataset rejected", "problems": ["cases:1: bad"]}}))
    assert refused is not None and refused.verdict is Verdict.FAIL and "cases:1: bad" in refused.message
    garbled = gate_runner.verdict_of(GATE, 200, "{}")
    assert garbled is not None and garbled.verdict is Verdict.FAIL


class FakeKube:
    def __init__(self, configmap: dict[str, Any] | ApiError | None) -> None:
        self.configmap = configmap

    async def get(self, path: str) -> dict[str, Any] | None:
        assert path.endswith("/configmaps/golden"), path
        if isinstance(self.configmap, ApiError):
            raise self.configmap
        return self.configmap


async def run(kube: FakeKube, answer: tuple[int, dict[str, Any]]) -> tuple[dict[str, GateStatus], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    async def post_eval(request: web.Request) -> web.Response:
        body = await request.read()
        assert signing.verify(verify_key(KEY), body, request.headers.get(signing.SIGNATURE_HEADER))
        seen.append(json.loads(body))
        return web.json_response(answer[1], status=answer[0])

    app = web.Application()
    app.router.add_post("/eval", post_eval)
    results: dict[str, GateStatus] = {}
    requeued: list[float] = []
    async with serving(app) as port, aiohttp.ClientSession() as session:
        gates = GateRunner(kube, KEY, lambda: session, results)  # type: ignore[arg-type]
        gates.requeue = lambda ns, delay: requeued.append(delay)
        r = route()
        target = pod("web-1", {"app": "web"}, ip="127.0.0.1", admin_port=str(port))
        gates.ask("team", r, "sha256:new", [target])
        gates.ask("team", r, "sha256:new", [target])   # already running: no second run
        await asyncio.wait_for(gates.running[r.key][1], 5)
    assert requeued, "the namespace is looked at again once the run ends"
    return results, seen


async def test_a_run_leaves_the_verdict_with_the_numbers() -> None:
    entry = {"target": "revision sha256:new", "provider": "openai", "model": "m",
             "cases": 2, "errors": 0, "exactMatch": 0.5, "validOutputRate": 1.0, "latencyMs": {"p95": 20}}
    answer = {"route": "chat", "revision": "sha256:new", "targets": [entry]}
    results, seen = await run(FakeKube({"data": {"cases.jsonl": DATASET}}), (200, answer))
    assert len(seen) == 1 and seen[0]["revision"] == "sha256:new" and len(seen[0]["cases"]) == 2
    assert seen[0]["audience"] == {"namespace": "team", "name": "web-1", "uid": "uid-web-1"}  # bound to the pod
    gate = results["team/chat"]
    assert gate.verdict is Verdict.FAIL and gate.metrics[0].name == "exactMatch" and gate.metrics[0].value == 0.5


async def test_a_missing_dataset_fails_the_gate_with_the_reason() -> None:
    results, seen = await run(FakeKube(None), (200, {}))
    assert not seen and results["team/chat"].verdict is Verdict.FAIL
    assert "ConfigMap team/golden" in str(results["team/chat"].message)
    results, _ = await run(FakeKube(ApiError(403, "Forbidden", "no")), (200, {}))
    assert "rbac.gateConfigMaps" in str(results["team/chat"].message)


async def test_a_busy_sidecar_is_retried_not_failed() -> None:
    results, seen = await run(FakeKube({"data": {"cases.jsonl": DATASET}}), (409, {"error": {"message": "not yet"}}))
    assert len(seen) == 1 and results == {}


def test_a_relative_gate_compares_with_stable_on_the_same_cases() -> None:
    from datetime import UTC, datetime

    from modelroute.api.v1alpha1.strategy import GateThresholds
    from modelroute.operator.rollout import GateResults, gate_status

    gate = Gate.model_validate({"configMap": "golden", "key": "cases.jsonl", "thresholds": {"maxAccuracyDrop": 0.02}})
    p = pod("web-1", {"app": "web"})
    body = gate_runner.eval_body(p, "chat", "sha256:abc", [{"input": "a"}], datetime.now(UTC), baseline=True)
    assert EvalRequest.model_validate_json(body).baseline is True
    entry = {"provider": "openai", "model": "m", "cases": 100, "errors": 0, "validOutputRate": 1.0, "latencyMs": {"p95": 20}}
    answer = {"route": "chat", "revision": "new", "baselineRevision": "old",
              "targets": [{**entry, "target": "revision new", "exactMatch": 0.90}],
              "baseline": {**entry, "target": "revision old", "exactMatch": 0.95}}
    v = gate_runner.verdict_of(gate, 200, json.dumps(answer))
    assert v is not None and v.verdict is Verdict.FAIL, v
    drop = v.metrics[0]
    assert drop.name == "accuracyDrop" and drop.value == pytest.approx(0.05) and drop.threshold == 0.02 and drop.samples == 100
    assert "90.0% vs stable 95.0%" in v.message
    # Status shows both revisions' numbers.
    assert [(r.role, r.revision, r.exact_match) for r in v.revisions] == [("candidate", "new", 0.90), ("stable", "old", 0.95)]
    answer["targets"][0]["exactMatch"] = 0.94   # type: ignore[index]
    ok = gate_runner.verdict_of(gate, 200, json.dumps(answer))
    assert ok is not None and ok.verdict is Verdict.PASS and ok.metrics[0].value == pytest.approx(0.01)
    # A sidecar that did not run stable (an older one), or no expectations: cannot measure, so no pass.
    del answer["baseline"]
    missing = gate_runner.verdict_of(gate, 200, json.dumps(answer))
    assert missing is not None and missing.verdict is Verdict.FAIL and "stable revision" in missing.message
    r = GateResults(cases=10, errors=0, exact_match=None, valid_output_rate=1.0, latency_p95_seconds=0.1)
    assert gate_status(GateThresholds(max_accuracy_drop=0.1), r, baseline=r).verdict is Verdict.FAIL
    # Absolute thresholds still work alone: one revision in status.
    alone = gate_status(GateThresholds(min_exact_match=0.5), r.__class__(10, 0, 0.9, 1.0, 0.1), revision="new")
    assert alone.verdict is Verdict.PASS and [x.role for x in alone.revisions] == ["candidate"]


def test_gate_messages_say_which_way_a_bound_goes() -> None:
    """Regression: latencyP95Seconds (an upper bound) was described with "<" in the gate's message."""
    from modelroute.api.v1alpha1.strategy import GateThresholds
    from modelroute.operator.rollout import GateResults, gate_status

    slow = gate_status(GateThresholds(max_latency_p95_seconds=0.2), GateResults(10, 0, 1.0, 1.0, 0.3))
    assert slow.verdict is Verdict.FAIL and "latencyP95Seconds 0.3 > 0.2" in slow.message, slow.message
    fast = gate_status(GateThresholds(max_latency_p95_seconds=0.2), GateResults(10, 0, 1.0, 1.0, 0.1))
    assert "latencyP95Seconds 0.1 <= 0.2" in fast.message, fast.message

"""The typed contracts between operator and sidecar, checked across the boundary.

Each body is built by one side's code and read by the other side's code through the same
``modelroute.api`` model: the eval gate's request and answer, the bundle ConfigMap's keys, the
validation-error lines, and the spec fields a sidecar does not serve. A field added to a model and
not filled in by its writer fails here (writers must set every field, not lean on defaults).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from modelroute.api import signing
from modelroute.api.admin import ConfigApplied, ServedConfig, error_summary
from modelroute.api.config import (
    BUNDLE_CONFIGMAP,
    BUNDLE_KEY,
    SIGNATURE_KEY,
    BundleData,
    PodRef,
    SidecarConfig,
    route_hash,
)
from modelroute.api.evalgate import MAX_CASES, CompareOptions, EvalRequest, EvalResult, EvalTargetSummary
from modelroute.api.problems import field_path, validation_problems
from modelroute.api.signing import verify_key
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.strategy import NOT_SERVED, revision_of
from modelroute.operator import bundle as operator_bundle
from modelroute.operator import evalrun
from modelroute.operator.injection import names
from modelroute.operator.pods import SidecarPod
from modelroute.operator.rollout import gate_runner
from modelroute.operator.rollout.gate import GateResults
from modelroute.operator.validation import parse
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.scoring import Outcome, summarize
from modelroute.sidecar.server import bundle as sidecar_bundle
from modelroute.sidecar.server.auth import AuthSettings, BadPush, verify_push, verify_request
from modelroute.sidecar.server.guard import admin_error

KEY = Ed25519PrivateKey.generate()
POD = SidecarPod.from_raw({"metadata": {"name": "web-1", "namespace": "team", "uid": "uid-1", "labels": {}},
                           "status": {"podIP": "127.0.0.1"}})


def route(**spec: object) -> ModelRoute:
    return ModelRoute.model_validate({"metadata": {"name": "chat", "namespace": "team"}, "spec": {
        "route": "chat", "targets": [{"name": "a", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}}],
        **spec}})


def test_the_eval_request_the_operator_signs_is_the_one_the_sidecar_parses() -> None:
    cases = [{"id": "1", "input": "hi", "expected": "billing"}]
    body = gate_runner.eval_body(POD, "chat", "sha256:abc", cases, datetime.now(UTC))
    auth = AuthSettings(operator_key=verify_key(KEY), pod=PodRef(namespace="team", name="web-1", uid="uid-1"))
    ask = verify_request(auth, body, signing.sign(KEY, body), EvalRequest)
    assert (ask.route, ask.revision, ask.cases, ask.audience.uid) == ("chat", "sha256:abc", cases, "uid-1")
    assert ask.model_fields_set == set(EvalRequest.model_fields) - COMPARE_ONLY, "the operator sets every gate field"


COMPARE_ONLY = {"candidate", "compare"}   # what only a ModelRouteEval's request carries


def test_the_comparison_request_the_operator_signs_for_a_modelrouteeval_is_the_one_the_sidecar_parses() -> None:
    cases = [{"id": "1", "input": "hi", "expected": "billing"}]
    candidate = route().spec.wire() | {"targets": [{"name": "b", "provider": "openai", "model": "gpt-4.1-mini", "apiKey": {"env": "K"}}]}
    ask_spec, spec = evalrun.request_of({"spec": {"modelRoute": "chat", "candidate": candidate, "cases": cases,
                                                  "dataset": "golden.jsonl", "candidateSource": "proposed.yaml"}})
    body = evalrun.eval_body(POD, route(), ask_spec, spec, "cluster:team/chat", datetime.now(UTC))
    auth = AuthSettings(operator_key=verify_key(KEY), pod=PodRef(namespace="team", name="web-1", uid="uid-1"))
    ask = verify_request(auth, body, signing.sign(KEY, body), EvalRequest)
    assert ask.model_fields_set == set(EvalRequest.model_fields), "the operator sets every comparison field"
    assert ask.candidate == spec and ask.revision == revision_of(spec) != revision_of(route().spec)
    assert ask.compare is not None and ask.compare.model_fields_set == set(CompareOptions.model_fields)
    assert (ask.compare.dataset, ask.compare.candidate_source, ask.compare.baseline_source) == (
        "golden.jsonl", "proposed.yaml", "cluster:team/chat")


def test_a_dataset_the_sidecar_would_refuse_fails_on_the_operator_side_first() -> None:
    with pytest.raises(gate_runner.GateProblem, match=f"cases: List should have at most {MAX_CASES} items"):
        gate_runner.eval_body(POD, "chat", "r", [{"input": "x"}] * (MAX_CASES + 1), datetime.now(UTC))


def test_the_eval_answer_the_sidecar_writes_is_the_one_the_operator_judges() -> None:
    cases = [Case("1", {"messages": []}, "billing"), Case("2", {"messages": []}, "refund")]
    outcomes = [Outcome("1", "billing", 0.02, 10, 2, exact=True, valid=True), Outcome("2", None, 0.5, error="deadline")]
    summary = summarize("revision r", "openai", "gpt-4o-mini", cases, outcomes, 0.001).to_api()
    assert summary.model_fields_set == set(EvalTargetSummary.model_fields), "the sidecar sets every field"
    text = EvalResult(route="chat", revision="r", targets=[summary]).model_dump_json(by_alias=True)
    parsed = EvalResult.model_validate_json(text)
    assert parsed.targets[0] == summary
    results = GateResults.from_summary(parsed.targets[0])
    assert (results.cases, results.errors, results.exact_match, results.latency_p95_seconds) == (2, 1, 0.5, 0.02)
    doc = json.loads(text)["targets"][0]
    assert doc["exactMatch"] == 0.5 and doc["latencyMs"]["p99"] == 20.0 and doc["errorsByClass"] == {"deadline": 1}


def test_an_answer_missing_what_the_gate_judges_is_refused() -> None:
    with pytest.raises(ValidationError):
        EvalResult.model_validate({"route": "chat", "revision": "r", "targets": [{"cases": 3}]})
    newer = {"route": "chat", "revision": "r", "later": 1, "targets": [
        {"target": "t", "provider": "openai", "model": "m", "cases": 1, "errors": 0, "exactMatch": None,
         "validOutputRate": 1.0, "somethingNew": True}]}
    assert EvalResult.model_validate(newer).targets[0].cases == 1, "a newer sidecar's extra fields are ignored"


def test_the_bundle_configmap_keys_are_the_files_the_sidecar_reads(tmp_path: Path) -> None:
    data = operator_bundle.encode(operator_bundle.make_bundle("team", [route()], datetime.now(UTC)), KEY)
    assert set(data) == {BUNDLE_KEY, SIGNATURE_KEY} == {sidecar_bundle.BUNDLE_FILE, sidecar_bundle.SIGNATURE_FILE}
    assert BundleData.model_validate(data).data() == data
    assert operator_bundle.CONFIGMAP_NAME == names.BUNDLE_CONFIGMAP == BUNDLE_CONFIGMAP
    for key, text in data.items():   # mounted as files, as the kubelet does
        (tmp_path / key).write_text(text)
    read = sidecar_bundle.read_bundle(tmp_path, verify_key(KEY))
    assert [r.spec.route for r in read.routes] == ["chat"]


def test_validation_lines_say_where_and_what_on_both_sides() -> None:
    assert field_path(("spec", "targets", 0, "provider")) == "spec.targets[0].provider"
    raw = route().wire()
    raw["spec"]["targets"][0]["provider"] = "nope"
    problems = parse(raw)   # the operator's status
    assert isinstance(problems, list) and problems[0].startswith("spec.targets[0].provider: Input should be")
    with pytest.raises(ValidationError) as invalid:
        ModelRoute.model_validate(raw)
    assert validation_problems(invalid.value, "routes.yaml doc 1") == [f"routes.yaml doc 1: {problems[0]}"]
    empty = route().wire()
    empty["spec"]["targets"] = []
    assert parse(empty) == ["spec.targets: a route needs at least one target"]
    auth = AuthSettings(operator_key=verify_key(KEY), pod=PodRef(namespace="team", name="web-1"))
    body = json.dumps({"audience": {"namespace": "team", "name": "web-1"}, "issuedAt": datetime.now(UTC).isoformat(),
                       "config": {"routes": [raw]}}).encode()
    with pytest.raises(BadPush) as refused:   # the sidecar's 422 to a push
        verify_push(auth, body, signing.sign(KEY, body), last_push_at=None, current_version=None)
    assert refused.value.problems[0].startswith("push: config.routes[0].spec.targets[0].provider: Input should be")


def test_fields_that_are_not_served_change_neither_revision_nor_hash() -> None:
    assert set(NOT_SERVED) == {"selector", "strategy"}
    plain, other = route(), route(selector={"matchLabels": {"app": "web"}})
    assert revision_of(plain.spec) == revision_of(other.spec) and route_hash(plain) == route_hash(other)
    changed = route(timeoutSeconds=7)
    assert revision_of(changed.spec) != revision_of(plain.spec) and route_hash(changed) != route_hash(plain)


def test_admin_errors_the_sidecar_writes_are_what_the_operator_reports() -> None:
    resp = admin_error(422, "config rejected: 2 problem(s)", "invalid_config", problems=["a: x", "b: y"])
    assert resp.status == 422 and resp.content_type == "application/json" and isinstance(resp.text, str)
    assert json.loads(resp.text) == {"error": {"message": "config rejected: 2 problem(s)", "code": "invalid_config",
                                               "problems": ["a: x", "b: y"]}}
    assert error_summary(resp.text) == "config rejected: 2 problem(s): a: x; b: y"
    not_served = admin_error(409, "not served", "revision_not_served", served=None)
    assert isinstance(not_served.text, str) and json.loads(not_served.text)["error"]["served"] is None
    assert error_summary("<html>bad gateway</html>") == "<html>bad gateway</html>", "not an envelope: the text"
    with pytest.raises(AssertionError, match="not fields of AdminErrorDetail"):
        admin_error(400, "m", "c", hint="a field the operator's model does not have")


def test_the_config_answer_round_trips() -> None:
    for answer in (ConfigApplied(version="sha256:abc", changed=True),
                   ConfigApplied(version="sha256:abc", changed=False, warnings=["body doc 1 (a): ... shuts down on 2027-01-14"])):
        assert ConfigApplied.model_validate_json(json.dumps(answer.wire())) == answer
    # An older sidecar's answer (no warnings) still reads, as none.
    assert ConfigApplied.model_validate_json('{"version": "v", "changed": true}').warnings == []


def test_the_operator_reads_the_served_version_from_what_get_config_shows() -> None:
    config = SidecarConfig(routes=[route()])
    view = {**config.redacted(), "source": "push", "issuedAt": datetime.now(UTC).isoformat(), "loadedAt": 1.5}
    served = ServedConfig.model_validate_json(json.dumps(view))
    assert (served.version, served.source, served.loaded_at) == (config.hash, "push", 1.5)
    empty: dict[str, object] = {"version": None, "routes": [], "source": None, "issuedAt": None, "loadedAt": None}   # nothing loaded yet
    assert ServedConfig.model_validate(empty).version is None

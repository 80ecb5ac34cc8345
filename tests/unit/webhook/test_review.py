"""review(): AdmissionReview v1 wire format around decide/patch."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest

from modelroute.operator.injection import InjectionSettings
from modelroute.operator.webhook.review import BadReview, enabled_namespace_labels, review

SETTINGS = InjectionSettings(image="img", operator_public_key_pem="PEM", operator_namespace="modelroute-system")


def admission(pod: dict[str, Any], *, namespace: str = "apps", operation: str = "CREATE", kind: str = "Pod") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "object": pod,
            "dryRun": False,
        },
    }


def pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app", "image": "a"}]}}


def test_annotated_pod_gets_a_base64_json_patch() -> None:
    p = pod({"modelroute.dev/inject": "true"})
    answer, outcome = review(admission(p), SETTINGS, namespace_labels={})
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    resp = answer["response"]
    assert resp["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002" and resp["allowed"] is True
    assert resp["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(resp["patch"]))
    out = jsonpatch.apply_patch(copy.deepcopy(p), ops)
    assert out["spec"]["initContainers"][0]["name"] == "modelroute-sidecar"
    assert outcome.injected and outcome.namespace == "apps" and outcome.pod == "web-*"


def test_unannotated_pod_allowed_without_patch() -> None:
    answer, outcome = review(admission(pod()), SETTINGS, namespace_labels={})
    assert answer["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}
    assert not outcome.injected


def test_namespace_entry_injects_unannotated_pods() -> None:
    answer, _ = review(admission(pod()), SETTINGS, namespace_labels=enabled_namespace_labels())
    assert answer["response"]["patchType"] == "JSONPatch"


def test_request_namespace_is_used_for_exclusions() -> None:
    answer, outcome = review(admission(pod({"modelroute.dev/inject": "true"}), namespace="kube-system"), SETTINGS, namespace_labels={})
    assert "patch" not in answer["response"] and "system" in outcome.reason


@pytest.mark.parametrize(("operation", "kind"), [("UPDATE", "Pod"), ("CREATE", "Deployment"), ("DELETE", "Pod")])
def test_other_operations_and_kinds_pass_untouched(operation: str, kind: str) -> None:
    answer, _ = review(admission(pod({"modelroute.dev/inject": "true"}), operation=operation, kind=kind), SETTINGS, namespace_labels={})
    assert "patch" not in answer["response"] and answer["response"]["allowed"] is True


def test_warnings_are_passed_to_the_user() -> None:
    answer, _ = review(admission(pod({"modelroute.dev/inject": "true", "modelroute.dev/sidecar-cpu-limit": "fast"})), SETTINGS, namespace_labels={})
    assert any("sidecar-cpu-limit" in w for w in answer["response"]["warnings"])


@pytest.mark.parametrize("body", [
    {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}},
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}},
])
def test_malformed_reviews_raise(body: dict[str, Any]) -> None:
    with pytest.raises(BadReview):
        review(body, SETTINGS, namespace_labels={})

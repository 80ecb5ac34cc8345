"""AdmissionReview v1 in, AdmissionReview v1 out (pure).

The decision and the patch come from ``modelroute.operator.injection``; this module only
speaks the admission wire format. Malformed input raises ``BadReview`` (HTTP 400); any
other exception escapes to the server, which answers 500 so that the apiserver applies the
webhook's ``failurePolicy`` (see docs in the chart README: Ignore for annotated pods
anywhere, Fail for namespaces that opted in as a whole).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelroute.operator.injection import InjectionSettings, Plan, decide, plan, reinvocation_plan
from modelroute.operator.injection import names as inj

API_VERSION = "admission.k8s.io/v1"


class BadReview(ValueError):
    """The request body is not an AdmissionReview v1 for a Pod."""


@dataclass(frozen=True)
class Outcome:
    """What happened, for the log line and metrics (no pod content)."""

    uid: str
    namespace: str
    pod: str
    injected: bool
    reason: str
    patch_ops: int


def _pod_name(pod: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return str(request.get("name") or meta.get("name") or (meta.get("generateName", "") + "*"))


def review(
    body: Mapping[str, Any], settings: InjectionSettings, *, namespace_labels: Mapping[str, str]
) -> tuple[dict[str, Any], Outcome]:
    """The AdmissionReview response for ``body``.

    ``namespace_labels``: the labels of the request's namespace as far as the webhook knows
    them (the server derives ``modelroute.dev/inject=enabled`` from which webhook called it).
    """
    if body.get("apiVersion") != API_VERSION or body.get("kind") != "AdmissionReview":
        raise BadReview(f"expected an {API_VERSION} AdmissionReview, got {body.get('apiVersion')}/{body.get('kind')}")
    request = body.get("request")
    if not isinstance(request, Mapping) or not isinstance(request.get("uid"), str):
        raise BadReview("the AdmissionReview has no request.uid")
    uid: str = request["uid"]
    namespace = str(request.get("namespace") or "")
    pod = request.get("object")
    kind = (request.get("kind") or {}).get("kind")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if kind != "Pod" or request.get("subResource") or request.get("operation") != "CREATE" or not isinstance(pod, Mapping):
        reason = f"not a pod creation ({request.get('operation')} {kind})"
        return _wrap(response), Outcome(uid, namespace, "", False, reason, 0)

    decision = decide(pod, namespace_labels, settings, namespace=namespace)
    result: Plan
    if decision.inject:
        result = plan(pod, settings)
    elif decision.already_injected:
        result = reinvocation_plan(pod, settings)
    else:
        result = Plan()
    if result.ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(result.ops, separators=(",", ":")).encode()).decode()
    if result.warnings:
        response["warnings"] = [f"modelroute: {w}" for w in result.warnings]
    outcome = Outcome(uid, namespace, _pod_name(pod, request), decision.inject, decision.reason, len(result.ops))
    return _wrap(response), outcome


def _wrap(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def enabled_namespace_labels() -> dict[str, str]:
    """Namespace labels implied by a call through the namespace-wide webhook entry."""
    return {inj.NAMESPACE_INJECT: inj.NAMESPACE_INJECT_ENABLED}

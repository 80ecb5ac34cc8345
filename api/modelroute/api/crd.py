"""Generate the CustomResourceDefinitions (ModelRoute, ProviderQuota, ModelRouteEval) from the pydantic API models.

The models are the single source of truth; this module only rewrites their JSON Schema
into the structural OpenAPI v3 subset the apiserver accepts: ``$ref`` inlined, ``anyOf``
with null collapsed to the type, ``const`` turned into ``enum``, exclusive bounds in the
OpenAPI 3.0 form, no ``title``/``additionalProperties: false``. The committed file under
``crds/`` is checked against this output by a drift test.
"""

from __future__ import annotations

from typing import Any

import yaml

from modelroute.api.v1alpha1 import ModelRouteSpec, ModelRouteStatus
from modelroute.api.v1alpha1 import base as names
from modelroute.api.v1alpha1.modelrouteeval import (
    EVAL_KIND,
    EVAL_PLURAL,
    EVAL_SHORT_NAMES,
    EVAL_SINGULAR,
    ModelRouteEvalSpec,
    ModelRouteEvalStatus,
)
from modelroute.api.v1alpha1.providerquota import (
    QUOTA_KIND,
    QUOTA_PLURAL,
    QUOTA_SHORT_NAMES,
    QUOTA_SINGULAR,
    ProviderQuotaSpec,
    ProviderQuotaStatus,
)

Schema = dict[str, Any]

_DROP = {"title", "$defs"}
_KEEP_DEFAULT_TYPES = (str, int, float, bool)


def _resolve(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_resolve(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        ref = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = dict(ref)
        merged.update(node)  # the field's own description wins over the class docstring
        node = merged
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [x for x in any_of if x != {"type": "null"}]
        if len(non_null) == 1:
            node.pop("anyOf")
            inner = dict(non_null[0])
            inner.update(node)
            node = inner
            if node.get("default", 0) is None:
                node.pop("default")
            return _resolve(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "default" and not isinstance(value, _KEEP_DEFAULT_TYPES):
            continue
        if key == "properties":
            out[key] = {k: _resolve(v, defs) for k, v in value.items()}
            continue
        out[key] = _resolve(value, defs)
    return out


def structural_schema(model: type[Any]) -> Schema:
    """The structural OpenAPI schema of one pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    result: Schema = _resolve(raw, defs)
    return result


def _definition(kind: str, plural: str, singular: str, short_names: tuple[str, ...], description: str,
                spec_model: type[Any], status_model: type[Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    spec = structural_schema(spec_model)
    status = structural_schema(status_model)
    status["description"] = "Observed state, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{names.GROUP}", "labels": {"app.kubernetes.io/part-of": "modelroute"}},
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": singular, "shortNames": list(short_names)},
            "versions": [
                {
                    "name": names.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": f"{names.GROUP}/{names.VERSION}"},
                                "kind": {"type": "string", "description": kind},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd() -> dict[str, Any]:
    """The ModelRoute CustomResourceDefinition."""
    return _definition(
        names.KIND, names.PLURAL, names.SINGULAR, names.SHORT_NAMES,
        "ModelRoute routes one model name to an ordered chain of provider targets, pushed into the sidecars of the selected pods.",
        ModelRouteSpec, ModelRouteStatus, [
            {"name": "Route", "type": "string", "jsonPath": ".spec.route", "description": "Name apps send as `model`."},
            {"name": "Primary", "type": "string", "jsonPath": ".status.primaryTarget", "description": "Provider/model of the first target."},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Summary of the route's state."},
            {"name": "Rollout", "type": "string", "jsonPath": ".status.rollout.phase",
             "description": "The newest revision's rollout: Progressing, Paused, Healthy or Degraded (aborted)."},
            {"name": "Selected", "type": "integer", "jsonPath": ".status.pods.selected", "description": "Sidecar pods selected.", "priority": 1},
            {"name": "Synced", "type": "integer", "jsonPath": ".status.pods.synced", "description": "Selected pods serving the current config."},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ])


def quota_crd() -> dict[str, Any]:
    """The ProviderQuota CustomResourceDefinition."""
    return _definition(
        QUOTA_KIND, QUOTA_PLURAL, QUOTA_SINGULAR, QUOTA_SHORT_NAMES,
        "ProviderQuota declares one API key's rate limits; the operator splits them into per-pod leases so all pods together stay within them.",
        ProviderQuotaSpec, ProviderQuotaStatus, [
            {"name": "Provider", "type": "string", "jsonPath": ".spec.provider", "description": "Provider of the governed targets."},
            {"name": "Tokens", "type": "string", "jsonPath": ".status.tokens", "description": "Tokens used/limit in the last minute."},
            {"name": "Requests", "type": "string", "jsonPath": ".status.requests", "description": "Requests used/limit in the last minute."},
            {"name": "Pods", "type": "integer", "jsonPath": ".status.pods", "description": "Pods holding a lease."},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ])


def eval_crd() -> dict[str, Any]:
    """The ModelRouteEval CustomResourceDefinition (``kubectl modelroute eval``)."""
    return _definition(
        EVAL_KIND, EVAL_PLURAL, EVAL_SINGULAR, EVAL_SHORT_NAMES,
        "ModelRouteEval asks the operator to compare a proposed ModelRoute spec with the live one on a golden dataset, "
        "through a sidecar of the route (no provider key leaves the pod); the result is written into the status.",
        ModelRouteEvalSpec, ModelRouteEvalStatus, [
            {"name": "ModelRoute", "type": "string", "jsonPath": ".spec.modelRoute", "description": "The live ModelRoute compared."},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Running, Succeeded or Failed."},
            {"name": "Verdict", "type": "string", "jsonPath": ".status.verdict", "description": "The candidate against the live revision."},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ])


CRDS = {"modelroute.dev_modelroutes.yaml": crd, "modelroute.dev_providerquotas.yaml": quota_crd,
        "modelroute.dev_modelrouteevals.yaml": eval_crd}
"""File name under crds/ -> generator."""


def crd_yaml(file: str = "modelroute.dev_modelroutes.yaml") -> str:
    """One generated CRD file (by its name under crds/) as YAML text."""
    header = "# Generated by `modelroute crd` from the pydantic models in api/modelroute/api. Do not edit.\n"
    return header + yaml.safe_dump(CRDS[file](), sort_keys=False, width=120)

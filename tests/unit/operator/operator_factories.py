"""Raw Kubernetes objects for the operator's unit tests."""

from __future__ import annotations

from typing import Any

from modelroute.operator.pods import ADMIN_PORT_ANNOTATION, HASH_ANNOTATION, SIDECAR_LABEL, SidecarPod


def raw_route(
    name: str,
    route: str = "chat",
    *,
    ns: str = "team",
    selector: dict[str, Any] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    generation: int = 1,
    uid: str | None = None,
    model: str = "gpt-4o-mini",
    api_key: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelroute.dev/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid or f"uid-{name}", "generation": generation,
            "creationTimestamp": created, "resourceVersion": "42", "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "route": route,
            "targets": [{"name": "main", "provider": "openai", "model": model, "apiKey": api_key or {"env": "OPENAI_API_KEY"}}],
            **spec,
        },
    }
    if selector is not None:
        body["spec"]["selector"] = selector
    return body


def raw_pod(
    name: str,
    labels: dict[str, str] | None = None,
    *,
    ns: str = "team",
    ip: str | None = "127.0.0.2",
    phase: str = "Running",
    ready: bool = True,
    served: str | None = None,
    admin_port: str | None = None,
) -> dict[str, Any]:
    annotations = {}
    if served:
        annotations[HASH_ANNOTATION] = served
    if admin_port is not None:
        annotations[ADMIN_PORT_ANNOTATION] = admin_port
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "uid": f"uid-{name}",
            "labels": {SIDECAR_LABEL: "true", **(labels or {})}, "annotations": annotations,
        },
        "status": {
            "phase": phase, "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(name: str, labels: dict[str, str] | None = None, **kw: Any) -> SidecarPod:
    return SidecarPod.from_raw(raw_pod(name, labels, **kw))

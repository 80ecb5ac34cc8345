"""Whether a pod gets the sidecar: opt-in annotation or namespace label, opt-out, exclusions.

Pure: the webhook passes the pod from the AdmissionReview and the namespace's labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelroute.operator.injection import names
from modelroute.operator.injection.settings import InjectionSettings

_TRUE = {"true", "yes", "enabled", "1"}
_FALSE = {"false", "no", "disabled", "0"}


@dataclass(frozen=True)
class Decision:
    """``inject``: add the sidecar. ``already_injected``: the pod carries it (never add a second)."""

    inject: bool
    reason: str
    already_injected: bool = False


def annotations_of(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return pod.get("metadata", {}).get("annotations") or {}


def has_sidecar(pod: Mapping[str, Any]) -> bool:
    """True when any container of the pod is the modelroute sidecar."""
    spec = pod.get("spec", {})
    return any(
        c.get("name") == names.CONTAINER
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
    )


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


def decide(
    pod: Mapping[str, Any],
    namespace_labels: Mapping[str, str],
    settings: InjectionSettings,
    *,
    namespace: str | None = None,
) -> Decision:
    """Decide for one pod being created in ``namespace`` (default: the pod's own namespace)."""
    ns = namespace or pod.get("metadata", {}).get("namespace") or ""
    if ns in names.SYSTEM_NAMESPACES:
        return Decision(False, f"namespace {ns} is a system namespace")
    if ns == settings.operator_namespace:
        return Decision(False, f"namespace {ns} is the operator's own namespace")
    if ns in settings.excluded_namespaces:
        return Decision(False, f"namespace {ns} is excluded by the operator's settings")
    if pod.get("spec", {}).get("hostNetwork"):
        return Decision(False, "the pod uses the host network (the sidecar's ports would be the node's)")
    if has_sidecar(pod):
        return Decision(False, "the pod already has the modelroute sidecar", already_injected=True)

    pod_flag = _flag(annotations_of(pod).get(names.INJECT))
    ns_enabled = namespace_labels.get(names.NAMESPACE_INJECT) == names.NAMESPACE_INJECT_ENABLED
    if pod_flag is True:
        return Decision(True, f"pod annotation {names.INJECT}=true")
    if pod_flag is False:
        return Decision(False, f"pod annotation {names.INJECT}=false")
    if ns_enabled:
        return Decision(True, f"namespace label {names.NAMESPACE_INJECT}={names.NAMESPACE_INJECT_ENABLED}")
    return Decision(False, "not opted in")

"""A typed view of a sidecar pod: the few fields of a Pod the operator reads.

Parsing a raw Pod dict into this view happens once, so the rest of the operator never
digs through ``status.conditions`` or annotations by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SIDECAR_LABEL = "modelroute.dev/sidecar"
SIDECAR_LABEL_VALUE = "true"
SIDECAR_SELECTOR = f"{SIDECAR_LABEL}={SIDECAR_LABEL_VALUE}"
HASH_ANNOTATION = "modelroute.dev/config-hash"
ADMIN_PORT_ANNOTATION = "modelroute.dev/admin-port"
DEFAULT_ADMIN_PORT = 8788


@dataclass(frozen=True)
class SidecarPod:
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    phase: str = "Pending"
    ready: bool = False
    deleting: bool = False
    admin_port: int | None = DEFAULT_ADMIN_PORT  # None: the annotation is not a port number
    served_hash: str | None = None  # the operator's record of the last acknowledged push

    @property
    def reachable(self) -> bool:
        """Whether a push can be attempted now."""
        return self.phase == "Running" and bool(self.ip) and not self.deleting and self.admin_port is not None

    @property
    def waiting_reason(self) -> str | None:
        """Why the pod cannot take a push yet (None when it can)."""
        if self.deleting:
            return "the pod is terminating"
        if self.phase != "Running":
            return f"the pod is {self.phase}"
        if not self.ip:
            return "the pod has no IP yet"
        if not self.ready:
            return "the sidecar is not ready yet"
        return None

    @property
    def admin_url(self) -> str:
        return f"http://{self.ip}:{self.admin_port}"

    @classmethod
    def from_raw(cls, body: Mapping[str, Any]) -> SidecarPod:
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        return cls(
            namespace=meta.get("namespace") or "",
            name=meta.get("name") or "",
            uid=meta.get("uid") or "",
            labels=dict(meta.get("labels") or {}),
            ip=status.get("podIP") or None,
            phase=status.get("phase") or "Pending",
            ready=ready,
            deleting=bool(meta.get("deletionTimestamp")),
            admin_port=parse_port(annotations.get(ADMIN_PORT_ANNOTATION)),
            served_hash=annotations.get(HASH_ANNOTATION) or None,
        )


def parse_port(value: str | None) -> int | None:
    if value is None or value == "":
        return DEFAULT_ADMIN_PORT
    try:
        port = int(value)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a Pod kept in the operator's index (small, plain, immutable by convention)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return {
        "metadata": {
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        "status": {
            "podIP": status.get("podIP"),
            "phase": status.get("phase"),
            "conditions": [
                {"type": c.get("type"), "status": c.get("status")} for c in status.get("conditions") or []
            ],
        },
    }

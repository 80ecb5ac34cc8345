"""What to push to which pod: the signed ``PUT /config`` body, and the push plan.

Pure: given accepted routes and the pods, ``plan`` says per pod what it should serve and
whether it needs a push; ``signed_body`` builds the exact bytes and signature header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api import signing
from modelroute.api.config import ConfigPush, PodRef, SidecarConfig
from modelroute.api.selection import Rendering, render_for_pod
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.operator.pods import SidecarPod


@dataclass(frozen=True)
class PodPlan:
    pod: SidecarPod
    rendering: Rendering
    verify: bool = False  # ask the sidecar what it serves before trusting the annotation

    @property
    def desired_hash(self) -> str:
        return self.rendering.config.hash

    @property
    def needs_push(self) -> bool:
        return self.pod.reachable and (self.verify or self.pod.served_hash != self.desired_hash)


def plan(
    routes: Iterable[ModelRoute],
    pods: Iterable[SidecarPod],
    served: Mapping[str, str] | None = None,
    verify: Iterable[str] = (),
    registry: ModelRegistry | None = None,
) -> list[PodPlan]:
    """One plan per pod. ``served`` (pod uid -> hash) overrides stale annotations with fresh acks;
    ``registry`` (the operator's) goes into every config."""
    routes = list(routes)
    served = served or {}
    verify_set = set(verify)
    plans = []
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.uid in served:
            pod = replace(pod, served_hash=served[pod.uid])
        plans.append(PodPlan(pod=pod, rendering=render_for_pod(routes, pod.labels, registry), verify=pod.uid in verify_set))
    return plans


def push_body(namespace: str, pod: str, config: SidecarConfig, issued_at: datetime, uid: str | None = None) -> bytes:
    """The push for one pod; ``uid`` binds it to that pod (a later pod of the same name refuses it)."""
    push = ConfigPush(audience=PodRef(namespace=namespace, name=pod, uid=uid or None), issued_at=issued_at, config=config)
    return push.model_dump_json(by_alias=True, exclude_none=True).encode()


def signed_body(
    key: Ed25519PrivateKey, namespace: str, pod: str, config: SidecarConfig, issued_at: datetime, uid: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one push."""
    body = push_body(namespace, pod, config, issued_at, uid)
    return body, {signing.SIGNATURE_HEADER: signing.sign(key, body), "Content-Type": "application/json"}
